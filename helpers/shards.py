"""The same samples as shard files in four formats, and readers that name a damaged shard.

When one file per sample is too many files, samples are packed into a few large files
("shards"). This module writes one set of images and labels as ``num_shards`` shards of:

- ``"npy"``: the course's packed layout, ``shard-00k.npy`` (images) beside
  ``shard-00k.labels.npy`` and ``shard-00k.index.npy``, read by memory map;
- ``"tfrecord"``: ``tf.train.Example`` records (features ``image`` (raw bytes), ``label``,
  ``index``) in ``.tfrecord`` files, read by ``tf.data``;
- ``"arrayrecord"``: one record per sample (``pack_record``: index and label as two
  little-endian int64, then the raw image bytes), read by random access (Grain);
- ``"tar"``: WebDataset's layout, one tar member per field (``000123.npy``,
  ``000123.cls``), read as a stream.

Every sample keeps its ``index`` (its place in the stored order), so a pipeline's order can
be counted. A folder is written whole or not at all (``helpers.atomic``), its manifest
``shards.json`` (counts and file sizes) last; a folder without one is never overwritten.
``read_shard`` raises ``DamagedShardError`` naming a damaged shard, which TensorFlow's
``DataLossError`` does not, and counts records, since some cuts raise nothing at all.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .atomic import atomic_folder

__all__ = ["FORMATS", "MANIFEST", "DamagedShardError", "NpyShardSource", "check_shards",
           "neighbour_stats", "open_files", "pack_record", "read_shard", "shard_files",
           "tf_example", "tfrecord_dataset", "unpack_record", "webdataset_batches",
           "write_shards"]

FORMATS = ("npy", "tfrecord", "arrayrecord", "tar")
MANIFEST = "shards.json"
_SUFFIX = {"npy": ".npy", "tfrecord": ".tfrecord", "arrayrecord": ".array_record",
           "tar": ".tar"}
_HEADER = struct.Struct("<qq")  # index, label


class DamagedShardError(RuntimeError):
    """A shard file that cannot be read to its end; ``path`` names it."""

    def __init__(self, path: str | Path, cause: BaseException | str):
        self.path = str(path)
        super().__init__(f"shard {self.path} is damaged (truncated or corrupt): {cause}")


def pack_record(image: np.ndarray, label: int, index: int) -> bytes:
    """One sample as bytes: index and label (two little-endian int64), then the image."""
    return _HEADER.pack(int(index), int(label)) + np.ascontiguousarray(image).tobytes()


def unpack_record(record: bytes, shape: Sequence[int]) -> tuple[np.ndarray, int, int]:
    """``(image uint8 of shape, label, index)`` from ``pack_record``'s bytes."""
    index, label = _HEADER.unpack_from(record)
    return np.frombuffer(record, np.uint8, offset=_HEADER.size).reshape(shape), label, index


def tf_example(image: np.ndarray, label: int, index: int) -> bytes:
    """One sample as a serialized ``tf.train.Example`` (image as raw bytes)."""
    import tensorflow as tf

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[np.ascontiguousarray(image).tobytes()])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(index)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _tf_spec() -> dict:
    import tensorflow as tf

    return {"image": tf.io.FixedLenFeature([], tf.string),
            **{k: tf.io.FixedLenFeature([], tf.int64) for k in ("label", "index")}}


def _write_one(fmt: str, path: Path, images: np.ndarray, labels: np.ndarray,
               index: np.ndarray) -> None:
    if fmt == "npy":
        np.save(path, images)
        np.save(path.with_suffix(".labels.npy"), labels)
        np.save(path.with_suffix(".index.npy"), index)
    elif fmt == "tfrecord":
        import tensorflow as tf

        with tf.io.TFRecordWriter(str(path)) as writer:
            for x, y, i in zip(images, labels, index, strict=True):
                writer.write(tf_example(x, y, i))
    elif fmt == "arrayrecord":
        from array_record.python.array_record_module import ArrayRecordWriter

        writer = ArrayRecordWriter(str(path), "group_size:1")  # Grain reads group size 1
        for x, y, i in zip(images, labels, index, strict=True):
            writer.write(pack_record(x, y, i))
        writer.close()
    else:
        import webdataset as wds

        with open(path, "wb") as f, wds.TarWriter(f, mtime=0) as sink:
            for x, y, i in zip(images, labels, index, strict=True):
                sink.write({"__key__": f"{int(i):06d}", "npy": x, "cls": int(y)})


def write_shards(folder: str | Path, images: np.ndarray, labels: np.ndarray, fmt: str,
                 num_shards: int = 8, overwrite: bool = False) -> list[Path]:
    """Write ``images``/``labels`` in stored order as ``num_shards`` shards of ``fmt``.

    Shard ``k`` holds a contiguous run of samples; one shard at a time is in memory, so
    ``images`` may be memory-mapped (``np.load(mmap_mode="r")``) or an HDF5 dataset. The
    folder appears whole or not at all, ``shards.json`` last. An existing folder is replaced
    only if ``overwrite`` and it holds this module's manifest; else FileExistsError.
    """
    if fmt not in FORMATS or len(images) != len(labels):
        raise ValueError(f"format {fmt!r} (one of {FORMATS}?), {len(images)} images, "
                         f"{len(labels)} labels")
    folder = Path(folder)
    old = None
    if folder.exists() and any(folder.iterdir()):
        if not (overwrite and (folder / MANIFEST).is_file()):
            raise FileExistsError(f"{folder} is not empty and was not written by "
                                  f"write_shards with overwrite=True; it is never overwritten")
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old",
                                    dir=folder.parent))
        os.rename(folder, old / folder.name)
    try:
        names = [f"shard-{k:03d}{_SUFFIX[fmt]}" for k in range(num_shards)]
        bounds = np.linspace(0, len(images), num_shards + 1).astype(int)
        with atomic_folder(folder) as tmp:
            for name, lo, hi in zip(names, bounds[:-1], bounds[1:], strict=True):
                _write_one(fmt, tmp / name, np.asarray(images[lo:hi], np.uint8),
                           np.asarray(labels[lo:hi], np.int64), np.arange(lo, hi))
            (tmp / MANIFEST).write_text(json.dumps({
                "format": fmt, "files": names, "counts": np.diff(bounds).tolist(),
                "shape": list(images.shape[1:]),
                "bytes": {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}}))
    except BaseException:
        if old is not None and not folder.exists():
            os.rename(old / folder.name, folder)  # the old folder back, as it was
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return [folder / name for name in names]


def shard_files(folder: str | Path) -> tuple[list[Path], dict]:
    """The shard files of a folder that ``write_shards`` wrote, and its manifest."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no {MANIFEST} in {folder}: not written by write_shards "
                                "(or the write did not finish)") from None
    return [folder / name for name in manifest["files"]], manifest


def _read(path: Path, shape: Sequence[int]) -> Iterator[tuple[np.ndarray, int, int]]:
    name = path.name
    if name.endswith(".tfrecord"):
        import tensorflow as tf

        records = tf.data.TFRecordDataset(str(path)).batch(256).map(
            lambda r: tf.io.parse_example(r, _tf_spec()))
        for batch in records.as_numpy_iterator():
            for image, label, index in zip(batch["image"], batch["label"], batch["index"],
                                           strict=True):
                yield np.frombuffer(image, np.uint8).reshape(shape), int(label), int(index)
    elif name.endswith(".array_record"):
        from array_record.python.array_record_module import ArrayRecordReader

        reader = ArrayRecordReader(str(path))
        try:
            for k in range(reader.num_records()):
                yield unpack_record(reader.read([k])[0], shape)
        finally:
            reader.close()
    elif name.endswith(".tar"):
        import webdataset as wds

        samples = wds.WebDataset(str(path), shardshuffle=False, empty_check=False).decode()
        for s in samples:
            yield s["npy"], int(s["cls"]), int(s["__key__"])
    else:
        x = np.load(path, mmap_mode="r")
        labels = np.load(path.with_suffix(".labels.npy"))
        index = np.load(path.with_suffix(".index.npy"))
        if not len(x) == len(labels) == len(index):
            raise ValueError(f"{len(x)} images, {len(labels)} labels, {len(index)} indices")
        for k in range(len(x)):
            yield np.asarray(x[k]), int(labels[k]), int(index[k])


def read_shard(path: str | Path, shape: Sequence[int],
               expected: int | None = None) -> Iterator[tuple[np.ndarray, int, int]]:
    """Yield ``(image, label, index)`` from one shard of any format (known by its suffix).

    Any failure to read it raises ``DamagedShardError`` naming ``path``, and so does a shard
    that ends after fewer (or more) than ``expected`` records: a TFRecord file cut inside a
    record header, or a tar file cut at or inside a member header, ends early WITHOUT an
    error (TensorFlow's record reader; ``tarfile.TarFile.next``), so only a count finds it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"shard {path} is missing")
    n = 0
    try:
        for row in _read(path, tuple(shape)):
            n += 1
            yield row
    except Exception as error:  # DataLossError, RuntimeError (Riegeli), ValueError, ...
        raise DamagedShardError(path, f"{type(error).__name__}: {error}") from error
    if expected is not None and n != expected:
        raise DamagedShardError(path, f"it holds {n} records, its manifest lists {expected}")


def check_shards(folder: str | Path, read: bool = True) -> int:
    """Check a ``write_shards`` folder; return its number of samples. First, cheaply, each
    file's size against the manifest; then, if ``read``, every record against its counts
    (a byte changed in place keeps the size: reading finds it only where the format carries
    checksums, TFRecord's CRC or ArrayRecord's Riegeli hashes; tar member data and ``.npy``
    have none). Raises ``DamagedShardError`` naming the file."""
    files, manifest = shard_files(folder)
    for name, size in manifest.get("bytes", {}).items():
        path = Path(folder) / name
        if not path.is_file():
            raise FileNotFoundError(f"shard {path} is missing")
        if path.stat().st_size != size:
            raise DamagedShardError(path, f"{path.stat().st_size} bytes, manifest lists {size}")
    for path, count in zip(files, manifest["counts"], strict=True) if read else ():
        for _ in read_shard(path, manifest["shape"], expected=count):
            pass
    return int(sum(manifest["counts"]))


class NpyShardSource:
    """Random access over ``"npy"`` shards, for Grain: ``source[i]`` is sample ``i``'s
    ``(image, label, index)``. Each shard is memory-mapped on first use in each process;
    pickling carries the paths, never the maps."""

    def __init__(self, files: Sequence[str | Path]):
        self.files = [str(f) for f in files]
        self.counts = [len(np.load(f, mmap_mode="r")) for f in self.files]
        self.starts = np.cumsum([0, *self.counts])
        self._maps: dict[int, tuple] = {}
        self._lock = threading.Lock()  # Grain reads with threads: one map per shard

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, i: int) -> tuple[np.ndarray, int, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} of {len(self)}")
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        if k not in self._maps:
            with self._lock:
                if k not in self._maps:
                    path = Path(self.files[k])
                    self._maps[k] = (np.load(path, mmap_mode="r"),
                                     np.load(path.with_suffix(".labels.npy")))
        x, y = self._maps[k]
        row = i - int(self.starts[k])
        return np.asarray(x[row]), int(y[row]), i

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_maps", "_lock")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _maps={}, _lock=threading.Lock())


def tfrecord_dataset(files: Sequence[str | Path], shape: Sequence[int], batch_size: int,
                     buffer: int, seed: int, with_index: bool = False,
                     cycle_length: int = 4):
    """tf.data over TFRecord shards: shuffle the files, interleave ``cycle_length`` (4),
    shuffle ``buffer``, parse, batch, prefetch. Yields ``(x float32 in [0, 1], y)`` (and
    ``index`` if asked)."""
    import tensorflow as tf

    def parse(record):
        ex = tf.io.parse_single_example(record, _tf_spec())
        x = tf.cast(tf.reshape(tf.io.decode_raw(ex["image"], tf.uint8), shape), tf.float32)
        out = (x / 255.0, ex["label"])
        return (*out, ex["index"]) if with_index else out

    ds = tf.data.Dataset.from_tensor_slices([str(f) for f in files])
    ds = ds.shuffle(len(files), seed=seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=cycle_length)
    if buffer > 1:
        ds = ds.shuffle(buffer, seed=seed)
    return ds.map(parse).batch(batch_size).prefetch(2)


def webdataset_batches(files: Sequence[str | Path], batch_size: int, buffer: int,
                       seed: int, with_index: bool = False) -> Iterator[tuple]:
    """One epoch of WebDataset batches ``(x float32 in [0, 1], y)`` (and ``index``): shard
    order shuffled, then a ``buffer``-sample shuffle, both seeded; the last may be short."""
    import webdataset as wds

    keys, ints = (("npy", "cls", "__key__"), (int, int)) if with_index else (("npy", "cls"), (int,))
    ds = (wds.WebDataset([str(f) for f in files], shardshuffle=len(files), seed=seed,
                         empty_check=False)
          .shuffle(buffer, seed=seed).decode().to_tuple(*keys)
          .map_tuple(lambda x: x.astype(np.float32) / 255.0, *ints).batched(batch_size))
    return iter(ds)


def neighbour_stats(order: Sequence[int], per_shard: int,
                    batch_size: int = 32) -> dict[str, float]:
    """How well an epoch's order is mixed (shards of ``per_shard`` consecutive samples):
    ``distance``, the mean distance in stored order between neighbours (uniform: about N/3);
    ``same_shard``, the share of neighbours from one shard; ``shards_per_batch``, distinct
    shards in a batch, on average (interleaving raises the distance, not this)."""
    order = np.asarray(order)
    shard = order // per_shard
    batches = [shard[k:k + batch_size] for k in range(0, len(order), batch_size)]
    return {"distance": float(np.abs(np.diff(order)).mean()),
            "same_shard": float((shard[1:] == shard[:-1]).mean()),
            "shards_per_batch": float(np.mean([len(np.unique(b)) for b in batches]))}


def open_files(folder: str | Path) -> set[tuple[str, str]]:
    """``(descriptor, path)`` of each file this process holds open under ``folder``, in
    Python or C++ (TensorFlow's, ArrayRecord's): pairs new between two calls are files
    opened. Linux (``/proc/self/fd``) only; elsewhere an empty set."""
    prefix, fd_dir, found = os.path.realpath(folder), "/proc/self/fd", set()
    for fd in os.listdir(fd_dir) if os.path.isdir(fd_dir) else []:
        try:
            path = os.readlink(f"{fd_dir}/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor, too)
            continue
        if path.startswith(prefix):
            found.add((fd, path))
    return found
