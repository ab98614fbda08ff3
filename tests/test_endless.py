"""EndlessDataset: batch i is a pure function of (seed, i); fit() runs it by steps_per_epoch.
waves: the sinusoid simulator's batches hold the frequency their label says."""

from __future__ import annotations

import pickle

import keras
import numpy as np
import pytest

from helpers.endless import EndlessDataset, waves


def _same(a, b) -> bool:
    return all(np.array_equal(u, v) for u, v in
               zip(keras.tree.flatten(a), keras.tree.flatten(b), strict=True))


def test_batch_i_depends_on_seed_and_i_alone():
    ds = EndlessDataset(waves, batch_size=8, seed=3)
    first = [ds[i] for i in (0, 1, 1000)]
    copy = pickle.loads(pickle.dumps(ds))  # what a spawned worker process gets
    assert all(_same(b, ds[i]) and _same(b, copy[i]) for b, i in zip(first, (0, 1, 1000),
                                                                     strict=True))
    assert not _same(ds[0], ds[1])
    assert not _same(ds[0], EndlessDataset(waves, batch_size=8, seed=4)[0])
    drawn = EndlessDataset(waves, batch_size=8)
    assert isinstance(drawn.seed, int) and _same(drawn[2], pickle.loads(pickle.dumps(drawn))[2])


def test_has_no_length_and_no_negative_batches():
    ds = EndlessDataset(waves)
    assert ds.num_batches is None
    with pytest.raises(TypeError, match="no length: pass steps_per_epoch= to fit"):
        len(ds)
    with pytest.raises(IndexError, match="non-negative integer, got -1"):
        ds[-1]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"make_batch": 3}, TypeError, "make_batch must be a function"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ({"seed": -1}, ValueError, "seed must be a non-negative integer"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        EndlessDataset(**{"make_batch": waves, **kwargs})


def test_waves_hold_the_frequency_of_their_label():
    X, y = waves(np.random.default_rng(0), 200, length=64, n_classes=4)
    assert X.shape == (200, 64, 1) and X.dtype == np.float32
    assert y.shape == (200,) and y.dtype == np.int32 and set(y.tolist()) == {0, 1, 2, 3}
    peak = np.abs(np.fft.rfft(X[..., 0], axis=1)).argmax(axis=1)  # cycles per 64 steps
    assert np.mean(peak == 2 * (y + 1)) > 0.95
    again = waves(np.random.default_rng(0), 200, length=64, n_classes=4)
    assert np.array_equal(again[0], X) and np.array_equal(again[1], y)
    with pytest.raises(ValueError, match="length=16 is too short for n_classes=4"):
        waves(np.random.default_rng(0), 2, length=16)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        waves(np.random.default_rng(0), 2, n_classes=1)


def test_fit_trains_steps_per_epoch_batches_per_epoch():
    ds = EndlessDataset(waves, batch_size=16, seed=0)
    model = keras.Sequential([keras.Input((64, 1)), keras.layers.Conv1D(4, 9),
                              keras.layers.GlobalMaxPooling1D(), keras.layers.Dense(4)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ds, steps_per_epoch=5, epochs=2, shuffle=False, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 10
    assert len(history.history["loss"]) == 2
    assert ds.epochs_ended >= 2  # Keras 3.15 also calls it once before the first epoch
