"""Mid-epoch checkpoints: an interrupted training, resumed by new objects, trains every batch
once in the uninterrupted order and ends on the uninterrupted weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers.resume import MidEpochCheckpoint, fit_resumable, latest_checkpoint
from tests.protocol_dataset import ArrayRows

N, BATCH, EPOCHS, SEED = 40, 4, 3, 5  # 10 batches per epoch
EVERY = 5  # mid-epoch saves after batch 5 only: the 10th is the epoch's end, saved as such
X = np.random.default_rng(0).normal(size=(N, 6)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32)


class Interrupted(Exception):
    pass


def _dataset(**kwargs) -> ArrayRows:
    return ArrayRows(X, Y, batch_size=BATCH, seed=SEED, **kwargs)


def _build() -> keras.Model:
    """The same initial weights on every call and backend (drawn by numpy)."""
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2)])
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    model.compile(keras.optimizers.Adam(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _never_built() -> keras.Model:
    raise AssertionError("a run with a checkpoint must load it, not build a new model")


class Record(keras.callbacks.Callback):
    """Records (epoch, batch of the epoch, IDs) of every batch trained; raises Interrupted
    after the batch at position ``crash_after``."""

    def __init__(self, dataset, crash_after=None):
        super().__init__()
        self.dataset, self.crash_after, self.trained = dataset, crash_after, []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        position = (self.epoch, self.dataset.start_batch + batch)
        self.trained.append((*position, self.dataset.batch_ids(batch)))

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, self.dataset.start_batch + batch) == self.crash_after:
            raise Interrupted


def _names(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted training: (its directory, its Record, its final weights)."""
    directory = tmp_path_factory.mktemp("straight")
    dataset = _dataset()
    record = Record(dataset)
    model = fit_resumable(_build, dataset, EPOCHS, directory, EVERY, callbacks=[record],
                          verbose=0)
    return directory, record, model.get_weights()


def test_uninterrupted_trains_each_epoch_s_order_once(straight):
    directory, record, weights = straight
    orders = [np.random.default_rng([SEED, e]).permutation(N) for e in range(EPOCHS)]
    assert [i for *_, ids in record.trained for i in ids] == [
        f"s{k}" for order in orders for k in order]  # epochs 0, 1, 2: each sample once each
    assert _names(directory) == ["epoch0003-batch000000.keras"]
    dataset = _dataset()
    again = Record(dataset)  # a finished training: loaded, nothing trained
    done = fit_resumable(_never_built, dataset, EPOCHS, directory, EVERY, callbacks=[again])
    assert again.trained == []
    np.testing.assert_array_equal(done.get_weights()[0], weights[0])


@pytest.mark.parametrize("workers", [1, 2])  # 2: batches read ahead by threads
def test_interrupted_and_resumed_equals_uninterrupted(straight, tmp_path, workers):
    _, record, weights = straight
    dataset = _dataset(workers=workers)
    first = Record(dataset, crash_after=(1, 7))  # 8 batches of epoch 1 done, 5 saved
    with pytest.raises(Interrupted):
        fit_resumable(_build, dataset, EPOCHS, tmp_path, EVERY, callbacks=[first], verbose=0)
    assert latest_checkpoint(tmp_path) == (tmp_path / "epoch0001-batch000005.keras", 1, 5)
    assert _names(tmp_path) == ["epoch0001-batch000005.keras"]  # older ones deleted
    assert [p[:2] for p in first.trained[-3:]] == [(1, 5), (1, 6), (1, 7)]  # lost: redone

    dataset = _dataset(workers=workers)  # new objects, as in a new process
    second = Record(dataset)
    resumed = fit_resumable(_never_built, dataset, EPOCHS, tmp_path, EVERY,
                            callbacks=[second], verbose=0)
    assert [p[:2] for p in second.trained] == [(1, b) for b in range(5, 10)] + [
        (2, b) for b in range(10)]  # the rest of epoch 1 in a fit() of its own, then epoch 2
    kept = [p for p in first.trained if p[:2] < (1, 5)]
    assert kept + second.trained == record.trained
    # the weights say which batches were trained, in which order, with which optimizer state
    for a, b in zip(weights, resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == EPOCHS * N // BATCH


def test_saves_every_batches_from_the_epoch_start_and_at_its_end(tmp_path):
    """Driven by hand: which file exists after each batch of an epoch resumed at batch 2."""
    dataset = _dataset()
    saver = MidEpochCheckpoint(tmp_path / "ckpt", dataset, every=5, start_batch=2)
    saver.set_model(_build())
    saver.set_params({"steps": 8, "epochs": 4})  # what fit() says: 8 batches left
    saver.on_epoch_begin(3)
    assert (dataset.epoch, dataset.start_batch, len(dataset)) == (3, 2, 8)
    seen = []
    for batch in range(8):  # batches 2..9 of epoch 3
        saver.on_train_batch_end(batch)
        found = latest_checkpoint(tmp_path / "ckpt")
        seen.append(found and found[1:])
    # after 5 batches of the epoch (counted from its batch 0, not from batch 2); not
    # after 10: that is the epoch's last batch
    assert seen == [None, None, (3, 5), (3, 5), (3, 5), (3, 5), (3, 5), (3, 5)]
    saver.on_epoch_end(3)  # the epoch's end is saved as (4, 0)
    assert _names(tmp_path / "ckpt") == ["epoch0004-batch000000.keras"]
    with pytest.raises(ValueError, match="began mid-epoch.*start_batch=2.*a fit\\(\\) of its own"):
        saver.on_epoch_begin(4)  # the next epoch would have the short epoch's length


def test_latest_checkpoint_skips_partial_and_other_files(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") is None
    for name in ("epoch0001-batch000009.keras", "epoch0002-batch000003.keras",
                 "epoch0002-batch000000.keras", ".partial-7-epoch0003-batch000000.keras",
                 "epoch0009-batch000000.keras.bak", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert latest_checkpoint(tmp_path) == (tmp_path / "epoch0002-batch000003.keras", 2, 3)
    with pytest.raises(NotADirectoryError, match="notes.txt is not a folder"):
        latest_checkpoint(tmp_path / "notes.txt")


@pytest.mark.parametrize("kwargs, match", [
    ({"shuffle": True}, "shuffle=True cannot be resumed"),
    ({"initial_epoch": 1}, "sets initial_epoch itself"),
    ({"steps_per_epoch": 3}, "sets steps_per_epoch itself"),
    ({"every": 0}, "every must be an integer >= 1, got 0"),
    ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
])
def test_fit_resumable_refuses_what_cannot_resume(tmp_path, kwargs, match):
    args = {"build_model": _never_built, "dataset": _dataset(), "epochs": 2,
            "directory": tmp_path, "every": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        fit_resumable(**args)
    with pytest.raises(TypeError, match="has no set_epoch"):
        MidEpochCheckpoint(tmp_path, keras.utils.PyDataset(), every=2)
