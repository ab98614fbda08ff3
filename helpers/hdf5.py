"""Batches read from an HDF5 file by worker processes, for the cookbook's recipe 3 (notebook 13).

- ``HDF5Batches`` keeps the file's *path* and opens the file on the first ``__getitem__`` in
  each process (keyed by ``os.getpid()``), so that no worker reads through a handle its parent
  opened, which h5py advises against; ``__getstate__`` leaves the open handles out, so the
  dataset pickles, as ``spawn`` and ``forkserver`` need.
- ``SharedHandleBatches`` is the usual first attempt, kept for the notebook's demonstration
  only: it opens the file in ``__init__``, in the parent, and cannot be pickled. Do not use it.

They live in a module, not in the notebook, because process workers
(``use_multiprocessing=True``) started by ``spawn`` (macOS, Windows) or ``forkserver`` (Linux
from Python 3.14) import a dataset's class by name, and cannot import one defined in a
notebook's ``__main__``. h5py is imported only when a file is opened, so ``import helpers``
does not need it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from .generator import epoch_order, resolve_seed

if TYPE_CHECKING:
    import h5py

__all__ = ["HDF5Batches", "SharedHandleBatches"]


def _open(path: Path) -> h5py.File:
    """``path`` opened read-only, or an error that names it."""
    import h5py  # here, not at the top: only reading a file needs h5py

    try:
        return h5py.File(path, "r")
    except FileNotFoundError as e:
        raise FileNotFoundError(f"HDF5 file {path} does not exist") from e
    except OSError as e:
        raise OSError(f"cannot open {path} as an HDF5 file: {e}") from e


def _dataset(f: h5py.File, name: str, path: Path) -> h5py.Dataset:
    """The dataset ``name`` of the open file ``f``, or KeyError naming the file and ``name``."""
    import h5py

    if name not in f or not isinstance(f[name], h5py.Dataset):
        raise KeyError(f"{path} has no dataset {name!r} (its top level holds {sorted(f)})")
    if f[name].ndim == 0:
        raise ValueError(f"{path}: dataset {name!r} is a scalar: there are no rows to batch")
    return f[name]


def _check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
            batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


class HDF5Batches(keras.utils.PyDataset):
    """Batches of rows of the datasets ``x`` (and ``y``) of the HDF5 file at ``path``.

    Args:
        path: the HDF5 file. It is opened here once, to check the names and read the number
            of rows, and closed again; then on the first batch read in each process.
        x: the dataset the inputs come from (rows along its first axis).
        y: the dataset of the targets, of as many rows as ``x``; ``None`` serves ``x`` alone.
        batch_size: rows per batch; ``len()`` rounds up, so no row is dropped.
        shuffle: a new order every epoch, a function of ``(seed, epoch)``, every row served
            once per epoch (``helpers.generator.epoch_order``, as the course's other
            generators); ``False`` serves the rows in the file's order.
        seed: makes the order reproducible; ``None`` draws one.
        epoch: the epoch whose order to serve first.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``PyDataset``.

    Values come as the file stores them (its dtype). A shuffled batch is read in increasing
    row order, as h5py requires of a list of rows, and put back in the epoch's order; on a
    chunked, compressed file each row costs a read of its chunk, so large chunks make random
    rows slow (``shuffle=False`` reads each batch as one slice).

    Raises FileNotFoundError or OSError naming the file when it cannot be opened, KeyError
    naming the file and the dataset when ``x`` or ``y`` is not a dataset of it.
    """

    def __init__(self, path: str | os.PathLike, x: str = "x", y: str | None = None,
                 batch_size: int = 32, shuffle: bool = True, seed: int | None = None,
                 epoch: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.path, self.x, self.y = Path(path), str(x), None if y is None else str(y)
        self.batch_size = _check_batch_size(batch_size)
        self.shuffle = bool(shuffle)
        with _open(self.path) as f:
            self.num_samples = len(_dataset(f, self.x, self.path))
            if self.y is not None and len(_dataset(f, self.y, self.path)) != self.num_samples:
                raise ValueError(f"{self.path}: dataset {self.y!r} has "
                                 f"{len(f[self.y])} rows, {self.x!r} has {self.num_samples}")
        if self.num_samples == 0:
            raise ValueError(f"{self.path}: dataset {self.x!r} has no rows to serve")
        self._files: dict[int, tuple] = {}  # process id -> (file, x dataset, y dataset)
        self.seed = resolve_seed(seed)
        self.set_epoch(epoch)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch ``epoch``'s order (0 is the first)."""
        self.indexes = epoch_order(self.num_samples, self.seed, epoch, self.shuffle)
        self.epoch = int(epoch)

    def on_epoch_end(self) -> None:
        """Move to the next epoch's order (``fit()`` calls it after each epoch, and once before
        the first: Keras 3's ``EpochIterator.reset``)."""
        self.set_epoch(self.epoch + 1)

    def batch_rows(self, index: int) -> np.ndarray:
        """The rows of the file that batch ``index`` holds, in their order."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not (
                0 <= index < len(self)):
            raise IndexError(f"batch index {index!r} out of range for {len(self)} batches")
        return self.indexes[index * self.batch_size:(index + 1) * self.batch_size]

    def _datasets(self) -> tuple:
        """This process's ``(file, x, y)``, the file opened on the first call in the process."""
        pid = os.getpid()
        handles = self._files.get(pid)
        if handles is None:  # the first batch read in this process
            f = _open(self.path)
            opened = (f, _dataset(f, self.x, self.path),
                      None if self.y is None else _dataset(f, self.y, self.path))
            handles = self._files.setdefault(pid, opened)  # another thread may have won
            if handles is not opened:
                f.close()
        return handles

    def __getitem__(self, index: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        rows = self.batch_rows(index)
        _, x, y = self._datasets()
        if np.all(np.diff(rows) == 1):  # consecutive rows: one slice
            read = lambda d: d[int(rows[0]):int(rows[-1]) + 1]  # noqa: E731
        else:  # h5py takes a list of rows in increasing order only
            order = np.argsort(rows, kind="stable")
            read = lambda d: _unsort(d[rows[order]], order)  # noqa: E731
        return read(x) if y is None else (read(x), read(y))

    def close(self) -> None:
        """Close the file this process opened (a later batch opens it again)."""
        handles = self._files.pop(os.getpid(), None)
        if handles is not None:
            handles[0].close()

    def __getstate__(self) -> dict:
        """A pickled copy (a spawned worker) opens its own file: open handles stay behind."""
        return {**self.__dict__, "_files": {}}


def _unsort(part: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rows ``part`` read in sorted order, put back where ``order`` took them from."""
    out = np.empty_like(part)
    out[order] = part
    return out


class SharedHandleBatches(keras.utils.PyDataset):
    """THE ANTI-PATTERN, for notebook 13's demonstration only: batches of consecutive rows of
    dataset ``x``, read through one ``h5py.File`` opened here, in ``__init__``.

    Worker processes started by ``fork`` then read through copies of the parent's handle,
    which h5py advises against ("opening the file once and then forking may cause issues");
    and an open handle cannot be pickled (``TypeError: h5py objects cannot be pickled``), so
    under ``spawn`` or ``forkserver`` the worker pool cannot send the dataset to its workers.
    Use ``HDF5Batches`` instead.
    """

    def __init__(self, path: str | os.PathLike, x: str = "x", batch_size: int = 32,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.path, self.batch_size = Path(path), _check_batch_size(batch_size)
        self.file = _open(self.path)  # the mistake: opened in the parent, shared by workers
        self.data = _dataset(self.file, x, self.path)

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index!r} out of range for {len(self)} batches")
        return self.data[index * self.batch_size:(index + 1) * self.batch_size]
