"""Known-cost workloads, and a timeline of when each batch was loaded and when it was trained.

Timings of real loaders on a shared machine wobble; a loader that *sleeps* a known time per
batch, and a training step that costs a known time, give the same picture on any machine.
Sleeping stands for waiting (on a disk, a network, an accelerator) and, like that waiting,
releases Python's GIL. So ``fit_timeline(n_batches, load_seconds, step_seconds, workers=...)``
answers "how long should this epoch take?" before it runs, and ``plot_timeline`` shows why:
one row per loader thread, one for the model, a bar per batch.

- ``SleepyBatches``: a ``PyDataset`` whose ``__getitem__`` sleeps ``load_seconds``, then
  returns a tiny batch; it records a *load span* (batch, thread, start, end) per call.
- ``StepCost``: a callback that makes every training step cost ``step_seconds`` more for the
  host (it sleeps in ``on_train_batch_end``, after the step has taken its batch), as if the
  host waited for an accelerator; it records a *step span* per step.
- ``fit_timeline``: trains a tiny model on the two and returns a ``Timeline``.

How Keras 3 (checked with 3.15.1, ``keras/src/trainers/data_adapters/py_dataset_adapter.py``
and each backend's ``trainer.py``) runs the dataset, which is what the timeline shows:

- ``workers=1`` (threads): no worker pool. On **TensorFlow** the adapter wraps the dataset in
  ``tf.data.Dataset.from_generator(...).prefetch(AUTOTUNE)``, so ``__getitem__`` runs on a
  ``tf.data`` thread that reads ahead while the step runs: loading already overlaps the step,
  with one loader. On **JAX** and **PyTorch**, ``__getitem__`` runs on the training thread,
  one batch then one step (JAX on an accelerator transfers one batch ahead, but still reads
  it on that thread).
- ``workers >= 2``, or ``use_multiprocessing=True``: an ``OrderedEnqueuer`` runs
  ``__getitem__`` in a pool of threads (or processes) and keeps up to ``max_queue_size``
  batches in flight, on every backend. At the end of every epoch, ``PyDatasetAdapter.
  on_epoch_end`` calls ``PyDatasetEnqueuer.stop()``, which empties its queue with
  ``get(timeout=0.1)`` until the queue is empty: a fixed wait of about 0.1 s per epoch. It
  comes after the epoch's last step and before the callbacks' ``on_epoch_end``, so an epoch
  timer counts it; ``Timeline.end_waits`` measures it apart.
- On TensorFlow, ``fit()`` also reads 2 batches before the first epoch, to learn their
  shapes (``get_tf_dataset``). The timeline keeps them, with ``epoch=None``.

Process workers (``use_multiprocessing=True``) run ``__getitem__`` on a copy of the dataset
in another process, whose ``spans`` list this process never sees: their loads are not in the
timeline (the steps are). The dataset pickles without its lock, for start methods that
pickle it (``spawn``, ``forkserver``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import keras
import numpy as np

__all__ = ["Span", "SleepyBatches", "StepCost", "Timeline", "fit_timeline", "plot_timeline"]

_FEATURES = 4


@dataclass(frozen=True)
class Span:
    """One bar of the timeline: a batch loaded (``kind="load"``) or trained (``"step"``).

    ``lane`` is the thread that loaded it (its name) or ``"model"``; times are seconds
    (``time.perf_counter``, or relative to the start of ``fit()`` in a ``Timeline``);
    ``epoch`` is the training epoch the span fell in (None: outside any epoch).
    """

    kind: str
    batch: int
    lane: str
    start: float
    end: float
    epoch: int | None = None

    @property
    def seconds(self) -> float:
        return self.end - self.start


class SleepyBatches(keras.utils.PyDataset):
    """``n_batches`` tiny batches, each of which takes ``load_seconds`` to "load".

    The sleep stands for waiting on a disk or a network: it releases the GIL, so several
    thread workers can wait at once. Every call of ``__getitem__`` appends a load ``Span`` to
    ``spans`` (thread-safe; thread workers and the main thread only: see the module's notes
    on process workers). The batches are ``(x, y)`` of shapes ``(batch_size, 4)`` and
    ``(batch_size, 1)``, float32, with x holding the batch index, so a tiny model can train.

    ``**kwargs``: ``workers``, ``use_multiprocessing``, ``max_queue_size``.
    """

    def __init__(self, n_batches: int, load_seconds: float, batch_size: int = 8,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if n_batches < 0 or load_seconds < 0 or batch_size < 1:
            raise ValueError(f"need n_batches >= 0, load_seconds >= 0 and batch_size >= 1, "
                             f"got {n_batches}, {load_seconds}, {batch_size}")
        self.n_batches, self.load_seconds = int(n_batches), float(load_seconds)
        self.batch_size = int(batch_size)
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, index: int):
        if not 0 <= index < self.n_batches:
            raise IndexError(f"batch index {index} out of range for {self.n_batches} batches")
        start = time.perf_counter()
        time.sleep(self.load_seconds)
        x = np.full((self.batch_size, _FEATURES), index / max(1, self.n_batches), np.float32)
        y = np.ones((self.batch_size, 1), np.float32)
        span = Span("load", index, threading.current_thread().name, start, time.perf_counter())
        with self._lock:
            self.spans.append(span)
        return x, y

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]  # a lock cannot be pickled; each copy gets its own
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class StepCost(keras.callbacks.Callback):
    """Makes every training step cost ``step_seconds`` more for the host.

    It sleeps in ``on_train_batch_end``, after the backend's train function has taken the
    step's batch: so the sleep stands for the host waiting on an accelerator's step, and
    never hides a load. Appends a step ``Span`` (lane ``"model"``) per step to ``spans``.
    Not ``async_safe``: Keras calls it on the training thread, as the cost must be.
    """

    def __init__(self, step_seconds: float) -> None:
        super().__init__()
        if step_seconds < 0:
            raise ValueError(f"step_seconds must be >= 0, got {step_seconds}")
        self.step_seconds = float(step_seconds)
        self.spans: list[Span] = []
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None) -> None:
        start = time.perf_counter()
        time.sleep(self.step_seconds)
        self.spans.append(Span("step", batch, "model", start, time.perf_counter(), self._epoch))


class _EpochClock(keras.callbacks.Callback):
    """When each epoch began and ended (``on_epoch_begin`` to ``on_epoch_end``)."""

    def __init__(self) -> None:
        super().__init__()
        self.begins: list[float] = []
        self.ends: list[float] = []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.begins.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.ends.append(time.perf_counter())


@dataclass
class Timeline:
    """What ``fit_timeline`` measured. Times are seconds; span times count from fit()'s start.

    ``epoch_seconds``: each epoch, from the callbacks' ``on_epoch_begin`` to ``on_epoch_end``.
    ``fit_seconds``: the whole ``fit()`` call (set-up, every epoch, each epoch's end).
    ``ideal_seconds`` and ``serial_seconds`` are per epoch: with loading fully hidden behind
    the steps (``workers`` loaders at once), and with loading and steps one after the other.
    """

    n_batches: int
    load_seconds: float
    step_seconds: float
    workers: int
    use_multiprocessing: bool
    backend: str
    spans: list[Span] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    fit_seconds: float = 0.0
    epoch_bounds: list[tuple[float, float]] = field(default_factory=list)

    @property
    def ideal_seconds(self) -> float:
        return self.n_batches * max(self.step_seconds, self.load_seconds / self.workers)

    @property
    def serial_seconds(self) -> float:
        return self.n_batches * (self.load_seconds + self.step_seconds)

    @property
    def end_waits(self) -> list[float]:
        """Per epoch: from the end of its last step to ``on_epoch_end``. About 0 with one
        worker; Keras' fixed ~0.1 s queue drain with a worker pool (see the module notes)."""
        waits = []
        for k, (_, end) in enumerate(self.epoch_bounds):
            steps = [s.end for s in self.spans if s.kind == "step" and s.epoch == k]
            waits.append(end - max(steps) if steps else float("nan"))
        return waits

    @property
    def hidden_fraction(self) -> float:
        """Share of the first epoch's loading time that did not lengthen it: (serial time -
        epoch time, less its end wait) / (n_batches * load_seconds). 1: all loading ran beside
        the steps; 0: none did. The course's one formula for "how much loading was hidden"."""
        if not self.epoch_seconds or self.load_seconds == 0:
            return float("nan")
        busy = self.epoch_seconds[0] - self.end_waits[0]
        return (self.serial_seconds - busy) / (self.n_batches * self.load_seconds)

    def loads(self, epoch: int | None = 0) -> list[Span]:
        """The load spans that fell in ``epoch`` (None: the reads outside any epoch)."""
        return [s for s in self.spans if s.kind == "load" and s.epoch == epoch]

    def __str__(self) -> str:
        epochs = ", ".join(f"{s:.2f}" for s in self.epoch_seconds)
        mode = "processes" if self.use_multiprocessing else "threads"
        return (f"workers={self.workers} ({mode}), {self.backend}: epoch {epochs} s; "
                f"serial {self.serial_seconds:.2f} s, ideal {self.ideal_seconds:.2f} s")


def _tiny_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((_FEATURES,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def fit_timeline(n_batches: int, load_seconds: float, step_seconds: float, workers: int = 1,
                 use_multiprocessing: bool = False, epochs: int = 1, batch_size: int = 8,
                 seed: int = 0) -> Timeline:
    """Train a tiny model on ``SleepyBatches`` with a ``StepCost``; return the ``Timeline``.

    The model is built, and its train function traced, by a short ``fit()`` on another
    ``SleepyBatches`` first, so the timed ``fit()`` holds neither compilation nor the
    stale-batch problem of an unbuilt model with ``workers >= 2`` on JAX and PyTorch.
    ``fit(shuffle=False)``: batch k is step k of each epoch.
    """
    if n_batches < 1 or epochs < 1 or workers < 1:
        raise ValueError(f"need n_batches, epochs and workers >= 1, got {n_batches}, "
                         f"{epochs}, {workers}")
    model = _tiny_model(seed)
    model.fit(SleepyBatches(2, 0.0, batch_size), epochs=1, verbose=0, shuffle=False)
    data = SleepyBatches(n_batches, load_seconds, batch_size, workers=workers,
                         use_multiprocessing=use_multiprocessing,
                         max_queue_size=max(10, 2 * workers))
    cost, clock = StepCost(step_seconds), _EpochClock()
    t0 = time.perf_counter()
    model.fit(data, epochs=epochs, verbose=0, shuffle=False, callbacks=[clock, cost])
    fit_seconds = time.perf_counter() - t0
    bounds = list(zip(clock.begins, clock.ends, strict=True))

    def epoch_of(t: float) -> int | None:
        return next((k for k, (b, e) in enumerate(bounds) if b <= t <= e), None)

    spans = [Span(s.kind, s.batch, s.lane, s.start - t0, s.end - t0,
                  s.epoch if s.kind == "step" else epoch_of(s.start))
             for s in sorted(data.spans + cost.spans, key=lambda s: s.start)]
    return Timeline(n_batches, float(load_seconds), float(step_seconds), int(workers),
                    bool(use_multiprocessing), keras.backend.backend(), spans,
                    [e - b for b, e in bounds], fit_seconds,
                    [(b - t0, e - t0) for b, e in bounds])


def _lane_labels(timeline: Timeline) -> dict[tuple[str, int | None], str]:
    """Readable row names for each (thread, epoch) that loaded: the main thread, TensorFlow's
    tf.data thread, and pool threads numbered in order of first use within each epoch (the
    pool is started again every epoch, with new threads)."""
    labels: dict[tuple[str, int | None], str] = {}
    pool: dict[int | None, list[str]] = {}
    for s in timeline.spans:
        if s.kind != "load" or (s.lane, s.epoch) in labels:
            continue
        if s.lane == "MainThread":
            label = "main thread"
        elif s.lane.startswith("Dummy"):  # a thread Python did not start: tf.data's
            label = "tf.data thread" if timeline.backend == "tensorflow" else "other thread"
        else:
            seen = pool.setdefault(s.epoch, [])
            seen.append(s.lane)
            label = f"worker thread {len(seen)}"
        labels[(s.lane, s.epoch)] = label
    return labels


def _row_order(label: str) -> tuple[int, int]:
    first = ("main thread", "tf.data thread", "other thread")
    if label in first:
        return first.index(label), 0
    return len(first), int(label.rsplit(" ", 1)[1])


def plot_timeline(timeline: Timeline, ax=None, title: str | None = None):
    """One row per loader thread and one for the model; a bar per span, its batch number
    on it where the bar is wide enough. Loads outside the epochs are drawn pale. Returns
    the axes."""
    import matplotlib.pyplot as plt

    labels = _lane_labels(timeline)
    rows = [*dict.fromkeys(sorted(labels.values(), key=_row_order)), "model (step)"]
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.6 + 0.4 * len(rows)))
    end = max([s.end for s in timeline.spans] + [timeline.fit_seconds, 1e-9])
    shared = len(ax.get_shared_x_axes().get_siblings(ax)) > 1  # keep the longest's range
    ax.set_xlim(0, max(end * 1.01, ax.get_xlim()[1]) if shared else end * 1.01)
    room = 0.025 * ax.get_xlim()[1]  # a bar this wide holds a number
    for span in timeline.spans:
        y = rows.index(labels[(span.lane, span.epoch)] if span.kind == "load"
                       else "model (step)")
        color = "tab:blue" if span.kind == "load" else "tab:orange"
        alpha = 0.35 if span.epoch is None else 0.9
        ax.broken_barh([(span.start, span.seconds)], (y - 0.4, 0.8), facecolors=color,
                       edgecolor="white", alpha=alpha)
        cost = timeline.load_seconds if span.kind == "load" else timeline.step_seconds
        if cost > room:  # by the nominal cost, so a row is numbered all or nothing
            ax.text(span.start + span.seconds / 2, y, str(span.batch), ha="center",
                    va="center", fontsize=7, color="white")
    for begin, stop in timeline.epoch_bounds:
        ax.axvline(begin, color="grey", lw=0.8, ls=":")
        ax.axvline(stop, color="grey", lw=0.8, ls=":")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("seconds since fit() started")
    mode = "processes" if timeline.use_multiprocessing else "threads"
    ax.set_title(title or f"workers={timeline.workers} ({mode}): "
                          f"epoch {', '.join(f'{s:.2f}' for s in timeline.epoch_seconds)} s")
    return ax
