"""Datasets of known cost, for experiments with workers.

``InMemoryBatches`` slices arrays already in memory: a pipeline that costs (almost)
nothing. ``SimulatedWork`` wraps a dataset and adds a known cost per sample (sleeping, like a
slow disk, or a pure-Python loop, like Python-level augmentation). They live in a module,
not a notebook, so that process workers started with "spawn" (macOS, Windows) can import
them.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np

__all__ = ["InMemoryBatches", "SimulatedWork"]


class InMemoryBatches(keras.utils.PyDataset):
    """Batches sliced from arrays already in memory: a pipeline that costs (almost) nothing.

    The reference point for probes, and a light inner dataset for ``SimulatedWork`` (its
    small batches cost little to send back from a worker process).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if len(x) != len(y) or batch_size < 1:
            raise ValueError(f"need len(x) == len(y) and batch_size >= 1, got {len(x)}, "
                             f"{len(y)}, {batch_size}")
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


class SimulatedWork(keras.utils.PyDataset):
    """Serves the batches of ``inner`` after a known extra cost per sample.

    Args:
        inner: any dataset of batches (``len`` and ``[i]``), e.g. a ``DataGenerator``.
        io_seconds: sleep this long per sample, as a network disk would make us wait. A
            sleeping thread releases the GIL, like one blocked in a file read.
        python_ops: run this many steps of a pure-Python loop per sample, standing for
            augmentation written in Python. Such a loop holds the GIL all along.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``.
    """

    def __init__(self, inner, io_seconds: float = 0.0, python_ops: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        if io_seconds < 0 or python_ops < 0:
            raise ValueError(f"io_seconds and python_ops must be >= 0, got {io_seconds}, "
                             f"{python_ops}")
        self.inner = inner
        self.io_seconds = float(io_seconds)
        self.python_ops = int(python_ops)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        batch = self.inner[index]
        n = len(keras.tree.flatten(batch)[0])  # samples in the batch
        if self.io_seconds:
            time.sleep(self.io_seconds * n)
        acc = index
        for _ in range(self.python_ops * n):
            acc = (acc * 1103515245 + 12345) & 0x7FFFFFFF
        return batch

    def on_epoch_end(self) -> None:
        if hasattr(self.inner, "on_epoch_end"):
            self.inner.on_epoch_end()
