"""``ArrayRows``: a stand-in for the course generators' resumable protocol, for unit tests.

``WithColumns`` and ``MidEpochCheckpoint`` rely only on that protocol (``set_epoch(epoch,
start_batch=0)``, ``batch_rows``, ``batch_ids``, ``num_samples``, ``batches_per_epoch``),
so their tests use this small in-memory dataset rather than the course's classes.
"""

from __future__ import annotations

import keras
import numpy as np


class ArrayRows(keras.utils.PyDataset):
    """Batches of in-memory arrays, in an order that is a function of (seed, epoch).

    The order of epoch ``e`` is ``default_rng([seed, e]).permutation(n)`` (``shuffle``) or
    ``arange(n)``; ``y=None`` serves X alone; sample ``k``'s ID is ``f"s{k}"``.
    """

    def __init__(self, x, y=None, batch_size=4, seed=0, shuffle=True, epoch=0,
                 start_batch=0, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.seed, self.shuffle = seed, shuffle
        self.batches_per_epoch = -(-len(x) // batch_size)
        self.set_epoch(epoch, start_batch)

    @property
    def num_samples(self):
        return len(self.x)

    def set_epoch(self, epoch, start_batch=0):
        if not 0 <= start_batch < self.batches_per_epoch:
            raise ValueError(f"start_batch={start_batch} outside [0, {self.batches_per_epoch})")
        n = len(self.x)
        order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
                 else np.arange(n))
        self.indexes = order[start_batch * self.batch_size:]
        self.epoch, self.start_batch = epoch, start_batch

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def __len__(self):
        return -(-len(self.indexes) // self.batch_size)

    def batch_rows(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        return self.indexes[index * self.batch_size:(index + 1) * self.batch_size]

    def batch_ids(self, index):
        return [f"s{k}" for k in self.batch_rows(index)]

    def __getitem__(self, index):
        rows = self.batch_rows(index)
        return self.x[rows] if self.y is None else (self.x[rows], self.y[rows])

