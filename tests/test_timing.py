"""helpers.timing: best-of-rounds timing shared by notebooks 05-07 and the benchmarks."""

from __future__ import annotations

import numpy as np

from helpers.timing import best_epoch_seconds, best_rates, read_files, serve_all


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


def test_best_epoch_seconds_times_each_run_after_a_warm_up_round():
    import keras

    def tiny():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
        return model

    x, y = np.zeros((8, 3), np.float32), np.zeros((8, 2), np.float32)
    runs = {"a": (tiny(), dict(x=x, y=y, batch_size=4)), "b": (tiny(), dict(x=x, y=y))}
    best = best_epoch_seconds(runs, rounds=2)
    assert set(best) == {"a", "b"} and all(0 < s < 60 for s in best.values())
    assert int(runs["a"][0].optimizer.iterations.numpy()) == 3 * 2  # 3 epochs of 2 steps
