"""CIFAR-10 served batch by batch from its official files, without holding it in memory.

The pieces, in the order ``CIFAR10Sequence`` uses them:
- ``read_cifar10_batch`` / ``read_cifar10_label_names``: the Python-2 pickle batches of
  ``cifar-10-batches-py``, read with an unpickler that builds numpy arrays and nothing else
  (a pickle can run code).
- ``build_cifar10_cache``: a one-time uint8 cache (``<folder>/cache/<split>_images.npy``).
- ``CIFAR10Sequence``: a ``keras.utils.PyDataset`` that memory-maps that cache, so
  constructing it and serving batches does not load the 50,000 training images into RAM;
  ``random_flip_and_crop`` is its optional augmentation.

Getting the files is ``helpers.cifar_download``'s job. ``data_dir`` arguments name the
``cifar-10-batches-py`` folder (or its parent). Besides numpy and Keras this module uses
``helpers.generator`` (epoch order, shards) and ``helpers.atomic``.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import keras
import numpy as np

from .atomic import atomic_file, save_npy_atomic
from .generator import check_start_batch, epoch_order, resolve_seed, shard_rows, shard_size

__all__ = [
    "CIFAR10Sequence", "FOLDER_NAME", "IMAGE_SHAPE", "META_FILE", "NUM_CLASSES",
    "REQUIRED_FILES", "TEST_BATCH", "TRAIN_BATCHES", "build_cifar10_cache", "cifar10_folder",
    "load_cifar10_pickle", "random_flip_and_crop", "read_cifar10_batch",
    "read_cifar10_label_names",
]

FOLDER_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
REQUIRED_FILES = (*TRAIN_BATCHES, TEST_BATCH, META_FILE)
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)


def cifar10_folder(data_dir: str | Path) -> Path:
    """The ``cifar-10-batches-py`` folder: ``data_dir`` itself, or the one inside it."""
    data_dir = Path(data_dir)
    for candidate in (data_dir, data_dir / FOLDER_NAME):
        if (candidate / META_FILE).is_file() or (candidate / TEST_BATCH).is_file():
            return candidate
    raise FileNotFoundError(
        f"{data_dir} holds no CIFAR-10 batches (looked for {META_FILE} in it and in "
        f"{data_dir / FOLDER_NAME}); get them with helpers.cifar_download.get_cifar10()")


# ---------------------------------------------------------------------------------------
# Reading the pickle batches safely

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct

_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
}
"""The only globals a CIFAR pickle needs: rebuilding a numpy array. Dicts, lists, ints and
(Python 2) strings need none."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and numpy arrays; refuses any other global.

    A pickle may name any importable function and have it called (``os.system`` included),
    so an unpickler for downloaded files must say which names it accepts.
    """

    def __init__(self, file, where: str) -> None:
        super().__init__(file, encoding="bytes")  # Python 2 ``str`` -> bytes, as in Keras
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"{self.where}: refusing to load the global {module}.{name}: a CIFAR batch "
                "holds only numpy arrays, lists and strings, so this file is damaged or "
                "malicious") from None


def load_cifar10_pickle(path: str | Path) -> dict:
    """The raw dict of one CIFAR pickle file (keys are bytes, as Python 2 wrote them),
    unpickled with an unpickler that refuses every global but numpy's array builders."""
    with open(path, "rb") as f:
        obj = _NumpyOnlyUnpickler(f, str(path)).load()
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
    return obj


def _entry(d: dict, key: str, path: str | Path) -> Any:
    """``d[b'key']`` (how the real files load) or ``d['key']``; else KeyError naming the file."""
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    found = ", ".join(sorted(k.decode("latin1") if isinstance(k, bytes) else str(k) for k in d))
    raise KeyError(f"{path}: the pickled dict has no {key} entry (keys found: {found})")


def read_cifar10_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file; return ``(images, labels)``.

    ``images`` is uint8 ``(N, 32, 32, 3)``: each stored row of 3072 bytes holds the 1024 red
    values of the 32x32 image row by row, then the green, then the blue ones, so it is
    reshaped to ``(3, 32, 32)`` and the colour axis moved last. ``labels``: int64 ``(N,)`` in
    ``[0, 10)``. Raises ``pickle.UnpicklingError`` for a pickle naming anything but numpy's
    array builders, ValueError/KeyError (naming the file) for a wrong layout."""
    d = load_cifar10_pickle(path)
    data = _entry(d, "data", path)
    labels = np.asarray(_entry(d, "labels", path))
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * 32 * 32):
        raise ValueError(f"{path}: 'data' should be uint8 of shape (N, 3072), found "
                         f"{getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')}")
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: 'labels' should be {len(data)} integers, found "
                         f"{labels.dtype} {labels.shape}")
    if len(labels) and not (0 <= labels.min() and labels.max() < NUM_CLASSES):
        raise ValueError(f"{path}: labels outside [0, {NUM_CLASSES})")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def read_cifar10_label_names(data_dir: str | Path) -> list[str]:
    """The ten class names stored in ``batches.meta`` (``b'label_names'``), as str."""
    path = cifar10_folder(data_dir) / META_FILE
    names = _entry(load_cifar10_pickle(path), "label_names", path)
    names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
    if len(names) != NUM_CLASSES:
        raise ValueError(f"{path}: expected {NUM_CLASSES} label names, found {len(names)}")
    return names


# ---------------------------------------------------------------------------------------
# The uint8 cache and the Sequence


def _split_batches(split: str) -> tuple[str, ...]:
    if split in ("train", "test"):
        return TRAIN_BATCHES if split == "train" else (TEST_BATCH,)
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def _cache_is_valid(images_path: Path, labels_path: Path) -> bool:
    try:
        images = np.load(images_path, mmap_mode="r")
        labels = np.load(labels_path)
    except (OSError, ValueError):
        return False
    return (images.dtype == np.uint8 and images.shape[1:] == IMAGE_SHAPE
            and labels.shape == (len(images),))


def build_cifar10_cache(data_dir: str | Path, split: str = "train",
                        cache_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``<split>_images.npy`` (uint8 ``(N, 32, 32, 3)``) and ``<split>_labels.npy`` once
    (later calls find them); return ``(images_path, labels_path)``. The images are streamed
    batch file by batch file into one ``.npy`` (one batch in memory at a time) whose header is
    written with a placeholder length and rewritten at the end; both files are written whole
    or not at all. ``cache_dir`` defaults to ``<folder>/cache``."""
    folder = cifar10_folder(data_dir)
    names = _split_batches(split)
    cache = Path(cache_dir) if cache_dir is not None else folder / "cache"
    images_path, labels_path = cache / f"{split}_images.npy", cache / f"{split}_labels.npy"
    if _cache_is_valid(images_path, labels_path):
        return images_path, labels_path
    header = {"descr": "|u1", "fortran_order": False, "shape": (0, *IMAGE_SHAPE)}
    labels = []
    with atomic_file(images_path) as f:
        np.lib.format.write_array_header_1_0(f, header)
        data_start = f.tell()
        for name in names:
            images, batch_labels = read_cifar10_batch(folder / name)
            f.write(images.data)  # C-contiguous: written without a copy
            labels.append(batch_labels.astype(np.uint8))
            del images  # free this batch before the next one is read
        f.seek(0)
        header["shape"] = (sum(len(x) for x in labels), *IMAGE_SHAPE)
        np.lib.format.write_array_header_1_0(f, header)
        if f.tell() != data_start:  # numpy pads headers so the length can grow; check
            raise RuntimeError("the .npy header changed length; cache not written")
    save_npy_atomic(labels_path, np.concatenate(labels))
    return images_path, labels_path


class CIFAR10Sequence(keras.utils.PyDataset):
    """CIFAR-10 batches ``(X, y)`` read from a memory-mapped uint8 cache.

    Args:
        data_dir: the ``cifar-10-batches-py`` folder (or its parent).
        split: ``"train"`` (the five data batches) or ``"test"``.
        batch_size: samples per batch; ``len()`` rounds up, so no sample is dropped.
        shuffle: a new sample order every epoch, a function of ``(seed, epoch)``.
        augment: random horizontal flips and pad-4-then-crop-32 shifts, seeded by ``(seed,
            epoch, batch of the epoch)``: the same whichever worker computes it, resumed or not.
        seed: makes shuffling and augmentation reproducible; ``None`` draws one.
        cache_dir: where the uint8 cache lives (default ``<folder>/cache``).
        limit: serve only the first ``limit`` samples of the split (quick runs on a CPU).
        shard, shard_remainder: one process's share of each epoch, as ``DataGenerator``.
        epoch, start_batch: where to start: batch ``start_batch`` of epoch ``epoch``, with the
            order and augmentation of an uninterrupted run (resuming one); see ``set_epoch``.
        label_mode: ``"categorical"`` (``y`` float32 one-hot ``(b, 10)``), ``"int"`` (int32
            ``(b,)``) or ``None``: batches are ``X`` alone (inference, with ``shuffle=False``).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``PyDataset``.

    ``X`` is float32 ``(b, 32, 32, 3)`` in ``[0, 1]``, its samples in file order (the rows are
    sorted so the memory map reads forward; shuffling decides which samples share a batch).
    Pickling it (as ``spawn`` or ``forkserver`` process workers get it) carries the cache's
    path, not its contents.
    """

    def __init__(
        self,
        data_dir: str | Path,
        split: str = "train",
        batch_size: int = 64,
        shuffle: bool = True,
        augment: bool = False,
        seed: int | None = None,
        cache_dir: str | Path | None = None,
        limit: int | None = None,
        shard: tuple[int, int] | None = None,
        shard_remainder: str = "pad",
        epoch: int = 0,
        start_batch: int = 0,
        label_mode: str | None = "categorical",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if label_mode not in ("categorical", "int", None):
            raise ValueError(f"label_mode must be 'categorical', 'int' or None, got {label_mode!r}")
        self.label_mode = label_mode
        self.folder = cifar10_folder(data_dir)
        self.split = split
        self.images_path, self.labels_path = build_cifar10_cache(self.folder, split, cache_dir)
        self.labels = np.load(self.labels_path).astype(np.int64)  # 8 bytes a sample
        if limit is not None:
            if not isinstance(limit, (int, np.integer)) or limit < 1:
                raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
            self.labels = self.labels[:limit]
        self.label_names = read_cifar10_label_names(self.folder)
        self._shard_size = shard_size(self.num_samples, shard, shard_remainder)
        self.shard = None if shard is None else (int(shard[0]), int(shard[1]))
        self.shard_remainder = shard_remainder
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment
        self.seed = resolve_seed(seed)
        self.set_epoch(epoch, start_batch)
        self._images: np.ndarray | None = None

    @property
    def images(self) -> np.ndarray:
        """The memory-mapped uint8 images ``(N, 32, 32, 3)``, opened on first use."""
        if self._images is None:
            self._images = np.load(self.images_path, mmap_mode="r")
            if len(self._images) < len(self.labels):
                raise ValueError(f"{self.images_path}: {len(self._images)} images for "
                                 f"{len(self.labels)} labels; delete the cache folder")
        return self._images

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_images": None}  # reopened lazily where it is unpickled

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    @property
    def samples_dropped(self) -> int:
        """Samples no shard serves in an epoch (``"drop"``; 0 with ``"pad"``)."""
        return max(self.num_samples - (self.shard or (0, 1))[1] * self._shard_size, 0)

    @property
    def samples_repeated(self) -> int:
        """Samples served twice in an epoch across shards (``"pad"``; 0 with ``"drop"``)."""
        return max((self.shard or (0, 1))[1] * self._shard_size - self.num_samples, 0)

    @property
    def batches_per_epoch(self) -> int:
        """Batches in a whole epoch: ``len()`` unless the epoch was entered mid-way."""
        return math.ceil(self._shard_size / self.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Serve epoch ``epoch``'s order and augmentation from its batch ``start_batch`` on;
        ``len()`` and ``[i]`` then count from there (``DataGenerator.set_epoch``)."""
        order = epoch_order(self.num_samples, self.seed, epoch, self.shuffle)  # checks epoch
        self.start_batch = check_start_batch(start_batch, self.batches_per_epoch)
        rows = shard_rows(order, self.shard, self.shard_remainder)
        self.indexes = rows[self.start_batch * self.batch_size:]  # batches start_batch, ...
        self.epoch = int(epoch)

    def on_epoch_end(self) -> None:
        """Move to the start of the next epoch's order (``fit()`` calls it after each epoch)."""
        self.set_epoch(self.epoch + 1)

    def batch_rows(self, index: int) -> np.ndarray:
        """The sample numbers (rows of the cache) batch ``index`` holds, sorted: the rows of X."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        return np.sort(self.indexes[index * self.batch_size:(index + 1) * self.batch_size])

    def __getitem__(self, index: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        rows = self.batch_rows(index)
        images = self.images[rows]  # a copy of just these rows, read from disk
        if self.augment:  # seeded by the batch's number in the whole epoch
            rng = np.random.default_rng([self.seed, self.epoch, self.start_batch + index])
            images = random_flip_and_crop(images, rng)
        X = images.astype(np.float32) / np.float32(255)
        y = self.labels[rows].astype(np.int32)
        if self.label_mode == "categorical":
            y = keras.utils.to_categorical(y, NUM_CLASSES).astype(np.float32)
        return X if self.label_mode is None else (X, y)


def random_flip_and_crop(images: np.ndarray, rng: np.random.Generator,
                         pad: int = 4) -> np.ndarray:
    """Flip each image left-right with probability 1/2, then shift it by up to ``pad``
    pixels each way (zero-pad by ``pad``, crop back at a random offset): the classic
    CIFAR augmentation. ``images`` is ``(b, H, W, C)``; returns a new array."""
    b, h, w, _ = images.shape
    flip = rng.random(b) < 0.5
    out = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
    padded = np.pad(out, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oy = rng.integers(0, 2 * pad + 1, b)
    ox = rng.integers(0, 2 * pad + 1, b)
    rows = (oy[:, None] + np.arange(h))[:, :, None]
    cols = (ox[:, None] + np.arange(w))[:, None, :]
    return padded[np.arange(b)[:, None, None], rows, cols]
