"""``DataGenerator``: the article's per-sample-file generator, on Keras 3's ``PyDataset``.

What changed from the article's class, and why:
- ``super().__init__(**kwargs)`` takes ``workers``, ``use_multiprocessing`` and
  ``max_queue_size``: in Keras 3 they belong to the dataset, not to ``fit()``.
- ``len()`` rounds up (no sample dropped); ``data_dir`` is a parameter, not ``'data/'``;
  batches are float32 (the article's ``np.empty`` made float64: twice the memory).
- The order is a function of ``(seed, epoch)``: reproducible, different every epoch, and
  the same in every worker process, which gets a copy of this object (inherited under
  ``fork``, pickled under ``spawn`` and ``forkserver``). With ``start_batch`` a new object
  resumes mid-epoch where an interrupted run stopped; ``labels=None`` serves inference.
- ``shard=(index, count)``: one process's share of each epoch (``shard_rows``), dealt out
  from the global order, so every shard has the same ``len()``.
- Each file is read with one ``os.read`` call, its ``.npy`` header parsed by numpy once and
  then recognised by a byte comparison, instead of ``np.load``'s per-call parsing.

It needs only numpy, Keras and the standard library (Linux, macOS, Windows): copy it as is.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import numpy as np

__all__ = [
    "SHARD_REMAINDERS", "DataGenerator", "NpyHeaderCache", "check_start_batch", "epoch_order",
    "resolve_seed", "shard_rows", "shard_size",
]

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # O_BINARY: no text mode on Windows

_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


class NpyHeaderCache:
    """Reads ``.npy`` headers with numpy's own reader, once per distinct header: the samples
    of a dataset share one, so after the first file a read costs a comparison of bytes, not
    ``np.load``'s parsing. Plain dict state: picklable, and safe to share between threads."""

    def __init__(self) -> None:
        # header bytes (magic to padding) -> (dtype, shape, fortran_order)
        self._seen: dict[bytes, tuple[np.dtype, tuple[int, ...], bool]] = {}

    def decode(self, raw: bytes, where: str) -> np.ndarray:
        """The array held by ``raw``, the bytes of a whole ``.npy`` file; ValueError naming
        ``where`` if it is not one, holds Python objects, or is truncated or padded."""
        for header, known in self._seen.items():  # usually one
            if raw.startswith(header):
                info, offset = known, len(header)
                break
        else:
            info, offset = self._read_header(raw, where)
            self._seen[raw[:offset]] = info
        dtype, shape, fortran = info
        count = math.prod(shape)
        if len(raw) - offset != count * dtype.itemsize:
            raise ValueError(
                f"{where}: file is truncated or padded: {len(raw) - offset} data bytes "
                f"for shape {shape} of {dtype}")
        array = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
        return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)

    @staticmethod
    def _read_header(raw: bytes, where: str) -> tuple[tuple, int]:
        """``((dtype, shape, fortran_order), data offset)``, read by ``numpy.lib.format``."""
        f = io.BytesIO(raw)
        try:
            version = np.lib.format.read_magic(f)
        except ValueError as e:
            raise ValueError(f"{where}: not a .npy file ({e})") from None
        if version not in _HEADER_READERS:
            raise ValueError(f"{where}: .npy format version {version} is not supported")
        try:
            shape, fortran, dtype = _HEADER_READERS[version](f)
        except ValueError as e:
            raise ValueError(f"{where}: unreadable .npy header ({e})") from None
        if dtype.hasobject or dtype.kind not in "biuf":
            raise ValueError(f"{where}: dtype {dtype} is not numeric")
        return (dtype, tuple(shape), bool(fortran)), f.tell()


def resolve_seed(seed: int | None) -> int:
    """``seed`` itself, or a fresh random one: either way a plain int every copy can share."""
    return int(np.random.SeedSequence().entropy) if seed is None else int(seed)


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The sample order of ``epoch``: a permutation of ``range(n)`` drawn from ``(seed, epoch)``,
    so every worker process computes the same, a re-run repeats it, and epochs differ."""
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
    return np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)


def check_start_batch(start_batch: int, batches_per_epoch: int) -> int:
    """``start_batch`` as an int, or ValueError naming it unless it is a batch of the epoch."""
    if (isinstance(start_batch, bool) or not isinstance(start_batch, (int, np.integer))
            or not 0 <= start_batch < batches_per_epoch):
        raise ValueError(f"start_batch must be an integer in [0, {batches_per_epoch}) (the "
                         f"batches of an epoch), got {start_batch!r}")
    return int(start_batch)


SHARD_REMAINDERS = ("pad", "drop")
"""What ``shard_rows`` does with the ``n % count`` samples that do not divide evenly."""


def shard_size(n: int, shard: tuple[int, int] | None, remainder: str = "pad") -> int:
    """How many samples each shard serves per epoch: ``ceil(n / count)`` with ``"pad"``,
    ``n // count`` with ``"drop"``, ``n`` without sharding. Checks the arguments."""
    if remainder not in SHARD_REMAINDERS:
        raise ValueError(f"shard_remainder must be one of {SHARD_REMAINDERS}, got {remainder!r}")
    if shard is None:
        return n
    if (not isinstance(shard, (tuple, list)) or len(shard) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in shard)):
        raise ValueError(f"shard must be a pair of ints (index, count), got {shard!r}")
    index, count = (int(v) for v in shard)
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard=(index, count) needs count >= 1 and 0 <= index < count, "
                         f"got {shard!r}")
    size = n // count if remainder == "drop" else -(-n // count)
    if size == 0:
        raise ValueError(f"shard_remainder='drop' with {n} samples over {count} shards leaves "
                         "every shard empty: use shard_remainder='pad' or fewer shards")
    return size


def shard_rows(order: np.ndarray, shard: tuple[int, int] | None,
               remainder: str = "pad") -> np.ndarray:
    """The entries of one epoch's global ``order`` that shard ``(index, count)`` serves.

    Dealt out in turn (``order[index::count]``), so every shard gets ``shard_size`` of them.
    ``"drop"``: shards are disjoint; the last ``n % count`` entries of this epoch's order are
    skipped (a different few each shuffled epoch). ``"pad"``: ``order`` is repeated cyclically
    to ``count * ceil(n / count)`` entries: every sample served at least once across shards,
    the fewest twice (even with fewer samples than shards). ``shard=None``: ``order`` itself.
    """
    size = shard_size(len(order), shard, remainder)
    if shard is None:
        return order
    index, count = int(shard[0]), int(shard[1])
    return np.resize(order, size * count)[index::count]


class DataGenerator(keras.utils.PyDataset):
    """Serves ``(X, y)`` batches read on the fly from ``<data_dir>/<ID>.npy``.

    Args:
        list_IDs: the sample IDs of this split (e.g. ``partition["train"]``).
        labels: ``{ID: class index}``, or ``None`` (inference): batches are ``X`` alone, and
            with ``shuffle=False`` the rows of ``predict(gen)`` follow ``list_IDs``.
        data_dir: folder holding one ``<ID>.npy`` per sample.
        batch_size, dim, n_channels, n_classes: as in the article; a file holds an array of
            shape ``dim`` (a channel axis is added) or ``(*dim, n_channels)``, any numeric dtype.
        shuffle, seed: reshuffle every epoch; ``seed`` makes it reproducible (``None``: drawn).
        drop_remainder: round ``len()`` down and skip the last partial batch.
        shard, shard_remainder: ``(index, count)``: serve only this process's share of each
            epoch (``shard_rows``; ``None``: every sample); ``"pad"`` repeats the fewest
            samples so shards are equal, ``"drop"`` skips the ``n % count`` left over
            (``samples_repeated``, ``samples_dropped``: how many, per epoch, all shards).
        epoch, start_batch: where to start: batch ``start_batch`` of epoch ``epoch``, as in an
            uninterrupted run (a new object resuming a training); see ``set_epoch``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``PyDataset``.

    ``X`` is float32 ``(b, *dim, n_channels)``; ``y`` is float32 one-hot ``(b, n_classes)``.
    """

    def __init__(
        self,
        list_IDs: Sequence[str],
        labels: Mapping[str, int] | None,
        data_dir: str | Path,
        batch_size: int = 32,
        dim: tuple[int, ...] = (32, 32, 32),
        n_channels: int = 1,
        n_classes: int = 10,
        shuffle: bool = True,
        seed: int | None = None,
        drop_remainder: bool = False,
        shard: tuple[int, int] | None = None,
        shard_remainder: str = "pad",
        epoch: int = 0,
        start_batch: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if len(list_IDs) == 0:
            raise ValueError("list_IDs is empty: there is nothing to serve")
        self.list_IDs = [str(i) for i in list_IDs]
        self.data_dir = Path(data_dir)
        self.batch_size = int(batch_size)
        self.dim = tuple(int(d) for d in dim)
        self.n_channels = int(n_channels)
        self.n_classes = int(n_classes)
        self.shuffle = shuffle
        self.drop_remainder = drop_remainder
        self._labels = None if labels is None else self._label_array(labels)
        self._shard_size = shard_size(len(self.list_IDs), shard, shard_remainder)
        self.shard = None if shard is None else (int(shard[0]), int(shard[1]))
        self.shard_remainder = shard_remainder
        if self.batches_per_epoch == 0:
            raise ValueError(f"{len(self.list_IDs)} samples with batch_size={batch_size} and "
                             "drop_remainder=True give zero batches: nothing would be trained on")
        self._check_files()
        self._headers = NpyHeaderCache()
        self._layout = None  # (header bytes, file size, dtype) of the first well-formed file
        self.seed = resolve_seed(seed)
        self.set_epoch(epoch, start_batch)

    def _label_array(self, labels: Mapping[str, int]) -> np.ndarray:
        out = np.empty(len(self.list_IDs), dtype=np.int64)
        for k, id_ in enumerate(self.list_IDs):
            if id_ not in labels:
                raise KeyError(f"ID {id_!r} has no entry in labels")
            out[k] = labels[id_]
            if not 0 <= out[k] < self.n_classes:
                raise ValueError(f"label of ID {id_!r} is {out[k]}, outside "
                                 f"[0, {self.n_classes}) for n_classes={self.n_classes}")
        return out

    def _check_files(self) -> None:
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"data_dir {self.data_dir} is not a folder")
        with os.scandir(self.data_dir) as entries:
            present = {e.name for e in entries}
        for id_ in self.list_IDs:
            if f"{id_}.npy" not in present:
                raise FileNotFoundError(
                    f"sample {id_!r}: no file at {self.data_dir / (id_ + '.npy')}")
        self._paths = [os.fsencode(self.data_dir / f"{i}.npy") for i in self.list_IDs]

    @property
    def num_samples(self) -> int:
        return len(self.list_IDs)

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
        n = self._shard_size / self.batch_size
        return math.floor(n) if self.drop_remainder else math.ceil(n)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Serve epoch ``epoch``'s order (0 is the first) from its batch ``start_batch`` on.

        Until the next epoch, ``len()`` counts the batches left and ``gen[i]`` is the epoch's
        batch ``start_batch + i``. ``fit()`` calls ``on_epoch_end`` once before its first
        epoch (Keras 3.15): to resume, call this from a callback's ``on_epoch_begin(epoch)``.
        """
        order = epoch_order(self.num_samples, self.seed, epoch, self.shuffle)  # checks epoch
        self.start_batch = check_start_batch(start_batch, self.batches_per_epoch)
        rows = shard_rows(order, self.shard, self.shard_remainder)
        self.indexes = rows[self.start_batch * self.batch_size:]  # batches start_batch, ...
        self.epoch = int(epoch)

    def on_epoch_end(self) -> None:
        """Move to the next epoch's order (``fit()`` calls it after each epoch, and once before
        the first: Keras 3's ``EpochIterator.reset``)."""
        self.set_epoch(self.epoch + 1)

    def batch_rows(self, index: int) -> np.ndarray:
        """Positions in ``list_IDs`` of the samples batch ``index`` holds, in their order."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        return self.indexes[index * self.batch_size:(index + 1) * self.batch_size]

    def batch_ids(self, index: int) -> list[str]:
        """The IDs that batch ``index`` holds, in order."""
        return [self.list_IDs[k] for k in self.batch_rows(index)]

    def __getitem__(self, index: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        rows = self.batch_rows(index)
        if self._labels is None:
            return self._read_batch(rows)
        y = keras.utils.to_categorical(self._labels[rows], self.n_classes).astype(np.float32)
        return self._read_batch(rows), y

    def _read_batch(self, rows: np.ndarray) -> np.ndarray:
        """Read the samples ``rows`` into one float32 batch. Fast path: a file sharing the
        first decoded file's header has its size, so it is read with one ``os.read`` call
        (portable, unlike ``os.readv``; measured faster than ``io.FileIO.readinto``) and cast
        straight into its row of ``X``; any other is decoded, fully checked, by ``_load``."""
        X = np.empty((len(rows), *self.dim, self.n_channels), dtype=np.float32)
        first = 0
        if self._layout is None:  # the first file tells what every file should look like
            X[0], first = self._load(rows[0]), 1
        if self._layout is None:  # e.g. a Fortran-ordered file: no fast path
            for j in range(first, len(rows)):
                X[j] = self._load(rows[j])
            return X
        header, size, dtype = self._layout
        shape, offset = (*self.dim, self.n_channels), len(header)
        for j, k in enumerate(rows[first:].tolist(), start=first):  # Python ints: faster
            try:
                fd = os.open(self._paths[k], _READ_FLAGS)
            except OSError:
                X[j] = self._load(k)  # raises the error that names the sample
                continue
            try:
                raw = os.read(fd, size + 1)  # +1 byte: detects a longer file
            finally:
                os.close(fd)
            if len(raw) == size and raw.startswith(header):
                X[j] = np.frombuffer(raw, dtype, offset=offset).reshape(shape)
            else:
                X[j] = self._load(k)
        return X

    def _load(self, k: int) -> np.ndarray:
        """Sample ``k`` as an array of shape ``(*dim, n_channels)`` (any numeric dtype)."""
        path = self._paths[k]
        where = f"sample {self.list_IDs[k]!r} ({path})"
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"{where}: file not found") from None
        array = self._headers.decode(raw, where)
        if array.shape == self.dim and self.n_channels == 1:
            array = array[..., None]
        elif array.shape != (*self.dim, self.n_channels):
            raise ValueError(f"{where}: expected shape {self.dim} or "
                             f"{(*self.dim, self.n_channels)}, found {array.shape}")
        if self._layout is None and array.flags.c_contiguous:
            # Remember this well-formed file's header: files that share it take the fast path.
            self._layout = (raw[:len(raw) - array.nbytes], len(raw), array.dtype)
        return array
