"""Where does training time go? Measure the input pipeline and the model separately.

``probe(dataset, model)`` answers the article's claim "the bottleneck is then the GPU, not
data generation" with two numbers:

- **pipeline**: samples per second the ``PyDataset`` delivers when consumed the way
  ``fit()`` consumes it, i.e. through Keras' own adapter, which starts the dataset's
  ``workers`` (threads, or processes with ``use_multiprocessing=True``) and keeps up to
  ``max_queue_size`` batches in flight. Warm-up batches (pool start-up) are not timed.
- **model**: samples per second the compiled model trains on some of the *same* batches
  held in memory, through ``fit()`` (its compiled train function), first epoch excluded.

If the pipeline delivers fewer samples per second than the model consumes, the model waits
for data: the input pipeline is the bottleneck. ``sweep_workers`` repeats the pipeline
measure over worker counts and threads/processes. ``helpers.throughput_plots`` draws the
results; ``helpers.workloads`` holds datasets of known cost to measure.

Keras has no public way to consume a ``PyDataset`` with its workers outside ``fit()``, so
one small function, ``_pydataset_adapter``, uses Keras' private adapter; it names the Keras
version it was checked with and fails with a clear message if that class moves.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from .progress import progress_bar

__all__ = [
    "ThroughputResult",
    "fit_batches",
    "measure_model",
    "measure_pipeline",
    "probe",
    "sweep_workers",
]


# --------------------------------------------------------------------------------------
# Consuming a PyDataset the way fit() does
# --------------------------------------------------------------------------------------

KERAS_CHECKED = ("3.15.1",)
"""Keras versions whose private ``PyDatasetAdapter`` ``_pydataset_adapter`` was checked with."""

_ADAPTER_MODULE = "keras.src.trainers.data_adapters.py_dataset_adapter"


def _pydataset_adapter(dataset: keras.utils.PyDataset):
    """Keras' own ``PyDatasetAdapter`` around ``dataset``: the course's one private Keras API.

    The adapter is what ``fit()`` wraps a ``PyDataset`` in, and what starts its workers
    (``OrderedEnqueuer``); Keras exports no public equivalent. The public ``iter(dataset)``
    would run ``__getitem__`` in the main thread, with no workers at all, which is not what
    we want to measure. Checked with the Keras versions in ``KERAS_CHECKED``: when a later
    version moves or changes the class, this raises RuntimeError saying so (no silent
    fallback to a measurement without workers).
    """
    try:
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter
    except ImportError as e:
        raise RuntimeError(
            f"helpers.throughput consumes a PyDataset through Keras' private "
            f"{_ADAPTER_MODULE}.PyDatasetAdapter (checked with Keras {', '.join(KERAS_CHECKED)})"
            f", which Keras {keras.__version__} does not have ({e}). Install a checked "
            "version, or update helpers.throughput._pydataset_adapter.") from e
    adapter = PyDatasetAdapter(dataset, shuffle=False)
    missing = [m for m in ("on_epoch_begin", "get_numpy_iterator", "on_epoch_end")
               if not callable(getattr(adapter, m, None))]
    if missing:
        raise RuntimeError(
            f"Keras {keras.__version__}'s PyDatasetAdapter lacks {missing} (checked with Keras "
            f"{', '.join(KERAS_CHECKED)}); update helpers.throughput._pydataset_adapter.")
    return adapter


class _EpochOfBatches:
    """One epoch of ``dataset`` as ``fit()`` would iterate it; use as a context manager.

    Calls ``on_epoch_begin`` / ``on_epoch_end`` like ``fit()`` does (the latter also stops
    the workers), so the dataset moves on to its next epoch afterwards, as after a real one.
    """

    def __init__(self, dataset: keras.utils.PyDataset) -> None:
        self._adapter = _pydataset_adapter(dataset)

    def __enter__(self) -> Iterator:
        self._adapter.on_epoch_begin()
        return iter(self._adapter.get_numpy_iterator())

    def __exit__(self, *exc) -> None:
        self._adapter.on_epoch_end()


def fit_batches(dataset: keras.utils.PyDataset, epochs: int = 1) -> list[list]:
    """The batches ``fit()`` would receive from ``dataset``, epoch by epoch, workers and all.

    For inspecting small datasets (every batch is kept in memory), e.g. to check that
    random augmentation differs between batches computed by different worker processes.
    """
    out = []
    for _ in range(epochs):
        with _EpochOfBatches(dataset) as it:
            out.append([next(it) for _ in range(len(dataset))])
    return out


def _batch_samples(batch) -> int:
    """Number of samples in a batch: the length of its first array."""
    return len(keras.tree.flatten(batch)[0])


@dataclass(frozen=True)
class ThroughputResult:
    """What ``probe`` measured. Rates are per second; ``model_*`` is None without a model.

    ``ratio`` = pipeline samples/s ÷ model samples/s: below 1 the model waits for data.
    """

    label: str
    workers: int
    use_multiprocessing: bool
    max_queue_size: int
    batch_size: int
    batches_timed: int
    pipeline_batches_per_s: float
    pipeline_samples_per_s: float
    startup_s: float
    model_samples_per_s: float | None = None

    @property
    def mode(self) -> str:
        """"processes" or "threads" (one worker without multiprocessing: the main thread)."""
        return "processes" if self.use_multiprocessing else "threads"

    @property
    def ratio(self) -> float | None:
        if not self.model_samples_per_s:
            return None
        return self.pipeline_samples_per_s / self.model_samples_per_s

    @property
    def bottleneck(self) -> str | None:
        """``"pipeline"`` if the model would wait for data, ``"model"`` if not, else None."""
        if self.ratio is None:
            return None
        return "pipeline" if self.ratio < 1 else "model"

    @property
    def verdict(self) -> str:
        """One sentence that says which side limits training."""
        r = self.ratio
        if r is None:
            return "no model measured"
        if r < 1:
            return f"the input pipeline is the bottleneck ({r:.2f}x)"
        if r < 2:
            return (f"the model is the bottleneck, narrowly ({r:.2f}x): where both share the "
                    "same CPU cores, loading still slows training")
        return f"the model is the bottleneck ({r:.1f}x): the data arrives faster than needed"

    def __str__(self) -> str:
        text = (f"{self.label}: pipeline {self.pipeline_samples_per_s:,.0f} samples/s "
                f"(workers={self.workers}, {self.mode})")
        if self.model_samples_per_s is None:
            return text
        return f"{text} vs model {self.model_samples_per_s:,.0f} samples/s -> {self.verdict}"


def measure_pipeline(
    dataset: keras.utils.PyDataset, batches: int = 20, warmup: int | None = None,
    keep: int = 0,
) -> tuple[float, float, int, int, float, list]:
    """Time ``batches`` batches of one epoch of ``dataset``, consumed as ``fit()`` does.

    ``warmup`` batches are consumed first and not timed (default: ``max(2, workers)``, so
    that the first burst of batches the workers finish together is not counted). Returns
    ``(batches_per_s, samples_per_s, batches_timed, batch_size, startup_s, kept)`` where
    ``startup_s`` is the wait for the first batch (pool start-up included) and ``kept`` the
    first ``keep`` timed batches, for ``measure_model``.
    """
    n_total = len(dataset)
    if n_total < 2 or batches < 1:
        raise ValueError(f"need batches >= 1 and a dataset of >= 2 batches "
                         f"(got batches={batches}, len(dataset)={n_total})")
    if warmup is None:
        warmup = max(2, int(dataset.workers))
    warmup = max(1, min(warmup, n_total - 1))
    batches = min(batches, n_total - warmup)
    kept: list = []
    samples = 0
    batch_size = 0
    with _EpochOfBatches(dataset) as it:
        t0 = time.perf_counter()
        first = next(it)
        startup_s = time.perf_counter() - t0
        for _ in range(warmup - 1):
            next(it)
        t_start = time.perf_counter()
        for k in range(batches):
            batch = next(it)
            n = _batch_samples(batch)
            samples += n
            batch_size = max(batch_size, n)
            if k < keep:
                kept.append(batch)
        elapsed = max(time.perf_counter() - t_start, 1e-9)
    if not kept and keep:
        kept.append(first)
    return batches / elapsed, samples / elapsed, batches, batch_size, startup_s, kept


class _StepTimer(keras.callbacks.Callback):
    """Time at which every training step of every epoch finished.

    ``async_safe`` lets Keras call it from its callback thread, after the step's logs are
    ready, instead of making the training loop wait for every step.
    """

    async_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.ends: list[dict[int, float]] = []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.ends.append({})

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.ends[-1][batch] = time.perf_counter()

    def steps_per_second(self, skip_epochs: int = 1) -> float:
        """Steps per second from each epoch's first step end to its last (epoch ends and
        the first, compiling, epochs excluded)."""
        steps = seconds = 0.0
        for ends in self.ends[skip_epochs:]:
            first, last = min(ends), max(ends)
            steps += last - first
            seconds += ends[last] - ends[first]
        return steps / max(seconds, 1e-9)


def _snapshot(model: keras.Model):
    """Weights and optimizer state of a built model, so a probe leaves no trace."""
    if not model.built:
        return None
    opt = model.optimizer
    if not opt.built:
        opt.build(model.trainable_variables)
    return model.get_weights(), [keras.ops.convert_to_numpy(v) for v in opt.variables]


def _restore(model: keras.Model, state) -> None:
    if state is None:
        return
    weights, opt_values = state
    model.set_weights(weights)
    for v, value in zip(model.optimizer.variables, opt_values, strict=True):
        v.assign(value)


def measure_model(model: keras.Model, batches: Sequence, epochs: int = 3,
                  min_steps: int = 8, restore: bool = True) -> float:
    """Samples per second ``model`` trains on ``batches`` held in memory.

    The batches (repeated to make at least ``min_steps``) are stacked into arrays and fed to
    ``model.fit`` for ``epochs + 1`` epochs; the first, which traces and compiles the train
    function, is not timed, nor the work between epochs. With ``restore`` the
    model's weights and optimizer state are put back afterwards (for a built model).
    """
    if not getattr(model, "compiled", False):
        raise ValueError("measure_model needs a compiled model: call model.compile(...) first")
    if not batches:
        raise ValueError("measure_model needs at least one batch")
    batches = [b if isinstance(b, (tuple, list)) else (b,) for b in batches]
    batches = batches * math.ceil(min_steps / len(batches))
    stacked = keras.tree.map_structure(lambda *parts: np.concatenate(parts), *batches)
    batch_size = _batch_samples(batches[0])
    state = _snapshot(model) if restore else None
    timer = _StepTimer()
    try:
        data = dict(zip(("x", "y", "sample_weight"), stacked, strict=False))
        model.fit(**data, batch_size=batch_size, epochs=epochs + 1, shuffle=False, verbose=0,
                  callbacks=[timer])
    finally:
        if restore:
            _restore(model, state)
    return timer.steps_per_second(skip_epochs=1) * batch_size


def probe(
    dataset: keras.utils.PyDataset, model: keras.Model | None = None, *, batches: int = 20,
    warmup: int | None = None, model_batches: int = 8, model_epochs: int = 3,
    label: str | None = None,
) -> ThroughputResult:
    """Measure the pipeline (and, given a compiled model, the model) on ``dataset``.

    ``batches``, ``warmup``: as in ``measure_pipeline``. ``model_batches`` of the timed
    batches are kept in memory and trained on for ``model_epochs`` timed epochs
    (``measure_model``). The dataset advances by one epoch, as after a ``fit()`` epoch.
    """
    bps, sps, timed, batch_size, startup_s, kept = measure_pipeline(
        dataset, batches=batches, warmup=warmup, keep=model_batches if model else 0)
    model_sps = measure_model(model, kept, epochs=model_epochs) if model is not None else None
    return ThroughputResult(
        label=label or type(dataset).__name__,
        workers=int(dataset.workers),
        use_multiprocessing=bool(dataset.use_multiprocessing),
        max_queue_size=int(dataset.max_queue_size),
        batch_size=batch_size, batches_timed=timed,
        pipeline_batches_per_s=bps, pipeline_samples_per_s=sps, startup_s=startup_s,
        model_samples_per_s=model_sps,
    )


def sweep_workers(
    dataset: keras.utils.PyDataset, workers: Iterable[int] = (1, 2, 4),
    use_multiprocessing: Iterable[bool] = (False, True), *, label: str | None = None,
    progress: bool = True, **probe_kwargs,
) -> list[ThroughputResult]:
    """``probe`` a copy of ``dataset`` for every (workers, use_multiprocessing) pair.

    The dataset itself is not modified: each run uses a shallow copy with ``workers`` and
    ``use_multiprocessing`` set (the ``max_queue_size`` is the dataset's).
    """

    grid = [(w, mp) for mp in use_multiprocessing for w in workers]
    results = []
    for w, mp in progress_bar(grid, progress, desc=label or "sweep", leave=False):
        trial = copy.copy(dataset)
        trial.workers, trial.use_multiprocessing = int(w), bool(mp)
        results.append(probe(trial, label=label, **probe_kwargs))
    return results
