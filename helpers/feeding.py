"""Keeping the accelerator fed: augmentation inside the model, data resident on the device.

Notebook 07 climbs a ladder of input pipelines; this module holds the rungs that are model
code rather than loaders (the decode-once cache is ``helpers.image_cache``):

- ``RandomShift``: a random shift (pad by reflection, crop back at a random offset) and a
  left-right flip per image, in ``keras.ops`` with fixed shapes. Put first in a model it runs
  where the model runs (on the GPU when there is one), in ``fit()`` only: ``predict()`` and
  ``evaluate()`` call the model with ``training=False``, which passes images through. Unlike
  Keras' ``RandomZoom``, ``RandomCrop``, ``RandomTranslation`` and ``RandomRotation`` (whose
  ``supports_jit`` is False in Keras 3.15), it leaves the model compilable: one of those in a
  model turns ``jit_compile`` off for the whole train step (JAX then runs it op by op;
  TensorFlow on a GPU without XLA).
- ``augmentation_layers``: the Keras layers (centred zoom-in and flip), for comparison.
- ``ResidentImages`` and ``IndexBatches``: the whole uint8 image array lives on the device as
  a non-trainable variable; the loader sends only each batch's row numbers and labels, and
  the model gathers its batch there. No pixels cross from host to device after the first copy.
- ``loader_cpu_seconds``: the CPU time a loader spends per batch (``time.thread_time``, so
  other processes on the machine do not inflate it), the figure the ladder lowers.

It needs numpy, Keras, the standard library and, beside it, ``generator.py`` (the epoch
order every course generator shares): copy the two files.
"""

from __future__ import annotations

import math
import statistics
import time

import keras
import numpy as np
from keras import ops

from .generator import epoch_order

__all__ = ["IndexBatches", "RandomShift", "ResidentImages", "augmentation_layers",
           "loader_cpu_seconds"]


@keras.saving.register_keras_serializable(package="course")
class RandomShift(keras.layers.Layer):
    """Shift each image by up to ``fraction`` of its side (reflected border) and flip half
    of them left-right; identity with ``training=False``. Keras ops with fixed shapes only,
    so a model holding it can still be jit-compiled (XLA)."""

    def __init__(self, fraction: float = 0.1, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 <= fraction < 0.5:
            raise ValueError(f"fraction must be in [0, 0.5), got {fraction!r}")
        self.fraction, self.seed = float(fraction), seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        b, h, w = ops.shape(images)[0], images.shape[1], images.shape[2]
        ph, pw = round(self.fraction * h), round(self.fraction * w)
        padded = ops.pad(images, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode="reflect")
        dy = keras.random.randint((b, 1), 0, 2 * ph + 1, seed=self.generator)
        dx = keras.random.randint((b, 1), 0, 2 * pw + 1, seed=self.generator)
        rows = ops.expand_dims(ops.expand_dims(dy + ops.arange(h), -1), -1)  # (b, h, 1, 1)
        x = ops.take_along_axis(padded, ops.broadcast_to(
            rows, (b, h, w + 2 * pw, images.shape[3])), axis=1)
        cols = ops.expand_dims(ops.expand_dims(dx + ops.arange(w), 1), -1)  # (b, 1, w, 1)
        x = ops.take_along_axis(x, ops.broadcast_to(cols, (b, h, w, images.shape[3])), axis=2)
        flip = keras.random.uniform((b, 1, 1, 1), seed=self.generator) < 0.5
        return ops.where(flip, ops.flip(x, axis=2), x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return super().get_config() | {"fraction": self.fraction, "seed": self.seed}


def augmentation_layers(seed: int | None = None, zoom: float = 0.2) -> keras.Sequential:
    """Keras' own layers: a centred zoom-in of up to ``zoom`` of each side, then a left-right
    flip, per image. Active in ``fit()`` only; identity with ``training=False``. RandomZoom
    does not support jit: a model holding it trains with ``jit_compile=False``.
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
        order = epoch_order(len(self.labels), self.seed, self.epoch, self.shuffle)
        self.rows = order.astype(np.int32)

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
