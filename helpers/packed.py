"""A packed layout: samples stored as rows of a few large ``.npy`` shards, read by memory map.

One file per sample (the article's layout) costs an ``open()`` and a small read per sample;
with thousands of samples per second that per-file cost, not the bytes, sets the pace.
``pack_volume_dataset`` copies such a dataset into ``shard-000.npy``, ``shard-001.npy``, ...
(each ``(rows, *sample_shape)``) plus ``packed.json``, the index ``{ID: [shard, row]}``.
``PackedDataGenerator`` serves the same batches as ``DataGenerator`` from those shards: it
maps each shard into memory (the operating system pages in only the rows a batch touches),
gathers a batch's rows shard by shard in ascending order, then puts them back in batch order.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .atomic import atomic_folder, save_npy_atomic
from .generator import DataGenerator, NpyHeaderCache
from .progress import progress_bar

__all__ = ["PACKED_INDEX", "PackedDataGenerator", "pack_volume_dataset"]

PACKED_INDEX = "packed.json"
"""Name of the index file of a packed folder; its presence marks a complete pack."""

_COPIED = ("partition.json", "labels.json")


def _read_index(data_dir: Path) -> dict:
    path = data_dir / PACKED_INDEX
    if not path.is_file():
        raise FileNotFoundError(
            f"no {PACKED_INDEX} in {data_dir}: not a packed dataset (make one with "
            "pack_volume_dataset)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        shards, rows = list(index["shards"]), index["index"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a packed-dataset index ({e})") from None
    if not isinstance(rows, dict):
        raise ValueError(f"{path}: 'index' must map IDs to [shard, row]")
    return index | {"shards": shards}


def _shard_header(path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, shape, data offset)`` of a C-order numeric ``.npy`` file; ValueError if not."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except FileNotFoundError:
        raise FileNotFoundError(f"shard {path} is missing") from None
    except (ValueError, OSError) as e:
        raise ValueError(f"shard {path}: not a readable .npy file ({e})") from None
    if fortran or dtype.hasobject or dtype.kind not in "biuf":
        raise ValueError(f"shard {path}: expected a C-order numeric array, found {dtype} "
                         f"(fortran_order={fortran})")
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if path.stat().st_size != expected:
        raise ValueError(f"shard {path} is truncated or padded: {path.stat().st_size} bytes, "
                         f"its header announces {expected}")
    return dtype, tuple(shape), offset


class PackedDataGenerator(DataGenerator):
    """``DataGenerator``'s batches, read from the shards that ``pack_volume_dataset`` wrote.

    Same arguments, same batches, same errors as ``DataGenerator`` (it inherits the label
    checks, the ``(seed, epoch)`` order, ``len()``, ``batch_ids`` and ``on_epoch_end``);
    only ``data_dir`` differs (a packed folder), and how a batch is read. An ID missing from
    the index raises KeyError naming it; a missing, truncated or wrongly shaped shard raises
    an error naming the shard's path, when the generator is built. Shards are memory-mapped
    on first use in each process; pickling (for process workers) carries the index, never
    the data.
    """

    def _check_files(self) -> None:
        """Check the index and every shard this split uses; called by ``__init__``."""
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"data_dir {self.data_dir} is not a folder")
        index = _read_index(self.data_dir)
        shard_of = np.empty(len(self.list_IDs), dtype=np.int64)
        row_of = np.empty(len(self.list_IDs), dtype=np.int64)
        for k, id_ in enumerate(self.list_IDs):
            if id_ not in index["index"]:
                raise KeyError(
                    f"ID {id_!r} is not in the packed index {self.data_dir / PACKED_INDEX}")
            shard_of[k], row_of[k] = index["index"][id_]
        self._shard_paths = [str(self.data_dir / name) for name in index["shards"]]
        self._offsets: dict[int, tuple[np.dtype, tuple[int, ...], int]] = {}
        for s in np.unique(shard_of):
            if not 0 <= s < len(self._shard_paths):
                raise ValueError(f"{self.data_dir / PACKED_INDEX}: shard number {s} does not exist")
            self._offsets[int(s)] = self._check_shard(Path(self._shard_paths[s]),
                                                      int(row_of[shard_of == s].max()))
        self._shard_of, self._row_of = shard_of, row_of
        self._maps: dict[int, np.ndarray] = {}

    def _check_shard(self, path: Path, max_row: int) -> tuple[np.dtype, tuple[int, ...], int]:
        dtype, shape, offset = _shard_header(path)
        if shape[1:] not in (self.dim, (*self.dim, self.n_channels)) or (
                shape[1:] == self.dim and self.n_channels != 1):
            raise ValueError(f"shard {path}: rows of shape {shape[1:]}, expected {self.dim} "
                             f"or {(*self.dim, self.n_channels)}")
        if max_row >= shape[0]:
            raise ValueError(f"shard {path} has {shape[0]} rows; the index points at row "
                             f"{max_row}")
        return dtype, shape, offset

    def _shard(self, s: int) -> np.ndarray:
        """Shard ``s`` as a read-only memory map with a channel axis, opened once per process."""
        array = self._maps.get(s)
        if array is None:
            dtype, shape, offset = self._offsets[s]
            array = np.memmap(self._shard_paths[s], dtype=dtype, mode="r", offset=offset,
                              shape=shape)
            if len(shape) == len(self.dim) + 1:
                array = array[..., None]
            self._maps[s] = array
        return array

    def __getstate__(self) -> dict:
        # memory maps are re-opened by the process that unpickles
        return self.__dict__ | {"_maps": {}}

    def _read_batch(self, rows: np.ndarray) -> np.ndarray:
        """Gather the samples ``rows`` from the shards into one float32 batch."""
        X = np.empty((len(rows), *self.dim, self.n_channels), dtype=np.float32)
        shards, shard_rows = self._shard_of[rows], self._row_of[rows]
        # Sort by (shard, row): each shard is read front to back, then rows go back in place.
        order = np.lexsort((shard_rows, shards))
        for s in np.unique(shards):
            where = order[shards[order] == s]
            X[where] = self._shard(int(s))[shard_rows[where]]
        return X


def _sample_ids(src_dir: Path) -> list[str]:
    labels = src_dir / "labels.json"
    if labels.is_file():
        return list(json.loads(labels.read_text(encoding="utf-8")))
    return sorted(p.stem for p in src_dir.glob("*.npy"))


def pack_volume_dataset(
    src_dir: str | Path,
    dst_dir: str | Path,
    ids: Sequence[str] | None = None,
    shard_size: int = 1024,
    progress: bool = True,
) -> Path:
    """Copy the per-sample files ``<src_dir>/<ID>.npy`` into a few shards in ``dst_dir``.

    ``ids`` defaults to the keys of ``<src_dir>/labels.json`` (else every ``.npy`` file);
    each shard holds up to ``shard_size`` samples in that order, with the samples' dtype and
    shape. ``partition.json`` and ``labels.json`` are copied along, so ``load_partition``
    works on ``dst_dir`` too. Everything is written in a temporary sibling folder that is
    renamed to ``dst_dir`` only when complete. If ``dst_dir`` already holds a pack of the
    same IDs and shard size it is reused; a different pack, or any other non-empty folder,
    raises FileExistsError: nothing is overwritten. Returns ``dst_dir``.
    """
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    if not src_dir.is_dir():
        raise FileNotFoundError(f"src_dir {src_dir} is not a folder")
    ids = [str(i) for i in (_sample_ids(src_dir) if ids is None else ids)]
    if not ids:
        raise ValueError(f"no samples to pack in {src_dir}")
    if len(set(ids)) != len(ids):
        raise ValueError("ids holds duplicates")
    if dst_dir.exists():
        if (dst_dir / PACKED_INDEX).is_file():
            found = _read_index(dst_dir)
            if list(found["index"]) == ids and found.get("shard_size") == shard_size:
                return dst_dir
            raise FileExistsError(f"{dst_dir} holds another pack (other IDs or shard size): "
                                  "pass another dst_dir, or delete that folder to rebuild it")
        if any(dst_dir.iterdir()):
            raise FileExistsError(f"{dst_dir} is not empty and was not written by "
                                  "pack_volume_dataset: refusing to overwrite; pass another "
                                  "dst_dir")
    with atomic_folder(dst_dir) as tmp:  # an empty dst_dir (checked above) is replaced
        _write_shards(src_dir, tmp, ids, shard_size, progress)
        for name in _COPIED:
            if (src_dir / name).is_file():
                shutil.copyfile(src_dir / name, tmp / name)
    return dst_dir


def _write_shards(src_dir: Path, out: Path, ids: list[str], shard_size: int,
                  progress: bool) -> None:
    headers = NpyHeaderCache()
    shards, index = [], {}
    first = None
    bar = progress_bar(total=len(ids), desc=f"packing {src_dir.name}", unit="file",
                       enabled=progress)
    for start in range(0, len(ids), shard_size):
        chunk = ids[start:start + shard_size]
        block = None
        for row, id_ in enumerate(chunk):
            path = src_dir / f"{id_}.npy"
            try:
                sample = headers.decode(path.read_bytes(), f"sample {id_!r} ({path})")
            except FileNotFoundError:
                raise FileNotFoundError(f"sample {id_!r}: no file at {path}") from None
            if first is None:
                first = sample
            if sample.shape != first.shape or sample.dtype != first.dtype:
                raise ValueError(f"sample {id_!r} ({path}) is {sample.dtype}{sample.shape}, "
                                 f"the first sample {first.dtype}{first.shape}: one shape only")
            if block is None:
                block = np.empty((len(chunk), *sample.shape), dtype=sample.dtype)
            block[row] = sample
            index[id_] = [len(shards), row]
            bar.update()
        name = f"shard-{len(shards):03d}.npy"
        save_npy_atomic(out / name, block)
        shards.append(name)
    bar.close()
    meta = {"shard_size": shard_size, "sample_shape": list(first.shape),
            "dtype": str(first.dtype), "shards": shards, "index": index}
    (out / PACKED_INDEX).write_text(json.dumps(meta), encoding="utf-8")
