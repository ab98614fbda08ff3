"""helpers.models (the course's two models), helpers.article (the article's generator) and
helpers.workloads.InMemoryBatches."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.article import ArticleDataGenerator
from helpers.models import article_cifar_cnn, volume_cnn
from helpers.workloads import InMemoryBatches


def test_volume_cnn_shapes_and_training_step():
    model = volume_cnn((24, 24, 24), n_classes=3)
    x = np.random.default_rng(0).integers(0, 255, (4, 24, 24, 24, 1)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    assert model.predict(x, verbose=0).shape == (4, 3)
    assert np.isfinite(model.train_on_batch(x, y)[0])


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
