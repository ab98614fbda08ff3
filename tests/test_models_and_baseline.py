"""helpers.models (the course's two models), helpers.article (the article's generator) and
helpers.workloads.InMemoryBatches."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.article import ArticleDataGenerator
from helpers.models import article_cifar_cnn, initialize, volume_cnn
from helpers.workloads import InMemoryBatches


def test_volume_cnn_shapes_and_training_step():
    model = volume_cnn((24, 24, 24), n_classes=3)
    x = np.random.default_rng(0).integers(0, 255, (4, 24, 24, 24, 1)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    assert model.predict(x, verbose=0).shape == (4, 3)
    assert np.isfinite(model.train_on_batch(x, y)[0])


def test_volume_cnn_initial_weights_are_the_same_numbers_on_every_backend():
    weights = volume_cnn(seed=3).get_weights()
    # Drawn by NumPy, so these sums are the same whichever backend runs this test.
    assert round(float(weights[0].astype(np.float64).sum()), 5) == -0.02842
    assert round(float(np.abs(weights[-2]).astype(np.float64).sum()), 4) == 57.1264
    again = volume_cnn(seed=3).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(weights, again, strict=True))
    other = volume_cnn(seed=4).get_weights()
    assert not np.array_equal(weights[0], other[0])


def test_initialize_draws_glorot_uniform_kernels_and_zero_biases():
    model = initialize(volume_cnn(seed=None), seed=0)
    for layer in model.layers:
        for w in layer.trainable_weights:
            value = np.asarray(w.numpy() if hasattr(w, "numpy") else w)
            if w.path.endswith("bias"):
                assert not value.any()
            else:
                receptive = int(np.prod(value.shape[:-2]))
                limit = np.sqrt(6 / (receptive * (value.shape[-2] + value.shape[-1])))
                assert np.abs(value).max() <= limit
                assert np.abs(value).max() > 0.9 * limit  # spread over the whole range


def test_article_cifar_cnn_is_the_articles():
    model = article_cifar_cnn()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 6 and kinds.count("MaxPooling2D") == 3
    assert [layer.units for layer in model.layers if type(layer).__name__ == "Dense"] == [128, 10]
    assert model.output_shape == (None, 10)
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"


def test_article_generator_keeps_its_defects(volumes):
    data_dir, partition, labels = volumes
    ids = partition["train"]
    gen = ArticleDataGenerator(ids, labels, str(data_dir), batch_size=7, dim=(16, 16, 16),
                               n_classes=3)
    assert len(gen) == len(ids) // 7  # floor: the last partial batch is dropped
    X, y = gen[0]
    assert X.dtype == np.float64 and X.shape == (7, 16, 16, 16, 1) and y.shape == (7, 3)
    assert len(ArticleDataGenerator(ids[:3], labels, str(data_dir), batch_size=64)) == 0


def test_in_memory_batches():
    x, y = np.arange(10.0)[:, None], np.arange(10.0)[:, None]
    ds = InMemoryBatches(x, y, 4, workers=2)
    assert len(ds) == 3 and ds.workers == 2
    assert ds[2][0].ravel().tolist() == [8.0, 9.0]
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(ValueError, match="len"):
        InMemoryBatches(x, y[:5], 4)
