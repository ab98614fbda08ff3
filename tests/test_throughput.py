"""The throughput probe: a slow pipeline is named as the bottleneck, a fast one is not."""

from __future__ import annotations

import pickle
import time

import keras
import matplotlib
import numpy as np
import pytest

from helpers import throughput
from helpers.throughput import (
    KERAS_CHECKED,
    ThroughputResult,
    fit_batches,
    measure_model,
    measure_pipeline,
    probe,
    sweep_workers,
)
from helpers.throughput_plots import plot_ratios, plot_sweep
from helpers.workloads import SimulatedWork

matplotlib.use("Agg")

BATCH = 16


class Batches(keras.utils.PyDataset):
    """In-memory slices; ``delay`` seconds of sleep per batch make it slow on purpose."""

    def __init__(self, n_batches: int = 12, delay: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        rng = np.random.default_rng(0)
        self.x = rng.random((n_batches * BATCH, 4), dtype=np.float32)
        self.y = rng.random((n_batches * BATCH, 1), dtype=np.float32)
        self.delay = delay
        self.epochs_ended = 0

    def __len__(self) -> int:
        return len(self.x) // BATCH

    def __getitem__(self, i: int):
        if self.delay:
            time.sleep(self.delay)
        return self.x[i * BATCH:(i + 1) * BATCH], self.y[i * BATCH:(i + 1) * BATCH]

    def on_epoch_end(self) -> None:
        self.epochs_ended += 1


@pytest.fixture(scope="module")
def tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
    return model


def test_slow_pipeline_is_the_bottleneck(tiny_model):
    # 50 ms of sleep per batch of 16: at most 320 samples/s, against a model step of ~1 ms.
    result = probe(Batches(delay=0.05), tiny_model, batches=5, warmup=1)
    assert result.bottleneck == "pipeline"
    assert result.ratio < 0.5
    assert "input pipeline is the bottleneck" in str(result)
    assert result.pipeline_samples_per_s < 400


def test_fast_pipeline_is_not_the_bottleneck(tiny_model):
    result = probe(Batches(n_batches=40), tiny_model, batches=30)
    assert result.bottleneck == "model"
    assert result.ratio > 1
    assert "model is the bottleneck" in str(result)


def test_result_fields_describe_the_run(tiny_model):
    ds = Batches(delay=0.01, workers=2, max_queue_size=4)
    result = probe(ds, tiny_model, batches=6, label="two threads")
    assert (result.label, result.workers, result.mode) == ("two threads", 2, "threads")
    assert result.max_queue_size == 4 and result.batch_size == BATCH
    assert result.batches_timed == 6
    assert result.pipeline_samples_per_s == pytest.approx(
        result.pipeline_batches_per_s * BATCH)
    assert ds.epochs_ended == 1, "the probe runs the dataset's epoch hooks like fit() does"
    assert pickle.loads(pickle.dumps(result)) == result


def test_threads_overlap_sleeping_getitem():
    # Proves the probe goes through Keras' workers: 4 threads overlap 4 sleeps (~4x).
    one = probe(Batches(n_batches=14, delay=0.04), batches=10, warmup=1)
    four = probe(Batches(n_batches=14, delay=0.04, workers=4), batches=10, warmup=4)
    assert four.pipeline_samples_per_s > 2 * one.pipeline_samples_per_s


def test_process_workers_deliver_the_same_batches():
    ds = SimulatedWork(Batches(n_batches=6), python_ops=10, workers=2,
                       use_multiprocessing=True)
    bps, sps, timed, batch_size, startup, kept = measure_pipeline(ds, batches=4, warmup=2,
                                                                  keep=4)
    assert (timed, batch_size, len(kept)) == (4, BATCH, 4)
    np.testing.assert_array_equal(kept[0][0], ds.inner[2][0])  # order kept, warm-up skipped
    assert bps > 0 and sps == pytest.approx(bps * BATCH) and startup >= 0


def test_measure_model_leaves_the_model_as_it_was(tiny_model):
    batches = [Batches()[i] for i in range(3)]
    before = [w.copy() for w in tiny_model.get_weights()]
    assert measure_model(tiny_model, batches, epochs=1) > 0
    for a, b in zip(before, tiny_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_input_gives_clear_errors(tiny_model):
    uncompiled = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compile"):
        measure_model(uncompiled, [Batches()[0]])
    with pytest.raises(ValueError, match="2 batches"):
        measure_pipeline(Batches(n_batches=1))
    with pytest.raises(ValueError, match="io_seconds"):
        SimulatedWork(Batches(), io_seconds=-1)


def test_simulated_work_costs_time_and_keeps_data():
    inner = Batches(n_batches=2)
    slow = SimulatedWork(inner, io_seconds=0.002)
    t0 = time.perf_counter()
    x, y = slow[1]
    assert time.perf_counter() - t0 >= 0.002 * BATCH
    np.testing.assert_array_equal(x, inner[1][0])
    assert len(slow) == 2
    slow.on_epoch_end()
    assert inner.epochs_ended == 1
    assert pickle.loads(pickle.dumps(slow)).python_ops == 0


def test_sweep_and_plots():
    ds = Batches(n_batches=8)
    results = sweep_workers(ds, workers=(1, 2), use_multiprocessing=(False,), batches=4,
                            progress=False, label="fast")
    assert [(r.workers, r.mode) for r in results] == [(1, "threads"), (2, "threads")]
    assert ds.workers == 1, "the sweep must not change the dataset it was given"
    ax = plot_sweep(results)
    assert [line.get_label() for line in ax.get_lines()] == ["threads"]
    with_model = [ThroughputResult("a", 1, False, 10, 8, 5, 10.0, 80.0, 0.1, 160.0),
                  ThroughputResult("b", 2, True, 10, 8, 5, 40.0, 320.0, 0.1, 160.0)]
    assert [r.bottleneck for r in with_model] == ["pipeline", "model"]
    ax = plot_ratios(with_model)
    assert [p.get_height() for p in ax.patches] == [0.5, 2.0]
    with pytest.raises(ValueError, match="with a model"):
        plot_ratios(results)


def test_fit_batches_runs_epochs_in_order():
    ds = Batches(n_batches=4, workers=2)
    epochs = fit_batches(ds, epochs=2)
    assert [len(e) for e in epochs] == [4, 4]
    np.testing.assert_array_equal(epochs[1][3][0], ds[3][0])
    assert ds.epochs_ended == 2


def test_the_private_keras_adapter_is_checked_and_fails_clearly(monkeypatch):
    assert keras.__version__ in KERAS_CHECKED, (
        f"Keras {keras.__version__} is not in KERAS_CHECKED: check that PyDatasetAdapter "
        "still works as helpers.throughput expects, then add the version")
    # Keras moves the class: a clear error naming the checked versions, no silent fallback.
    monkeypatch.setitem(__import__("sys").modules, throughput._ADAPTER_MODULE, None)
    with pytest.raises(RuntimeError, match=r"PyDatasetAdapter.*checked with Keras 3\."):
        probe(Batches(n_batches=4))
