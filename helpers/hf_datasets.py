"""Hugging Face ``datasets`` into Keras 3's ``fit()``: notebook 16's tested code.

- ``write_parquet_shards`` writes images and labels as Parquet files with an ``Image()``
  feature (encoded bytes: PNG here) and a ``ClassLabel``, a layout many image datasets on the
  Hub use; the folder is written whole or not at all, and a folder it did not write is never
  touched.
- ``load_parquet`` reads them back with ``load_dataset("parquet", ...)``, with the Arrow cache
  in a folder the caller names (nothing goes to ``~/.cache``) and errors that name the file.
- ``HFBatches`` is a ``keras.utils.PyDataset`` over a map-style ``datasets.Dataset``: random
  access on its memory-mapped Arrow table, a seeded new order every epoch, workers allowed,
  and ``set_epoch(epoch, start_batch)`` so that ``helpers.fit_resumable`` resumes it at the
  exact batch. It pickles small (a memory-mapped dataset pickles as its file's path) and
  names a missing column in its error.
- ``stream_batches`` turns a streaming ``IterableDataset`` into the Python generator that
  ``fit()`` accepts (Keras' data adapters take a generator, not an iterable object), one pass
  per epoch; ``StreamPosition`` keeps the stream's ``state_dict()`` of the batches ``fit()``
  has trained, not of those it has read ahead; ``resume_counts`` counts what a resumed stream
  repeats and loses against an uninterrupted one.

``datasets`` is imported inside the functions, so ``import helpers`` does not need it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from .atomic import atomic_folder
from .generator import check_start_batch, epoch_order, resolve_seed

if TYPE_CHECKING:
    import datasets

__all__ = ["HFBatches", "StreamPosition", "load_parquet", "resume_counts", "stream_batches",
           "write_parquet_shards"]

MANIFEST = "manifest.json"  # what write_parquet_shards wrote: file names and sizes


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _manifest(folder: Path) -> dict | None:
    """The manifest of ``folder`` when it holds exactly the files it lists, of the listed
    sizes (a folder this module wrote, untouched since); else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        sizes = manifest["files"]
        present = {p.name for p in folder.iterdir()} - {MANIFEST}
        if present == set(sizes) and all(
                (folder / name).stat().st_size == size for name, size in sizes.items()):
            return manifest
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _fingerprint(images: np.ndarray, labels: np.ndarray, *settings: object) -> str:
    digest = hashlib.sha256(repr((images.shape, str(images.dtype), settings)).encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    digest.update(np.asarray(labels, dtype="int64").tobytes())
    return digest.hexdigest()


def write_parquet_shards(folder: str | os.PathLike, images: np.ndarray, labels: np.ndarray,
                         num_shards: int = 4, num_classes: int | None = None) -> list[Path]:
    """Write ``images`` (uint8, N×H×W[×C]) and ``labels`` as ``num_shards`` Parquet files.

    Columns: ``id`` (the row's position, to count repeats and losses), ``image`` (a
    ``datasets.Image()`` feature, stored as PNG bytes) and ``label`` (a ``ClassLabel``). Files are
    named ``train-0000k-of-0000n.parquet`` as on the Hub. The folder is built under a
    temporary name and renamed at the end (``helpers.atomic.atomic_folder``). A folder this
    function wrote (its ``manifest.json`` matches the files) is returned as it is when it holds
    the same data, and rebuilt when it does not; any other non-empty folder raises
    FileExistsError, and nothing in it is touched.
    """
    from datasets import ClassLabel, Dataset, Features, Image, Value

    folder = Path(folder)
    images, labels = np.asarray(images), np.asarray(labels)
    fingerprint = _fingerprint(images, labels, num_shards, num_classes)
    manifest = _manifest(folder) if folder.is_dir() else None
    if manifest is not None and manifest.get("fingerprint") == fingerprint:
        return sorted(folder / name for name in manifest["files"])
    if manifest is not None:  # written here for other data: remove exactly what it lists
        for name in [*manifest["files"], MANIFEST]:
            (folder / name).unlink()
    if images.dtype != np.uint8 or len(images) != len(labels) or len(images) < num_shards:
        raise ValueError(f"need uint8 images and as many labels, at least {num_shards} rows: "
                         f"got {images.dtype} {images.shape} and {labels.shape} labels")
    features = Features({"id": Value("int64"), "image": Image(), "label": ClassLabel(
        num_classes=int(num_classes or labels.max() + 1))})
    table = Dataset.from_dict({"id": np.arange(len(images)),
                               "image": [{"bytes": _png(a), "path": None} for a in images],
                               "label": labels.astype("int64")}, features=features)
    sizes = {}
    with atomic_folder(folder) as tmp:
        for k in range(num_shards):
            name = f"train-{k:05d}-of-{num_shards:05d}.parquet"
            table.shard(num_shards, k, contiguous=True).to_parquet(tmp / name)
            sizes[name] = (tmp / name).stat().st_size
        (tmp / MANIFEST).write_text(json.dumps({"files": sizes, "fingerprint": fingerprint}))
    return sorted(folder / name for name in sizes)


def load_parquet(files: Sequence[str | os.PathLike], cache_dir: str | os.PathLike,
                 streaming: bool = False, **kwargs):
    """``load_dataset("parquet", ...)``'s train split of ``files``, cached in ``cache_dir``.

    Map-style (``streaming=False``), the Parquet files are converted once into an Arrow file
    under ``cache_dir`` that the dataset memory-maps; ``streaming=True`` gives an
    ``IterableDataset`` that reads the Parquet files as it goes. A file that is missing or
    not Parquet (a truncated copy) raises an error that names it.
    """
    from datasets import load_dataset

    files = [str(f) for f in files]
    for f in files:  # check here, so that the error names the file
        _check_parquet(Path(f))
    return load_dataset("parquet", data_files={"train": files}, split="train",
                        cache_dir=str(cache_dir), streaming=streaming, **kwargs)


def _check_parquet(path: Path) -> None:
    """FileNotFoundError or ValueError naming ``path`` unless Parquet can read its footer."""
    import pyarrow.parquet as pq

    if not path.is_file():
        raise FileNotFoundError(f"Parquet file {path} does not exist")
    try:
        pq.ParquetFile(path).metadata  # noqa: B018 (reads and checks the footer)
    except Exception as e:  # pyarrow raises ArrowInvalid or OSError by version
        raise ValueError(f"{path} is not a readable Parquet file (truncated?): {e}") from e


class HFBatches(keras.utils.PyDataset):
    """Batches ``(x, y)`` (or ``x``) of the columns ``x`` and ``y`` of a map-style dataset.

    Args:
        dataset: a ``datasets.Dataset`` (memory-mapped from its Arrow cache file, or in memory).
        x, y: column names; ``y=None`` serves ``x`` alone.
        batch_size: rows per batch; ``len()`` rounds up, so no row is dropped.
        shuffle: a new order every epoch, a function of ``(seed, epoch)``
            (``helpers.generator.epoch_order``); ``False`` keeps the dataset's order.
        seed: makes the order reproducible; ``None`` draws one.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``PyDataset``.

    Rows are read with ``dataset.with_format("numpy")[rows]``: ``datasets`` gathers them as
    one-row slices of the mapped table put together (``Table.fast_gather``, datasets/table.py;
    it avoids ``pyarrow.Table.take``), and decodes an ``Image()`` column to uint8 arrays. A
    memory-mapped dataset pickles as its file's path, so workers under ``spawn`` map the file
    again instead of receiving a copy. Raises KeyError naming the missing column and the
    dataset's columns.

    In ``fit()``: pass ``shuffle=False`` (otherwise Keras serves the batches of each epoch in
    an order of its own, drawn from Python's ``random``), and know that ``fit()`` calls
    ``on_epoch_end`` once before its first epoch, so that epoch serves ``(seed, 1)``'s order.
    ``helpers.fit_resumable`` sets ``set_epoch(epoch, start_batch)`` at every epoch's start
    and resumes at the exact batch.
    """

    def __init__(self, dataset: datasets.Dataset, x: str = "image", y: str | None = "label",
                 batch_size: int = 32, shuffle: bool = True, seed: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        columns = [x] if y is None else [x, y]
        for name in columns:
            if name not in dataset.column_names:
                raise KeyError(f"the dataset has no column {name!r} (its columns: "
                               f"{dataset.column_names})")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
                batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if len(dataset) == 0:
            raise ValueError("the dataset has no rows to serve")
        self.data = dataset.select_columns(columns).with_format("numpy")
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        self.shuffle, self.seed = bool(shuffle), resolve_seed(seed)
        self.set_epoch(0)

    @property
    def batches_per_epoch(self) -> int:
        """Batches in a whole epoch (rounded up: no row dropped)."""
        return math.ceil(len(self.data) / self.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Serve epoch ``epoch``'s order (0 is the first) from its batch ``start_batch`` on:
        until the next epoch, ``len()`` counts the batches left and ``self[i]`` is the
        epoch's batch ``start_batch + i`` (the contract ``helpers.fit_resumable`` needs)."""
        order = epoch_order(len(self.data), self.seed, epoch, self.shuffle)  # checks epoch
        self.start_batch = check_start_batch(start_batch, self.batches_per_epoch)
        self.indexes = order[self.start_batch * self.batch_size:]
        self.epoch = int(epoch)

    def on_epoch_end(self) -> None:
        """Move to the next epoch's order (``fit()`` calls it after every epoch)."""
        self.set_epoch(self.epoch + 1)

    def __getitem__(self, index: int):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not (
                0 <= index < len(self)):
            raise IndexError(f"batch index {index!r} out of range for {len(self)} batches")
        rows = self.data[self.indexes[index * self.batch_size:(index + 1) * self.batch_size]]
        return rows[self.x] if self.y is None else (rows[self.x], rows[self.y])


def stream_batches(stream, x: str = "image", y: str | None = "label", batch_size: int = 32,
                   ids: list | None = None, id_column: str = "id", epochs: int = 1,
                   states: dict | None = None) -> Iterator:
    """Yield ``(x, y)`` batches of a streaming ``IterableDataset``, ``epochs`` passes through.

    ``fit()`` takes a Python generator on every backend, not an ``IterableDataset`` object.
    Pass ``stream.with_format("numpy")`` for numpy batches, and keep that object: it is the
    one whose ``state_dict()`` follows this iteration (``with_format`` returns a copy).

    A stream is one pass: for ``fit(epochs=E)`` pass ``epochs=E`` and
    ``fit(steps_per_epoch=...)`` (a generator has no length, so Keras cannot tell where an
    epoch ends). Pass ``k`` runs at the stream's epoch ``stream.epoch + k``: ``set_epoch`` is
    called before each pass, which gives a shuffled stream a new order every epoch.
    When ``ids`` is a list, the ``id_column`` of every row served is appended to it. When
    ``states`` is a dict, ``states[n]`` is the stream's ``state_dict()`` after the ``n``-th
    batch this generator served (1 is the first): ``StreamPosition`` reads it.
    """
    first, served = stream.epoch, 0
    for k in range(epochs):
        stream.set_epoch(first + k)
        for batch in stream.iter(batch_size=batch_size):
            if ids is not None:
                ids.extend(int(i) for i in batch[id_column])
            served += 1
            if states is not None:
                states[served] = stream.state_dict()
            yield batch[x] if y is None else (batch[x], batch[y])


class StreamPosition(keras.callbacks.Callback):
    """Keeps ``state``: the stream's ``state_dict()`` after the batches ``fit()`` has trained.

    ``fit()`` reads a generator ahead of training (Keras 3.15 peeks at 2 batches for their
    shapes, ``peek_and_restore`` in generator_data_adapter.py, and the TensorFlow backend
    prefetches in a thread), so ``stream.state_dict()`` taken in a callback can be ahead of
    training, and a resume from it loses the batches read but not trained. Give
    ``stream_batches`` the same ``states`` dict: after each trained batch, ``state`` is the
    one saved when that batch was served, and older ones are dropped. Save ``state`` with
    the model (a dict of numbers and strings); to resume, ``set_epoch(state["epoch"])`` then
    ``load_state_dict(state)`` on a new stream. ``trained`` counts the batches trained.
    """

    def __init__(self, states: dict) -> None:
        super().__init__()
        self.states, self.trained, self.state = states, 0, None
        self._before = 0  # batches trained before the current epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._before = self.trained

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.trained = self._before + batch + 1  # batch: the last step run (steps_per_execution)
        self.state = self.states.pop(self.trained)
        for n in [n for n in self.states if n < self.trained]:
            del self.states[n]


def resume_counts(reference: Sequence[int], resumed: Sequence[int]) -> dict[str, int]:
    """Compare a resumed epoch's sample ids with an uninterrupted epoch's.

    Returns ``same_position`` (ids equal at the same place), ``repeated`` (extra copies of ids
    served more than once) and ``lost`` (ids of the reference never served).
    """
    reference, resumed = [int(i) for i in reference], [int(i) for i in resumed]
    same = sum(a == b for a, b in zip(reference, resumed, strict=False))
    return {"served": len(resumed), "same_position": same,
            "repeated": len(resumed) - len(set(resumed)),
            "lost": len(set(reference) - set(resumed))}
