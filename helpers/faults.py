"""Two ``PyDataset``s that misbehave on purpose, for the cookbook's recipes (notebook 12).

- ``KeepingBatches`` serves random batches; with ``keep=True`` it also appends every batch it
  serves to a list it holds (``self.kept``) that nothing empties: a leak, of the kind a
  debugging list or an unbounded cache left in ``__getitem__`` makes.
- ``FailingBatches`` decodes each sample from a record of bytes; one sample's record is cut
  short (a simulated corrupt file), so the batch that holds it raises. ``name_sample=False``
  lets numpy's own error through (it names no sample); ``True`` re-raises it naming the
  sample, its batch and its record, as the course's generators do for their files.

They live in a module, not in the notebook, because process workers
(``use_multiprocessing=True``) started by ``spawn`` or ``forkserver`` import a dataset's
class by name, and cannot import one defined in a notebook (notebook 03). This module needs
only numpy and Keras.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["FailingBatches", "KeepingBatches"]


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_index(index: object, n_batches: int) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not (
            0 <= index < n_batches):
        raise IndexError(f"batch index {index!r} out of range for {n_batches} batches")
    return int(index)


class KeepingBatches(keras.utils.PyDataset):
    """``n_batches`` batches of ``(x, y)``: ``x`` float32 ``(batch_size, features)``, random
    but the same for the same index, and ``y`` its first column.

    Args:
        keep: if True, ``__getitem__`` appends a copy of every ``x`` it serves to
            ``self.kept`` (the leak: ``batch_size * features * 4`` bytes a batch, kept for
            the life of the object that served it); if False, it keeps nothing.
        n_batches, batch_size, features: the sizes.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``.
    """

    def __init__(self, keep: bool, n_batches: int = 4, batch_size: int = 128,
                 features: int = 1024, **kwargs) -> None:
        super().__init__(**kwargs)
        self.keep = bool(keep)
        self.n_batches = _check_count("n_batches", n_batches)
        self.batch_size = _check_count("batch_size", batch_size)
        self.features = _check_count("features", features)
        self.kept: list[np.ndarray] = []

    @property
    def batch_bytes(self) -> int:
        """Bytes of one batch's ``x``: what ``keep=True`` adds to ``self.kept`` per batch."""
        return self.batch_size * self.features * 4

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        index = _check_index(index, self.n_batches)
        x = np.random.default_rng(index).random((self.batch_size, self.features),
                                                dtype=np.float32)
        if self.keep:
            self.kept.append(x.copy())  # the leak: nothing ever empties this list
        return x, x[:, :1]


class FailingBatches(keras.utils.PyDataset):
    """Batches of samples ``id-0``, ``id-1``, ... decoded from records of float32 bytes;
    the record of sample ``bad_sample`` is cut short, so its batch raises ValueError.

    The records are built in memory (a stand-in for files: the failure is simulated). Batch
    ``i`` holds samples ``i * batch_size`` to ``(i + 1) * batch_size - 1``; sample ``k``'s
    row of ``x`` (float32, ``(batch_size, features)``) is ``k`` in every column, and its
    label in ``y`` (``(batch_size, 1)``) is 1 for an odd ``k``, else 0.

    Args:
        name_sample: if False, the error is numpy's own (``cannot reshape array of size 3
            into shape (4,)``), naming no sample; if True, it is re-raised as
            ``ValueError("sample 'id-13' (record id-13.f32, batch 3): ...")``.
        n_batches, batch_size, features: the sizes.
        bad_sample: the sample whose record is cut short (``None``: none is).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``.
    """

    def __init__(self, name_sample: bool, n_batches: int = 8, batch_size: int = 4,
                 features: int = 4, bad_sample: int | None = 13, **kwargs) -> None:
        super().__init__(**kwargs)
        self.name_sample = bool(name_sample)
        self.n_batches = _check_count("n_batches", n_batches)
        self.batch_size = _check_count("batch_size", batch_size)
        self.features = _check_count("features", features)
        n = self.n_batches * self.batch_size
        if bad_sample is not None and not 0 <= bad_sample < n:
            raise ValueError(f"bad_sample must be a sample in [0, {n}) or None, "
                             f"got {bad_sample!r}")
        self.bad_sample = bad_sample
        self.records = [np.full(self.features, k, np.float32).tobytes() for k in range(n)]
        if bad_sample is not None:
            self.records[bad_sample] = self.records[bad_sample][:-4]  # one value missing

    def _decode(self, k: int) -> np.ndarray:
        try:
            return np.frombuffer(self.records[k], np.float32).reshape(self.features)
        except ValueError as e:
            if not self.name_sample:
                raise
            batch = k // self.batch_size
            raise ValueError(f"sample 'id-{k}' (record id-{k}.f32, batch {batch}): "
                             f"{e}") from e

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        index = _check_index(index, self.n_batches)
        first = index * self.batch_size
        x = np.stack([self._decode(k) for k in range(first, first + self.batch_size)])
        return x, x[:, :1] % 2
