"""The course's PyTorch ``DataLoader`` over per-sample ``.npy`` files (any Keras backend).

Keras' ``fit()`` accepts a ``torch.utils.data.DataLoader`` on TensorFlow, JAX and PyTorch
alike (PyTorch must be installed). Notebook 08 puts this loader beside ``DataGenerator`` and
``tf.data``. ``VolumeFiles`` is the map-style dataset the loader reads from: one sample per
index. It lives in a module, not in a notebook, because worker processes started with
``spawn`` (or ``forkserver``) receive it pickled and import its class by name.

PyTorch is imported only when ``volume_torch_loader`` is called, so ``helpers`` still imports
where PyTorch is absent.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np

from .generator import NpyHeaderCache

__all__ = ["VolumeFiles", "volume_torch_loader"]


class VolumeFiles:
    """Index -> ``(volume float32 (*dim, 1), one-hot label float32 (n_classes,))``.

    A map-style dataset in PyTorch's sense: ``__len__`` and ``__getitem__`` are all
    ``DataLoader`` uses (``torch.utils.data.Dataset`` is the abstract class naming that
    protocol; not subclassing it keeps this module free of a PyTorch import). Each file is
    read whole and decoded by ``NpyHeaderCache``, the checks of ``DataGenerator``: a file of
    the wrong size, dtype or shape raises an error naming it. Plain data: picklable.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], labels: Sequence[int],
                 dim: tuple[int, ...] = (32, 32, 32), n_classes: int = 6) -> None:
        if len(paths) == 0:
            raise ValueError("paths is empty: there is nothing to read")
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        self.paths = [os.fspath(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        bad = np.flatnonzero((self.labels < 0) | (self.labels >= n_classes))
        if bad.size:
            raise ValueError(f"{self.paths[bad[0]]}: label {self.labels[bad[0]]} is outside "
                             f"[0, {n_classes}) for n_classes={n_classes}")
        self.dim, self.n_classes = tuple(int(d) for d in dim), int(n_classes)
        self._headers = NpyHeaderCache()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        path = self.paths[index]
        with open(path, "rb") as f:
            volume = self._headers.decode(f.read(), path)
        if volume.shape != self.dim:
            raise ValueError(f"{path}: expected shape {self.dim}, found {volume.shape}")
        y = np.zeros(self.n_classes, dtype=np.float32)
        y[self.labels[index]] = 1.0
        return volume.astype(np.float32)[..., None], y


def volume_torch_loader(paths: Sequence[str | os.PathLike], labels: Sequence[int],
                        batch_size: int, dim: tuple[int, ...] = (32, 32, 32),
                        n_classes: int = 6, shuffle: bool = True, seed: int = 0,
                        workers: int = 0, start_method: str | None = None):
    """A ``torch.utils.data.DataLoader`` over ``VolumeFiles``.

    ``shuffle``: a new order every epoch, drawn from a generator seeded with ``seed``.
    ``workers``: 0 reads in the process that iterates; more start that many worker
    processes, each building whole batches, kept for the loader's life
    (``persistent_workers``), so their start-up is paid once. ``start_method``: ``None``
    picks ``"spawn"`` on the JAX backend (JAX is multithreaded and warns that ``fork``
    may deadlock; a spawned worker starts a fresh Python and imports this module, a few
    seconds) and the platform's default elsewhere (``fork`` on Linux: instant).
    The last batch is partial when ``batch_size`` does not divide the dataset.
    """
    import torch

    if start_method is None and keras.config.backend() == "jax":
        start_method = "spawn"
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    return torch.utils.data.DataLoader(
        VolumeFiles(paths, labels, dim, n_classes), batch_size=batch_size, shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed), num_workers=workers,
        multiprocessing_context=start_method if workers else None,
        persistent_workers=workers > 0)
