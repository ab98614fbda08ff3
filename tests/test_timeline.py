"""Known-cost workloads: every batch loaded once per epoch, and the epochs the sleeps predict.

The bounds are generous on purpose: the costs are sleeps, which a busy machine can only
lengthen, so the tests check lower bounds tightly (a sleep never ends early) and upper bounds
loosely (far below the serial time, not close to the ideal one).
"""

from __future__ import annotations

import collections
import pickle

import keras
import matplotlib
import pytest

from helpers.timeline import SleepyBatches, Span, StepCost, Timeline, fit_timeline, plot_timeline

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def two_threads() -> Timeline:
    """Two epochs of 6 batches with 2 thread workers: small costs, for counting spans."""
    return fit_timeline(6, load_seconds=0.02, step_seconds=0.01, workers=2, epochs=2)


def test_every_batch_is_loaded_and_trained_once_per_epoch(two_threads):
    for epoch in range(2):
        loads = collections.Counter(s.batch for s in two_threads.loads(epoch))
        steps = collections.Counter(s.batch for s in two_threads.spans
                                    if s.kind == "step" and s.epoch == epoch)
        assert loads == collections.Counter(range(6)), epoch
        assert steps == collections.Counter(range(6)), epoch
    # outside the epochs, only TensorFlow's two reads to learn the batch shapes
    outside = two_threads.loads(None)
    assert len(outside) == (2 if keras.backend.backend() == "tensorflow" else 0)
    assert all(s.lane == "MainThread" for s in outside)
    assert len(two_threads.epoch_seconds) == 2
    assert two_threads.fit_seconds >= sum(two_threads.epoch_seconds)


def test_spans_are_relative_to_fit_and_ordered(two_threads):
    starts = [s.start for s in two_threads.spans]
    assert starts == sorted(starts)
    assert all(0 <= s.start <= s.end <= two_threads.fit_seconds for s in two_threads.spans)
    assert all(s.seconds >= 0.0099 for s in two_threads.spans if s.kind == "step")


def test_a_worker_pool_waits_at_each_epoch_end(two_threads):
    # Keras' OrderedEnqueuer.stop() drains its queue with a 0.1 s timeout: never shorter
    assert all(wait >= 0.09 for wait in two_threads.end_waits)


def test_one_worker_is_close_to_serial_except_for_tensorflow_s_prefetch():
    t = fit_timeline(6, load_seconds=0.1, step_seconds=0.05, workers=1)
    loads = t.loads(0)
    if keras.backend.backend() == "tensorflow":
        # one tf.data thread reads ahead: the loads (0.6 s) are the floor, steps overlap them
        assert t.epoch_seconds[0] >= 0.95 * t.n_batches * t.load_seconds
        assert all(s.lane != "MainThread" for s in loads)
    else:  # JAX and PyTorch: load, then step, on the training thread
        assert t.epoch_seconds[0] >= 0.95 * t.serial_seconds
        assert all(s.lane == "MainThread" for s in loads)
        assert t.hidden_fraction < 0.2
    assert t.end_waits[0] < 0.09  # no pool, no drain


def test_four_threads_hide_most_of_a_slow_load():
    t = fit_timeline(8, load_seconds=0.2, step_seconds=0.02, workers=4)
    assert t.ideal_seconds == pytest.approx(8 * 0.05)
    assert t.epoch_seconds[0] >= 0.95 * t.ideal_seconds
    assert t.epoch_seconds[0] < 0.6 * t.serial_seconds  # serial: 1.76 s; expected ~0.55 s
    assert len({s.lane for s in t.loads(0)}) >= 3
    assert 0.5 < t.hidden_fraction <= 1.0  # the steps (0.16 s) bound it from above


@pytest.mark.backend_independent
def test_ideal_and_serial_are_per_epoch_arithmetic():
    t = Timeline(10, load_seconds=0.2, step_seconds=0.05, workers=2, use_multiprocessing=False,
                 backend="any")
    assert t.serial_seconds == pytest.approx(2.5)
    assert t.ideal_seconds == pytest.approx(1.0)
    t.workers = 8
    assert t.ideal_seconds == pytest.approx(0.5)  # the step sets the pace


@pytest.mark.backend_independent
def test_sleepy_batches_pickle_without_their_lock_and_keep_working():
    data = SleepyBatches(3, 0.0, batch_size=2, workers=2)
    data[1]
    copy = pickle.loads(pickle.dumps(data))
    assert (copy.n_batches, copy.workers, len(copy.spans)) == (3, 2, 1)
    x, y = copy[2]
    assert x.shape == (2, 4) and y.shape == (2, 1)
    assert [s.batch for s in copy.spans] == [1, 2] and len(data.spans) == 1
    with pytest.raises(IndexError):
        copy[3]


@pytest.mark.backend_independent
def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="load_seconds"):
        SleepyBatches(3, -1.0)
    with pytest.raises(ValueError, match="step_seconds"):
        StepCost(-0.1)
    with pytest.raises(ValueError, match="workers"):
        fit_timeline(3, 0.0, 0.0, workers=0)


@pytest.mark.backend_independent
def test_plot_returns_axes_for_a_hand_made_timeline():
    spans = [Span("load", 0, "MainThread", 0.0, 0.1, None),
             Span("load", 0, "Thread-3 (worker)", 0.2, 0.4, 0),
             Span("load", 1, "Thread-4 (worker)", 0.2, 0.4, 0),
             Span("step", 0, "model", 0.4, 0.45, 0), Span("step", 1, "model", 0.45, 0.5, 0)]
    t = Timeline(2, 0.2, 0.05, 2, False, "jax", spans, [0.35], 0.6, [(0.2, 0.55)])
    ax = plot_timeline(t, title="hand-made")
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels == ["main thread", "worker thread 1", "worker thread 2", "model (step)"]
    assert ax.get_title() == "hand-made"


def test_plot_of_a_real_fit(two_threads):
    ax = plot_timeline(two_threads)
    rows = [tick.get_text() for tick in ax.get_yticklabels()]
    assert rows[-1] == "model (step)" and "worker thread 2" in rows
