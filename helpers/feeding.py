"""Keeping the accelerator fed: augmentation inside the model, data resident on the device.

Notebook 07 climbs a ladder of input pipelines; this module holds the rungs that are model
code rather than loaders (the decode-once cache is ``helpers.image_cache``):

- ``augmentation_layers``: random zoom-in and left-right flip as Keras preprocessing layers.
  Put first in a model, they run where the model runs (on the GPU when there is one), in
  ``fit()`` only: ``predict()`` and ``evaluate()`` call the model with ``training=False``,
  which makes them pass images through unchanged.
- ``ResidentImages`` and ``IndexBatches``: the whole uint8 image array lives on the device as
  a non-trainable variable; the loader sends only each batch's row numbers and labels, and
  the model gathers its batch there. No pixels cross from host to device after the first copy.
- ``loader_cpu_seconds``: the CPU time a loader spends per batch (``time.thread_time``, so
  other processes on the machine do not inflate it), the figure the ladder lowers.

It needs numpy, Keras and the standard library: copy it as is.
"""

from __future__ import annotations

import math
import statistics
import time

import keras
import numpy as np
from keras import ops

__all__ = ["IndexBatches", "ResidentImages", "augmentation_layers", "loader_cpu_seconds"]


def augmentation_layers(seed: int | None = None, zoom: float = 0.2) -> keras.Sequential:
    """A random zoom-in of up to ``zoom`` of each side, then a left-right flip, per image.

    The in-model counterpart of ``ImageFolderDataset(augment=True)``'s crop (80-100 % of
    each side) and flip. Active in ``fit()`` only; identity with ``training=False``.
    """
    return keras.Sequential([
        keras.layers.RandomZoom((-zoom, 0.0), (-zoom, 0.0), seed=seed),
        keras.layers.RandomFlip("horizontal", seed=None if seed is None else seed + 1),
    ], name="augmentation")


@keras.saving.register_keras_serializable(package="course")
class ResidentImages(keras.layers.Layer):
    """Holds a whole uint8 image array on the device; ``call(rows)`` gathers one batch.

    The array is a non-trainable variable (the backend puts it where the model lives, once);
    the layer's input is a batch of row numbers (int32 ``(b,)``) and its output the rows'
    images as float32 ``(b, height, width, channels)`` in ``[0, 255]``. The variable is part
    of the model's weights: a saved model holds the dataset too.
    """

    def __init__(self, images: np.ndarray | None = None, shape: tuple[int, ...] | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if images is not None:
            images = np.asarray(images)
            if images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(f"images must be uint8 (N, height, width, channels), got "
                                 f"{images.dtype} {images.shape}")
            shape = images.shape
        if shape is None:
            raise ValueError("pass images (or, when a saved model is loaded, their shape)")
        self.table_shape = tuple(int(s) for s in shape)
        self.table = self.add_weight(shape=self.table_shape, dtype="uint8", trainable=False,
                                     initializer="zeros", name="images")
        if images is not None:
            self.table.assign(images)

    def call(self, rows):
        return ops.cast(ops.take(self.table, ops.cast(rows, "int32"), axis=0), "float32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.table_shape[1:])

    def get_config(self) -> dict:
        return super().get_config() | {"shape": self.table_shape}


class IndexBatches(keras.utils.PyDataset):
    """Batches ``(rows, y)``: int32 row numbers into a ``ResidentImages`` table, and labels.

    Every row once per epoch, in an order drawn from ``(seed, epoch)``; the last batch may
    be shorter. A batch costs the host a slice of a permutation: no pixels.
    """

    def __init__(self, labels: np.ndarray, batch_size: int = 256, shuffle: bool = True,
                 seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.labels = np.asarray(labels)
        self.batch_size, self.shuffle, self.seed = int(batch_size), shuffle, int(seed)
        self.epoch = 0
        self._order()

    def _order(self) -> None:
        n = len(self.labels)
        self.rows = (np.random.default_rng([self.seed, self.epoch]).permutation(n)
                     if self.shuffle else np.arange(n)).astype(np.int32)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        rows = self.rows[index * self.batch_size:(index + 1) * self.batch_size]
        return rows, self.labels[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order()


def loader_cpu_seconds(dataset, batches: int | None = None, warmup: int = 1,
                       rounds: int = 3) -> dict:
    """CPU seconds per batch that ``dataset[i]`` costs, in the calling thread.

    Batches ``warmup .. warmup + batches`` are asked for in turn, ``rounds`` times; each
    round gives CPU seconds per batch (``time.thread_time``: this thread's CPU only, so a
    busy machine does not inflate it) and wall seconds per batch. Returns
    ``{"cpu": [...], "wall": [...], "samples": samples per batch, "median_cpu": ...}``;
    images per CPU-second = ``samples / median_cpu``: the rate of one core.
    """
    n = len(dataset)
    if batches is None:
        batches = n - warmup
    if not 0 < batches <= n - warmup:
        raise ValueError(f"batches must be in 1..{n - warmup} for {n} batches and "
                         f"warmup={warmup}, got {batches!r}")
    for i in range(warmup):
        dataset[i]
    cpu, wall, samples = [], [], 0
    for _ in range(rounds):
        c0, w0, samples = time.thread_time(), time.perf_counter(), 0
        for i in range(warmup, warmup + batches):
            batch = dataset[i]
            samples += len(batch[0] if isinstance(batch, tuple) else batch)
        cpu.append((time.thread_time() - c0) / batches)
        wall.append((time.perf_counter() - w0) / batches)
    return {"cpu": cpu, "wall": wall, "samples": samples / batches,
            "median_cpu": statistics.median(cpu)}
