"""Timing readers and training epochs fairly on a busy machine.

``best_rates`` times readers over full passes, and ``best_epoch_seconds`` times ``fit()``
epochs; both interleave their rounds, so a busy moment of the machine is less likely to
favour one contender, and keep each one's best. ``read_files`` is a baseline for per-file
readers (Python ``open()`` + ``read()``; readers using lower-level calls can beat it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["best_epoch_seconds", "best_rates", "read_files", "serve_all"]


def read_files(paths: Iterable[str | Path]) -> None:
    """Open each file and read its bytes, nothing else: a baseline for per-file readers."""
    for p in paths:
        with open(p, "rb") as f:
            f.read()


def serve_all(dataset) -> None:
    """Ask a PyDataset for every batch once, in this thread."""
    for i in range(len(dataset)):
        dataset[i]


def best_rates(readers: dict[str, tuple[Callable[[], object], int]],
               rounds: int = 5) -> dict[str, float]:
    """Best samples/s of each reader ``name: (one full pass, samples it serves)``."""
    best = dict.fromkeys(readers, 0.0)
    for _ in range(rounds):
        for name, (one_pass, n) in readers.items():
            start = time.perf_counter()
            one_pass()
            best[name] = max(best[name], n / (time.perf_counter() - start))
    return best


def best_epoch_seconds(runs: dict[str, tuple], rounds: int = 3) -> dict[str, float]:
    """Fastest ``fit()`` epoch, in seconds, of each run ``name: (compiled model, fit kwargs)``.

    Every round trains each model one epoch in turn; a first round, which traces and
    compiles, is not counted, nor the set-up ``fit()`` does before an epoch starts.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    best: dict[str, float] = {}
    for r in range(rounds + 1):
        for name, (model, fit_kwargs) in runs.items():
            timer = EpochTimer()
            model.fit(epochs=1, verbose=0, callbacks=[timer], **fit_kwargs)
            if r:
                best[name] = min(best.get(name, float("inf")), timer.seconds)
    return best
