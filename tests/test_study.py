"""helpers.study: the measurements notebook 07 and the benchmarks share."""

from __future__ import annotations

import os

import numpy as np
import pytest

from helpers.study import (
    best_rates,
    memory_study,
    read_files,
    serve_all,
    train_one_epoch_peak,
    volume_tf_data,
)


def test_best_rates_keeps_each_readers_best():
    calls = []
    rates = best_rates({"a": (lambda: calls.append("a"), 10),
                        "b": (lambda: calls.append("b"), 20)}, rounds=3)
    assert calls == ["a", "b"] * 3  # interleaved rounds
    assert set(rates) == {"a", "b"} and all(r > 0 for r in rates.values())


def test_readers_touch_every_file_and_batch(volumes):
    data_dir, partition, labels = volumes
    read_files(sorted(data_dir.glob("id-*.npy")))
    served = []

    class Fake:
        def __len__(self):
            return 3

        def __getitem__(self, i):
            served.append(i)

    serve_all(Fake())
    assert served == [0, 1, 2]


def test_tf_data_reader_matches_the_files(volumes):
    data_dir, partition, labels = volumes
    ids = partition["train"][:10]
    paths = [os.path.join(data_dir, f"{i}.npy") for i in ids]
    ds = volume_tf_data(paths, [labels[i] for i in ids], 4, dim=(16, 16, 16), n_classes=3)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    assert [len(x) for x in xs] == [4, 4, 2] and xs[0].shape[1:] == (16, 16, 16, 1)
    got = sorted(np.concatenate(xs).reshape(10, -1).sum(axis=1).tolist())
    want = sorted(np.load(p).astype(np.float32).sum() for p in paths)
    assert got == pytest.approx(want)
    assert np.concatenate(ys).sum(axis=0).sum() == 10


def test_tf_data_reader_checks_file_sizes(volumes):
    data_dir, partition, labels = volumes
    paths = [os.path.join(data_dir, "id-1.npy")]
    with pytest.raises(ValueError, match="bytes"):
        volume_tf_data(paths, [0], 4, dim=(32, 32, 32))


def test_memory_runs_in_this_process_and_in_fresh_ones(volumes):
    data_dir, _, _ = volumes
    assert train_one_epoch_peak("generator", 20, data_dir) > 50  # MiB: Python + Keras at least
    with pytest.raises(ValueError, match="mode"):
        train_one_epoch_peak("disk", 20, data_dir)
    peaks = memory_study([10, 20], data_dir)
    assert set(peaks) == {(m, n) for m in ("arrays", "generator") for n in (10, 20)}
    assert all(p > 50 for p in peaks.values())


def test_best_epoch_seconds_times_each_run_after_a_warm_up_round():
    import keras

    from helpers.study import best_epoch_seconds

    def tiny():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
        return model

    x, y = np.zeros((8, 3), np.float32), np.zeros((8, 2), np.float32)
    runs = {"a": (tiny(), dict(x=x, y=y, batch_size=4)), "b": (tiny(), dict(x=x, y=y))}
    best = best_epoch_seconds(runs, rounds=2)
    assert set(best) == {"a", "b"} and all(0 < s < 60 for s in best.values())
    assert int(runs["a"][0].optimizer.iterations.numpy()) == 3 * 2  # 3 epochs of 2 steps
