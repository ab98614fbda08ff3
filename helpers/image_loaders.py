"""The loaders Keras 3's ``fit()`` accepts, built over one image folder, and how to time them.

Notebook 08 and ``benchmarks/image_loaders.py`` compare, on the same files, batch size and
image size:

- ``keras_image_dataset``: ``keras.utils.image_dataset_from_directory`` (tf.data inside);
- ``helpers.images.ImageFolderDataset``: the course's ``PyDataset``, threads or processes;
- ``tf_data_loader``: a hand-written ``tf.data`` pipeline (``decode_image``, parallel
  ``map``, ``prefetch``);
- ``grain_loader``: a Grain ``MapDataset`` (shuffle, map, batch) read by threads or by
  worker processes;
- ``torch_loader``: a PyTorch ``DataLoader`` with ``num_workers``.

Every loader decodes the same ``file_paths`` with the same labels, so all serve the same
epoch. TensorFlow, Grain and PyTorch are imported only when their loader is built, so this
module loads on any backend; ``available()`` says which are installed.

Timing: ``loader_rate`` iterates one epoch the way ``fit()`` converts it to NumPy
(``keras.src...get_data_adapter``, a private import, as in ``helpers.throughput``);
``fit_rate`` times one ``fit()`` epoch. Memory: ``PeakAnon`` samples anonymous memory
(``RssAnon``: heap and worker copies; not page cache, not memory-mapped file pages) of this
process and its children.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import psutil

from .images import load_image

MB = 1024**2


def available(name: str) -> bool:
    """True if the package ``name`` (``"tensorflow"``, ``"grain"``, ``"torch"``) is installed."""
    return importlib.util.find_spec(name) is not None


@contextlib.contextmanager
def c_stderr_silenced() -> Iterator[None]:
    """Send this process's file descriptor 2 (C-level stderr) to /dev/null for the block.

    For TensorFlow's C++ start-up notes, printed by every fresh interpreter that imports
    it: Grain's worker processes are started with ``spawn``, so each one re-imports
    TensorFlow (through Keras) and prints them again. Python exceptions raised in those
    workers still reach this process as exceptions.
    """
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# ---------------------------------------------------------------------------------------
# The loaders


def keras_image_dataset(directory: str | Path, image_size: tuple[int, int],
                        batch_size: int, seed: int):
    """``keras.utils.image_dataset_from_directory`` as Keras users first call it."""
    return keras.utils.image_dataset_from_directory(
        directory, image_size=image_size, batch_size=batch_size, shuffle=True, seed=seed,
        verbose=False)


def tf_data_loader(file_paths: Sequence[str], labels: np.ndarray, image_size: tuple[int, int],
                   batch_size: int, seed: int):
    """A ``tf.data`` pipeline: file names shuffled each epoch, decoded and resized in
    parallel (``num_parallel_calls=AUTOTUNE``), batched, prefetched.

    The file list comes in with its labels (rather than from ``list_files``, which gives
    no labels), so this pipeline serves the same samples as the other loaders.
    """
    import tensorflow as tf

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3,
                                   expand_animations=False)
        image = tf.image.resize(image, image_size)  # bilinear, float32
        return tf.ensure_shape(image, (*image_size, 3)), label

    ds = tf.data.Dataset.from_tensor_slices((list(file_paths), np.asarray(labels)))
    ds = ds.shuffle(len(file_paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class DecodeSample:
    """Index -> ``(image float32 (H, W, 3), label int32)``: the per-sample work of the
    Grain and PyTorch loaders (``helpers.images.load_image``). Plain data: picklable."""

    def __init__(self, file_paths: Sequence[str], labels: np.ndarray,
                 image_size: tuple[int, int]) -> None:
        self.file_paths = list(file_paths)
        self.labels = np.asarray(labels, dtype=np.int32)
        self.image_size = tuple(image_size)

    def __len__(self) -> int:
        return len(self.file_paths)

    def __call__(self, index: int) -> tuple[np.ndarray, np.int32]:
        image = load_image(self.file_paths[index], self.image_size).astype(np.float32)
        return image, self.labels[index]

    __getitem__ = __call__  # a map-style dataset for torch's DataLoader


def grain_loader(file_paths: Sequence[str], labels: np.ndarray, image_size: tuple[int, int],
                 batch_size: int, seed: int, threads: int = 0, processes: int = 0,
                 epochs: int | None = 1):
    """A Grain pipeline: ``MapDataset`` of indices, shuffled (differently every epoch when
    repeated), decoded by ``DecodeSample``, batched; read by ``threads`` threads, or by
    ``processes`` worker processes (``mp_prefetch``) when ``processes > 0``.

    ``epochs=None`` repeats forever (give ``fit()`` ``steps_per_epoch``).
    """
    import grain

    decode = DecodeSample(file_paths, labels, image_size)
    ds = grain.MapDataset.range(len(decode)).shuffle(seed=seed)
    if epochs != 1:
        ds = ds.repeat(epochs)
    ds = ds.map(decode).batch(batch_size)
    if processes > 0:
        from absl import flags  # Grain's settings are absl flags, read by its workers

        if not flags.FLAGS.is_parsed():  # outside an absl app: keep every default
            flags.FLAGS.mark_as_parsed()
        options = grain.MultiprocessingOptions(num_workers=processes)
        return ds.to_iter_dataset(grain.ReadOptions(num_threads=max(threads, 1))
                                  ).mp_prefetch(options)
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=threads,
                                                prefetch_buffer_size=4 * batch_size))


def torch_loader(file_paths: Sequence[str], labels: np.ndarray, image_size: tuple[int, int],
                 batch_size: int, seed: int, workers: int = 0):
    """A PyTorch ``DataLoader`` over ``DecodeSample``: shuffled with a seeded generator,
    ``workers`` worker processes (0: the main process)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        DecodeSample(file_paths, labels, image_size), batch_size=batch_size, shuffle=True,
        num_workers=workers, generator=generator, persistent_workers=False)


# ---------------------------------------------------------------------------------------
# Measuring


def anon_bytes(include_children: bool = True) -> int:
    """Anonymous resident memory (``RssAnon``) of this process, plus its workers' USS.

    Unlike RSS, ``RssAnon`` leaves out file pages (page cache of the images read,
    memory-mapped files), which the kernel can reclaim: it is what the loader really holds.
    A forked worker shares its parent's pages until it writes them, so for workers the
    unique set (USS, pages only that process holds) is added, never counting a page twice.
    Where ``/proc`` is missing, this process's USS stands in for ``RssAnon``.
    """
    me = psutil.Process()
    try:
        with open(f"/proc/{me.pid}/status") as f:
            total = next(int(line.split()[1]) * 1024 for line in f
                         if line.startswith("RssAnon:"))
    except (OSError, StopIteration):
        total = me.memory_full_info().uss
    if include_children:
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_full_info().uss
    return total


class PeakAnon:
    """Highest ``anon_bytes()`` seen while the ``with`` block runs (sampled every 20 ms)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self.before = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, anon_bytes())

    def __enter__(self) -> PeakAnon:
        self.before = self.peak = anon_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, anon_bytes())


def _numpy_batches(loader) -> Iterator:
    """One epoch of ``loader`` as ``fit()`` converts it: through Keras' own data adapter."""
    from keras.src.trainers.data_adapters import get_data_adapter

    adapter = get_data_adapter(loader, shuffle=False)
    adapter.on_epoch_begin()
    try:
        yield from adapter.get_numpy_iterator()
    finally:
        adapter.on_epoch_end()


def loader_rate(make: Callable[[], object], rounds: int = 2) -> tuple[float, int]:
    """Best samples/s over ``rounds`` epochs of a fresh loader from ``make()``, and the
    peak anonymous memory (bytes, this process and its workers) seen meanwhile."""
    best, peak = 0.0, 0
    for _ in range(rounds):
        loader = make()
        with PeakAnon() as mem:
            start, n = time.perf_counter(), 0
            for batch in _numpy_batches(loader):
                n += len(batch[0])
            best = max(best, n / (time.perf_counter() - start))
        peak = max(peak, mem.peak)
        del loader
    return best, peak


def fit_rate(model: keras.Model, make: Callable[[], object], n_samples: int,
             batch_size: int, rounds: int = 2, warmup: bool = True) -> float:
    """Best samples/s of one ``fit()`` epoch over ``rounds`` epochs, each on a fresh loader.

    ``warmup`` first runs one untimed epoch (compiles the train step, warms caches).
    ``steps_per_epoch`` is given, so loaders whose length ``fit()`` cannot know (Grain)
    end their epoch without a warning, and ``shuffle=False``: every loader shuffles itself.
    """
    steps = math.ceil(n_samples / batch_size)
    kwargs = {"epochs": 1, "verbose": 0, "shuffle": False, "steps_per_epoch": steps}
    if warmup:
        model.fit(make(), **kwargs)
    best = 0.0
    for _ in range(rounds):
        loader = make()
        start = time.perf_counter()
        model.fit(loader, **kwargs)
        best = max(best, n_samples / (time.perf_counter() - start))
    return best


class _SameBatch(keras.utils.PyDataset):
    """``steps`` times the same in-memory batch: a loader that costs nothing."""

    def __init__(self, x: np.ndarray, y: np.ndarray, steps: int) -> None:
        super().__init__()
        self.x, self.y, self.steps = x, y, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.x, self.y


def model_rate(model: keras.Model, image_size: tuple[int, int], batch_size: int,
               n_samples: int, rounds: int = 2) -> float:
    """Samples/s of ``fit()`` when every batch is one ready in-memory batch: the model
    alone, the speed no loader can beat. Bottleneck ratio = this / a loader's ``fit_rate``.
    """
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, *image_size, 3)).astype(np.float32)
    y = rng.integers(0, model.output_shape[-1], batch_size).astype(np.int32)
    steps = math.ceil(n_samples / batch_size)
    model.fit(_SameBatch(x, y, steps), epochs=1, verbose=0)
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        model.fit(_SameBatch(x, y, steps), epochs=1, verbose=0)
        best = max(best, steps * batch_size / (time.perf_counter() - start))
    return best


def small_image_cnn(image_size: tuple[int, int], n_classes: int,
                    learning_rate: float = 2e-3) -> keras.Model:
    """A small CNN for 0-255 RGB images (rescaled inside), compiled for int labels."""
    model = keras.Sequential([
        keras.Input((*image_size, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(64, 3, strides=2, activation="relu"),
        keras.layers.GlobalMaxPooling2D(),  # "is the shape anywhere?": max, not mean
        keras.layers.Dense(n_classes, activation="softmax", dtype="float32"),
    ], name="small_image_cnn")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


__all__ = [
    "DecodeSample", "MB", "PeakAnon", "anon_bytes", "available", "c_stderr_silenced",
    "fit_rate", "grain_loader",
    "keras_image_dataset", "loader_rate", "model_rate", "small_image_cnn",
    "tf_data_loader", "torch_loader",
]
