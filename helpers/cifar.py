"""CIFAR-10 from its official archive, served batch by batch without holding it in memory.

The pieces, in the order a notebook uses them:

- ``get_cifar10()``: the one call notebooks make. Real CIFAR-10 when it is on disk or can be
  downloaded, else an offline stand-in in the same format; it says plainly which.
- ``download_cifar10`` / ``extract_cifar10``: the official ``cifar-10-python.tar.gz``,
  MD5-verified before anything is unpacked, unpacked with every member checked.
- ``read_cifar10_batch`` / ``read_cifar10_label_names``: the Python-2 pickle batches, read
  with an unpickler that builds numpy arrays and nothing else (a pickle can run code).
- ``write_cifar10_like``: a learnable synthetic stand-in in exactly the real layout.
- ``CIFAR10Sequence``: a ``keras.utils.PyDataset`` over a one-time uint8 cache
  (``<folder>/cache/<split>_images.npy``) that it memory-maps, so constructing it and
  serving batches does not load the 50,000 training images into RAM.

Folders: ``data_dir`` arguments name the ``cifar-10-batches-py`` folder itself (the one
``download_cifar10`` and ``get_cifar10`` return); its parent is accepted too.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import shutil
import socket
import tempfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from .archive import check_md5, download_verified, extract_tar_checked
from .course import data_root
from .generator import epoch_order, resolve_seed
from .io import atomic_write, save_npy_atomic

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
REQUIRED_FILES = (*TRAIN_BATCHES, TEST_BATCH, META_FILE)
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)
STANDIN_SHAPES = ("disc", "square", "ring", "triangle", "cross",
                  "stripes", "bars", "diagonal", "dots", "frame")
"""What each stand-in class draws; its label names are ``synthetic-<shape>``."""

# ---------------------------------------------------------------------------------------
# Download and unpack


def extract_cifar10(archive_path: str | Path, data_dir: str | Path,
                    md5: str | None = CIFAR10_MD5) -> Path:
    """Unpack ``cifar-10-python.tar.gz`` into ``data_dir``; return the batches folder.

    The MD5 is checked first (ValueError on mismatch: nothing is unpacked). Every member
    must be a plain file or folder under ``cifar-10-batches-py/``: links, devices, absolute
    paths and ``..`` are refused with a ValueError naming the member. Members go to a
    temporary folder renamed into place at the end, so a failure halfway leaves no folder
    that looks complete. ``md5=None`` skips the check (only for archives you built).
    """
    return extract_tar_checked(archive_path, data_dir, FOLDER_NAME, md5, REQUIRED_FILES)


def download_cifar10(data_dir: str | Path, url: str = CIFAR10_URL,
                     md5: str = CIFAR10_MD5) -> Path:
    """Make sure ``data_dir/cifar-10-batches-py`` exists, downloading if needed; return it.

    An already unpacked folder is used as it is. An archive already at
    ``data_dir/cifar-10-python.tar.gz`` is reused if its MD5 matches; one that does not
    match is left alone (it may be yours) and a ValueError says so. Otherwise the archive
    is downloaded from ``url`` with a progress bar into a temporary name, verified, renamed,
    then unpacked by ``extract_cifar10``.
    """
    data_dir = Path(data_dir)
    folder = data_dir / FOLDER_NAME
    if _is_complete(folder):
        return folder
    archive = data_dir / ARCHIVE_NAME
    if archive.exists():
        try:
            check_md5(archive, md5)
        except ValueError as e:
            raise ValueError(f"{e}. Delete {archive} to download it again.") from None
        print(f"Reusing the verified archive {archive}")
    else:
        print(f"Downloading CIFAR-10 (about 163 MiB) from {url}")
        download_verified(url, archive, md5)
    print(f"Unpacking {archive.name} into {data_dir}")
    return extract_cifar10(archive, data_dir, md5)


def _is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED_FILES)


def cifar10_folder(data_dir: str | Path) -> Path:
    """The ``cifar-10-batches-py`` folder: ``data_dir`` itself, or the one inside it."""
    data_dir = Path(data_dir)
    for candidate in (data_dir, data_dir / FOLDER_NAME):
        if (candidate / META_FILE).is_file() or (candidate / TEST_BATCH).is_file():
            return candidate
    raise FileNotFoundError(
        f"{data_dir} holds no CIFAR-10 batches (looked for {META_FILE} in it and in "
        f"{data_dir / FOLDER_NAME}); get them with get_cifar10() or download_cifar10()")


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

    ``images`` is uint8 ``(N, 32, 32, 3)``: each stored row of 3072 bytes holds the 1024
    red values of the 32x32 image row by row, then the green ones, then the blue ones, so
    it is reshaped to ``(3, 32, 32)`` and the colour axis moved last. ``labels`` is int64
    ``(N,)`` in ``[0, 10)``. Raises ``pickle.UnpicklingError`` for a pickle naming anything
    but numpy's array builders, ValueError/KeyError (naming the file) for a wrong layout.
    """
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
# The offline stand-in


def _py2_pickle(obj: Any) -> bytes:
    """Pickle ``obj`` as Python 2's ``cPickle.dump(obj, f, 2)`` did for the real files.

    Python 3 cannot write those itself: under protocol 2 it stores ``bytes`` through a call
    to ``_codecs.encode``, a global that the restricted readers here and in Keras refuse.
    Python 2 stored its ``str`` with the plain ``BINSTRING`` opcode, which loads as bytes
    with ``encoding="bytes"``. Handles dict, list, tuple, bytes, int, bool, None and
    uint8 arrays: everything a CIFAR batch holds.
    """
    out = bytearray(b"\x80\x02")  # PROTO 2
    _emit(obj, out)
    out += b"."  # STOP
    return bytes(out)


def _emit(obj: Any, out: bytearray) -> None:
    if obj is None:
        out += b"N"
    elif isinstance(obj, bool):
        out += b"\x88" if obj else b"\x89"  # NEWTRUE / NEWFALSE
    elif isinstance(obj, (int, np.integer)):
        v = int(obj)
        if 0 <= v < 256:
            out += b"K" + v.to_bytes(1, "little")  # BININT1
        elif 0 <= v < 65536:
            out += b"M" + v.to_bytes(2, "little")  # BININT2
        else:
            out += b"J" + v.to_bytes(4, "little", signed=True)  # BININT
    elif isinstance(obj, bytes):
        if len(obj) < 256:
            out += b"U" + len(obj).to_bytes(1, "little") + obj  # SHORT_BINSTRING
        else:
            out += b"T" + len(obj).to_bytes(4, "little") + obj  # BINSTRING
    elif isinstance(obj, tuple):
        out += b"("  # MARK
        for x in obj:
            _emit(x, out)
        out += b"t"  # TUPLE
    elif isinstance(obj, list):
        out += b"]"  # EMPTY_LIST, then APPENDS in chunks of 1000 as pickle does
        for start in range(0, len(obj), 1000):
            out += b"("
            for x in obj[start:start + 1000]:
                _emit(x, out)
            out += b"e"
    elif isinstance(obj, dict):
        out += b"}("  # EMPTY_DICT MARK ... SETITEMS
        for k, v in obj.items():
            _emit(k, out)
            _emit(v, out)
        out += b"u"
    elif isinstance(obj, np.ndarray) and obj.dtype == np.uint8:
        # _reconstruct(ndarray, (0,), 'b') then __setstate__((1, shape, dtype, False, raw))
        out += b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n"
        _emit((0,), out)
        _emit(b"b", out)
        out += b"\x87R("  # TUPLE3 REDUCE MARK
        _emit(1, out)
        _emit(tuple(obj.shape), out)
        out += b"cnumpy\ndtype\n"
        _emit((b"u1", 0, 1), out)
        out += b"R"
        _emit((3, b"|", None, None, None, -1, -1, 0), out)
        out += b"b"  # BUILD (dtype state)
        _emit(False, out)
        _emit(np.ascontiguousarray(obj).tobytes(), out)
        out += b"tb"  # TUPLE BUILD (array state)
    else:
        raise TypeError(f"cannot write {type(obj).__name__} in a CIFAR-style pickle")


_PALETTE = np.array([[230, 60, 50], [60, 170, 70], [50, 90, 220], [235, 200, 40],
                     [160, 60, 200], [40, 190, 200], [240, 130, 30], [200, 200, 200],
                     [120, 80, 40], [230, 90, 170]], dtype=np.float32)


def _shape_mask(name: str, dy: np.ndarray, dx: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Boolean mask of one stand-in shape, centred at offsets ``dy, dx``, of size ``r``."""
    dist, box = np.hypot(dy, dx), np.maximum(np.abs(dy), np.abs(dx))
    inside = box < r
    if name == "disc":
        return dist < r
    if name == "square":
        return box < 0.8 * r
    if name == "ring":
        return (dist < r) & (dist > 0.55 * r)
    if name == "triangle":
        return (np.abs(dy) < 0.8 * r) & (np.abs(dx) < 0.6 * (dy + 0.8 * r))
    if name == "cross":
        return inside & ((np.abs(dy) < 0.3 * r) | (np.abs(dx) < 0.3 * r))
    if name == "stripes":
        return inside & (np.floor(dy / 2.5) % 2 == 0)
    if name == "bars":
        return inside & (np.floor(dx / 2.5) % 2 == 0)
    if name == "diagonal":
        return inside & (np.abs(dy - dx) < 0.35 * r)
    if name == "dots":
        return np.hypot(np.abs(dy) - 0.5 * r, np.abs(dx) - 0.5 * r) < 0.3 * r
    if name == "frame":
        return inside & (box > 0.55 * r)
    raise ValueError(f"unknown stand-in shape {name!r}")


def _standin_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one image per label: the class's shape at a random place and size, on a random
    background, in the class colour (3 times in 5) or a random one, plus pixel noise."""
    n = len(labels)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    cy, cx = rng.uniform(11, 21, (2, n, 1, 1)).astype(np.float32)
    r = rng.uniform(6, 10, (n, 1, 1)).astype(np.float32)
    mask = np.zeros((n, 32, 32), dtype=bool)
    for c, name in enumerate(STANDIN_SHAPES):
        sel = labels == c
        mask[sel] = _shape_mask(name, yy - cy[sel], xx - cx[sel], r[sel])
    own = rng.random(n) < 0.6
    fg = np.where(own[:, None], _PALETTE[labels], rng.uniform(0, 255, (n, 3)))
    fg = (fg + rng.normal(0, 20, (n, 3))).astype(np.float32)
    bg = (rng.uniform(0, 255, (n, 3)) * 0.6).astype(np.float32)
    img = np.where(mask[..., None], fg[:, None, None, :], bg[:, None, None, :])
    img += rng.random(img.shape, dtype=np.float32) * 40 - 20  # uniform: cheaper than normal
    return np.clip(img, 0, 255).astype(np.uint8)


def write_cifar10_like(folder: str | Path, n_per_batch: int = 1000, seed: int = 0) -> Path:
    """Write a synthetic stand-in for CIFAR-10 into ``folder`` (a new folder); return it.

    Same layout and pickle format as the real ``cifar-10-batches-py``: ``data_batch_1`` to
    ``data_batch_5`` and ``test_batch`` with ``n_per_batch`` images each (a Python-2
    protocol-2 pickle of a dict with bytes keys ``batch_label``, ``labels``, ``data`` as
    uint8 ``(N, 3072)`` in R, G, B planes, ``filenames``), and ``batches.meta``. Each class
    is a shape (``STANDIN_SHAPES``), so a CNN can learn it; the label names say
    ``synthetic-...``. Written to a temporary folder renamed at the end; an existing
    ``folder`` is never overwritten (FileExistsError).
    """
    folder = Path(folder)
    if not isinstance(n_per_batch, (int, np.integer)) or n_per_batch < 1:
        raise ValueError(f"n_per_batch must be a positive integer, got {n_per_batch!r}")
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; it is never overwritten")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    rng = np.random.default_rng(seed)
    names = [f"synthetic-{s}" for s in STANDIN_SHAPES]
    try:
        batches = [(b, f"training batch {i} of 5") for i, b in enumerate(TRAIN_BATCHES, 1)]
        for file_name, title in [*batches, (TEST_BATCH, "testing batch 1 of 1")]:
            labels = rng.permutation(np.arange(n_per_batch) % NUM_CLASSES)
            images = np.concatenate([  # in chunks: a few MB of float32 at a time
                _standin_images(labels[s:s + 2000], rng) for s in range(0, n_per_batch, 2000)])
            batch = {
                b"batch_label": title.encode(),
                b"labels": [int(v) for v in labels],
                b"data": images.transpose(0, 3, 1, 2).reshape(n_per_batch, 3072),
                b"filenames": [f"{names[v]}_s_{k:06d}.png".encode()
                               for k, v in enumerate(labels)],
            }
            (tmp / file_name).write_bytes(_py2_pickle(batch))
        meta = {b"num_cases_per_batch": n_per_batch,
                b"label_names": [n.encode() for n in names], b"num_vis": 3072}
        (tmp / META_FILE).write_bytes(_py2_pickle(meta))
        (tmp / "readme.html").write_text(
            "<p>Synthetic stand-in for CIFAR-10 written by helpers.cifar.write_cifar10_like "
            f"(seed={seed}): same format, drawn shapes instead of photographs.</p>\n")
        os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


# ---------------------------------------------------------------------------------------
# The uint8 cache and the Sequence


def _split_batches(split: str) -> tuple[str, ...]:
    if split == "train":
        return TRAIN_BATCHES
    if split == "test":
        return (TEST_BATCH,)
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
    """Write ``<split>_images.npy`` (uint8 ``(N, 32, 32, 3)``) and ``<split>_labels.npy``.

    Done once; later calls find the files and return at once. The images are streamed
    batch file by batch file into one ``.npy`` (only one batch in memory at a time), whose
    header is written first with a placeholder length and rewritten at the end. Both files
    are written whole or not at all. ``cache_dir`` defaults to ``<folder>/cache``.
    Returns ``(images_path, labels_path)``.
    """
    folder = cifar10_folder(data_dir)
    names = _split_batches(split)
    cache = Path(cache_dir) if cache_dir is not None else folder / "cache"
    images_path, labels_path = cache / f"{split}_images.npy", cache / f"{split}_labels.npy"
    if _cache_is_valid(images_path, labels_path):
        return images_path, labels_path
    header = {"descr": "|u1", "fortran_order": False, "shape": (0, *IMAGE_SHAPE)}
    labels = []
    with atomic_write(images_path) as f:
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
        augment: random horizontal flips and pad-4-then-crop-32 shifts, drawn from a
            generator seeded by ``(seed, epoch, batch index)``: reproducible, and different
            for every batch whichever worker process computes it.
        seed: makes shuffling and augmentation reproducible; ``None`` draws one.
        cache_dir: where the uint8 cache lives (default ``<folder>/cache``).
        limit: serve only the first ``limit`` samples of the split (quick runs on a CPU).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` for
            ``keras.utils.PyDataset``.

    ``X`` is float32 ``(b, 32, 32, 3)`` in ``[0, 1]``; ``y`` float32 one-hot ``(b, 10)``.
    Within a batch the samples come in file order (the rows are sorted so the memory map
    reads forward); shuffling decides which samples share a batch. Pickling the object
    (as process workers do) carries the cache's path, not its contents.
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
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.folder = cifar10_folder(data_dir)
        self.split = split
        self.images_path, self.labels_path = build_cifar10_cache(self.folder, split, cache_dir)
        self.labels = np.load(self.labels_path).astype(np.int64)  # 8 bytes a sample
        if limit is not None:
            if not isinstance(limit, (int, np.integer)) or limit < 1:
                raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
            self.labels = self.labels[:limit]
        self.label_names = read_cifar10_label_names(self.folder)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment
        self.seed = resolve_seed(seed)
        self.epoch = 0
        self.indexes = epoch_order(self.num_samples, self.seed, self.epoch, self.shuffle)
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
        state = self.__dict__.copy()
        state["_images"] = None  # reopened lazily in the process that unpickles
        return state

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def on_epoch_end(self) -> None:
        """Move to the next epoch's sample order (called by ``fit()`` after each epoch)."""
        self.epoch += 1
        self.indexes = epoch_order(self.num_samples, self.seed, self.epoch, self.shuffle)

    def batch_rows(self, index: int) -> np.ndarray:
        """The sample numbers (rows of the cache) batch ``index`` holds this epoch, sorted."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        return np.sort(self.indexes[index * self.batch_size:(index + 1) * self.batch_size])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.batch_rows(index)
        images = self.images[rows]  # a copy of just these rows, read from disk
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            images = random_flip_and_crop(images, rng)
        X = images.astype(np.float32) / np.float32(255)
        y = keras.utils.to_categorical(self.labels[rows], NUM_CLASSES).astype(np.float32)
        return X, y


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


# ---------------------------------------------------------------------------------------
# One call for notebooks


@dataclass(frozen=True)
class CifarData:
    """What ``get_cifar10`` found: the batches folder and whether it is the real data."""

    folder: Path
    is_real: bool
    label_names: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "real CIFAR-10" if self.is_real else "synthetic stand-in"


def _host_reachable(url: str, timeout: float = 5.0) -> bool:
    """A quick TCP connection test, so an offline machine does not wait on a download."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def get_cifar10(
    data_dir: str | Path | None = None,
    prefer: str | None = None,
    standin_per_batch: int = 10_000,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
) -> CifarData:
    """CIFAR-10 for a notebook: the real data if present or downloadable, else a stand-in.

    Args:
        data_dir: parent folder (default ``data_root() / "cifar10"``). Real data lives in
            ``<data_dir>/cifar-10-batches-py``; the stand-in in
            ``<data_dir>/standin-<n>/cifar-10-batches-py``.
        prefer: ``"real"``, ``"standin"`` or ``"auto"``; ``None`` reads the environment
            variable ``COURSE_CIFAR10`` (default ``"auto"``). ``"real"`` raises rather than
            fall back.
        standin_per_batch: images per stand-in batch file (10,000 is CIFAR-10's size).
        url, md5: where to download the archive from, and its expected MD5.

    When the ``CI`` environment variable is set, nothing is downloaded. Prints which data
    is in use and why.
    """
    root = Path(data_dir) if data_dir is not None else data_root() / "cifar10"
    choice = (prefer or os.environ.get("COURSE_CIFAR10") or "auto").strip().lower()
    if choice not in ("auto", "real", "standin"):
        raise ValueError(f"prefer / COURSE_CIFAR10 must be 'auto', 'real' or 'standin', "
                         f"got {choice!r}")
    reason = "the stand-in was asked for (prefer / COURSE_CIFAR10)" if choice == "standin" else ""
    if choice != "standin":
        folder = root / FOLDER_NAME
        if _is_complete(folder) or (root / ARCHIVE_NAME).exists():
            return _found(download_cifar10(root, url, md5), True)
        if os.environ.get("CI"):
            reason = "the CI environment variable is set, so nothing is downloaded"
        elif not _host_reachable(url):
            reason = f"{urllib.parse.urlsplit(url).hostname} cannot be reached"
        else:
            try:
                return _found(download_cifar10(root, url, md5), True)
            except Exception as e:  # noqa: BLE001 - any failure means: fall back
                reason = f"the download failed ({e})"
        if choice == "real":
            raise RuntimeError(f"real CIFAR-10 was asked for, but {reason}")
    folder = root / f"standin-{standin_per_batch}" / FOLDER_NAME
    if not _is_complete(folder):
        print(f"Writing the synthetic stand-in ({6 * standin_per_batch:,} images) ...")
        with contextlib.suppress(FileExistsError):  # another process just wrote it
            write_cifar10_like(folder, n_per_batch=standin_per_batch, seed=0)
    data = _found(folder, False)
    print(f"  (real CIFAR-10 not used: {reason}; accuracies on this stand-in say nothing "
          "about real photographs)")
    return data


def _found(folder: Path, is_real: bool) -> CifarData:
    names = tuple(read_cifar10_label_names(folder))
    data = CifarData(folder=folder, is_real=is_real, label_names=names)
    print(f"Using the {data.kind.upper()} in {folder}")
    return data


def labels_to_names(labels: Sequence[int] | np.ndarray, names: Sequence[str]) -> list[str]:
    """Class names of integer labels (convenience for figure titles)."""
    return [names[int(k)] for k in labels]


__all__ = [
    "ARCHIVE_NAME", "CIFAR10Sequence", "CIFAR10_MD5", "CIFAR10_URL", "CifarData",
    "FOLDER_NAME", "STANDIN_SHAPES", "build_cifar10_cache", "cifar10_folder",
    "download_cifar10", "extract_cifar10", "get_cifar10", "load_cifar10_pickle",
    "random_flip_and_crop",
    "read_cifar10_batch", "read_cifar10_label_names", "write_cifar10_like",
]
