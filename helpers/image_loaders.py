"""The loaders Keras 3's ``fit()`` accepts, built over one image folder, and how to time them.

Notebook 06 and ``benchmarks/image_loaders.py`` compare, on the same files, batch size and
image size:

- ``keras_image_dataset``: ``keras.utils.image_dataset_from_directory`` (tf.data inside);
- ``helpers.images.ImageFolderDataset``: the course's ``PyDataset``, threads or processes;
- ``tf_data_loader``: a hand-written ``tf.data`` pipeline (``decode_image``, parallel
  ``map``, ``prefetch``);
- ``grain_loader``: a Grain ``MapDataset`` (shuffle, map, batch) read by threads or by
  worker processes;
- ``torch_loader``: a PyTorch ``DataLoader`` with ``num_workers`` worker processes, started
  with ``spawn`` (safe beside TensorFlow's and JAX's threads, in Jupyter too) and kept alive
  between epochs (``persistent_workers``).

Every loader decodes the same files with the same labels. TensorFlow, Grain and PyTorch
are imported only when their loader is built, so this module loads on any backend.

Timing: ``loader_rate`` (epochs of a loader alone), ``fit_rate`` (``fit()`` epochs; the model
alone is ``helpers.throughput.measure_model``), ``thread_scaling`` (do two threads keep more
cores busy than one: the GIL test). A ``PyDataset`` is read through Keras' own adapter, which
runs its workers as ``fit()`` does (``helpers.throughput._pydataset_adapter``, the course's
one private Keras import); other loaders run their own workers and are simply iterated.
Memory is the peak anonymous memory of this process and its workers
(``helpers.memory.PeakMemory``: heap and worker copies, not page cache).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from .decode import load_image
from .memory import PeakMemory
from .throughput import _pydataset_adapter

__all__ = [
    "DecodeSample", "ThreadScaling",
    "close_torch_loader", "epoch_batches", "fit_rate", "grain_loader", "keras_image_dataset",
    "loader_rate", "small_image_cnn", "tf_data_loader", "thread_scaling", "torch_loader",
]


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
    Grain and PyTorch loaders (``helpers.decode.load_image`` with ``decoder``, ``"pillow"``
    or ``"opencv"``). Plain data: picklable."""

    def __init__(self, file_paths: Sequence[str], labels: np.ndarray,
                 image_size: tuple[int, int], decoder: str = "pillow") -> None:
        self.file_paths = list(file_paths)
        self.labels = np.asarray(labels, dtype=np.int32)
        self.image_size = tuple(image_size)
        self.decoder = decoder

    def __len__(self) -> int:
        return len(self.file_paths)

    def __call__(self, index: int) -> tuple[np.ndarray, np.int32]:
        image = load_image(self.file_paths[index], self.image_size, decoder=self.decoder)
        image = image.astype(np.float32)
        return image, self.labels[index]

    __getitem__ = __call__  # a map-style dataset for torch's DataLoader


def grain_loader(file_paths: Sequence[str], labels: np.ndarray, image_size: tuple[int, int],
                 batch_size: int, seed: int, threads: int = 0, processes: int = 0,
                 epochs: int | None = 1, decoder: str = "pillow"):
    """A Grain pipeline: ``MapDataset`` of indices, shuffled (differently every epoch when
    repeated), decoded by ``DecodeSample``, batched; read by ``threads`` threads, or by
    ``processes`` worker processes (``mp_prefetch``) when ``processes > 0``.

    ``epochs=None`` repeats forever (give ``fit()`` ``steps_per_epoch``).
    """
    import grain

    decode = DecodeSample(file_paths, labels, image_size, decoder)
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
                 batch_size: int, seed: int, workers: int = 0, context: str = "spawn",
                 decoder: str = "pillow"):
    """A PyTorch ``DataLoader`` over ``DecodeSample``: shuffled with a seeded generator,
    ``workers`` worker processes (0: the main process).

    Workers start with ``context`` (``"spawn"``, on every OS; a ``fork`` of a process running
    TensorFlow's or JAX's threads can deadlock or crash) on the first epoch and stay for the
    next (``persistent_workers``): their start-up (each imports Keras) is paid once.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    extra = ({"multiprocessing_context": context, "persistent_workers": True}
             if workers > 0 else {})
    return torch.utils.data.DataLoader(
        DecodeSample(file_paths, labels, image_size, decoder), batch_size=batch_size,
        shuffle=True, num_workers=workers, generator=generator, **extra)


def close_torch_loader(loader) -> int:
    """Stop a ``DataLoader``'s persistent worker processes now; returns how many were running.

    PyTorch stops them when the loader's iterator is garbage-collected, which in a notebook
    may not happen while the kernel runs: anything still referring to the loader (a Keras
    adapter, a variable of an earlier cell) keeps them alive. PyTorch has no public call for
    this, so it calls the iterator's own ``_shutdown_workers``, the one its ``__del__``
    runs; the loader starts new workers if it is iterated again.

    A worker may die by a signal while it exits (seen here: a spawned worker that had
    imported TensorFlow aborted during its interpreter's shutdown). PyTorch's SIGCHLD handler
    then raises ``RuntimeError: ... killed by signal`` out of ``_shutdown_workers``, after its
    ``finally`` block has already terminated and unregistered every worker: the workers are
    stopped, which is what was asked, so that one error is not passed on.
    """
    iterator = getattr(loader, "_iterator", None)
    running = sum(w.is_alive() for w in getattr(iterator, "_workers", []))
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        try:
            iterator._shutdown_workers()
        except RuntimeError as err:
            if "killed by signal" not in str(err):
                raise
        loader._iterator = None
    return running


# ---------------------------------------------------------------------------------------
# Measuring

def epoch_batches(loader) -> Iterator:
    """One epoch of ``loader``'s batches as NumPy arrays, read the way ``fit()`` reads it.

    A ``PyDataset`` goes through Keras' own adapter, which runs its workers; tf.data, Grain
    and PyTorch loaders run their own workers when iterated, so they are iterated directly
    and each batch converted to NumPy, as Keras' adapters for them do.
    """
    if isinstance(loader, keras.utils.PyDataset):
        adapter = _pydataset_adapter(loader)
        adapter.on_epoch_begin()
        try:
            yield from adapter.get_numpy_iterator()
        finally:
            adapter.on_epoch_end()
    else:
        for batch in loader:
            yield keras.tree.map_structure(np.asarray, tuple(batch))


def loader_rate(make: Callable[[], object], rounds: int = 2,
                reuse: bool = False) -> tuple[float, int]:
    """Best samples/s over ``rounds`` epochs of a loader, and the peak anonymous memory
    (bytes, this process and its workers) seen meanwhile.

    Each round reads a fresh loader from ``make()`` (worker start-up included, as a
    ``PyDataset`` starts its pool every epoch); with ``reuse``, one loader serves a first,
    untimed epoch (its persistent workers start) and then the ``rounds`` timed ones.
    """
    best, peak = 0.0, 0
    loader = make() if reuse else None
    if reuse:
        for _ in epoch_batches(loader):
            pass
    for _ in range(rounds):
        current = loader if reuse else make()
        with PeakMemory(include_children=True, interval=0.02) as mem:
            start, n = time.perf_counter(), 0
            for batch in epoch_batches(current):
                n += len(batch[0])
            best = max(best, n / (time.perf_counter() - start))
        peak = max(peak, mem.anon_peak)
        del current
    return best, peak


def fit_rate(model: keras.Model, make: Callable[[], object], n_samples: int,
             batch_size: int, rounds: int = 2, warmup: bool = True,
             reuse: bool = False) -> float:
    """Best samples/s of one ``fit()`` epoch over ``rounds`` epochs, each on a fresh loader
    (with ``reuse``, all on one, after an untimed epoch that starts its persistent workers).

    ``warmup``: one untimed epoch first (compiles the train step). ``steps_per_epoch`` is
    given, so a loader of unknown length (Grain) ends its epoch without a warning.
    """
    steps = math.ceil(n_samples / batch_size)
    kwargs = {"epochs": 1, "verbose": 0, "shuffle": False, "steps_per_epoch": steps}
    loader = make() if reuse else None
    if warmup or reuse:
        model.fit(loader if reuse else make(), **kwargs)
    best = 0.0
    for _ in range(rounds):
        loader = loader if reuse else make()
        start = time.perf_counter()
        model.fit(loader, **kwargs)
        best = max(best, n_samples / (time.perf_counter() - start))
    return best


@dataclass(frozen=True)
class ThreadScaling:
    """Best wall times of one work by 1 and 2 threads; cores busy (CPU / wall time) in each."""

    wall_1: float
    wall_2: float
    busy_1: float
    busy_2: float

    @property
    def speedup(self) -> float:
        return self.wall_1 / self.wall_2

    def released_fraction(self, holds: ThreadScaling, releases: ThreadScaling) -> float | None:
        """Where this work's 2-thread core use lies between work known to hold the GIL (0)
        and work known to release it (1), measured alike; None when those two did not
        differ (no spare core at that moment: the test says nothing)."""
        span = releases.busy_2 - holds.busy_2
        return None if span < 0.3 else (self.busy_2 - holds.busy_2) / span


def thread_scaling(work: Callable[[object], object], items: Sequence,
                   rounds: int = 3) -> ThreadScaling:
    """Run ``work`` on every item with 1 thread, then 2 threads; best of ``rounds`` each.

    Code that holds the GIL keeps about one core busy however many threads run it; code
    that releases it can keep two busy, if two are free: compare with work known to hold
    it and work known to release it (``ThreadScaling.released_fraction``).
    """
    out = []
    for n_threads in (1, 2):
        best = (math.inf, 0.0)
        with ThreadPoolExecutor(n_threads) as pool:
            for _ in range(rounds):
                start, cpu = time.perf_counter(), time.process_time()
                list(pool.map(work, items))
                wall = time.perf_counter() - start
                if wall < best[0]:
                    best = (wall, (time.process_time() - cpu) / wall)
        out.append(best)
    return ThreadScaling(out[0][0], out[1][0], out[0][1], out[1][1])


def small_image_cnn(image_size: tuple[int, int], n_classes: int,
                    learning_rate: float = 2e-3) -> keras.Model:
    """A small CNN for 0-255 RGB images (rescaled inside), compiled for int labels.

    It averages 4x4 pixel blocks first: 16x fewer pixels for the convolutions, which keeps
    a training step cheap on the CPU on all three backends (JAX's and PyTorch's CPU
    convolutions cost several times TensorFlow's at full resolution).
    """
    model = keras.Sequential([
        keras.Input((*image_size, 3)),
        keras.layers.AveragePooling2D(4),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(64, 3, strides=2, activation="relu"),
        keras.layers.GlobalMaxPooling2D(),  # "is the shape anywhere?": max, not mean
        keras.layers.Dense(n_classes, activation="softmax", dtype="float32"),
    ], name="small_image_cnn")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

