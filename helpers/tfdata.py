"""The course's ``tf.data`` reader of per-sample ``.npy`` files (TensorFlow backend only).

Notebook 08 builds its pipeline with it and compares it with ``DataGenerator``; notebook 09
and ``benchmarks/memory_and_throughput.py`` time it. TensorFlow is imported only when
``volume_tf_data`` is called, so the rest of ``helpers`` runs on every Keras backend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["volume_tf_data"]

def volume_tf_data(paths: Sequence[str], labels: Sequence[int], batch_size: int,
                   dim: tuple[int, ...] = (32, 32, 32), n_classes: int = 6,
                   shuffle: bool = True, seed: int = 0):
    """A ``tf.data`` pipeline over per-sample ``.npy`` files: shuffle the paths (a new order
    every epoch), read and decode in parallel, batch, prefetch.

    Decodes in TensorFlow (no Python per sample): it reads the ``.npy`` header of the first
    file with numpy, checks that every file is exactly that header plus the bytes of a uint8
    array of shape ``dim`` (ValueError otherwise), then skips the header of each file.
    Batches are float32 ``(b, *dim, 1)`` and one-hot float32 labels ``(b, n_classes)``.
    """
    import tensorflow as tf

    if not paths:
        raise ValueError("paths is empty: there is nothing to read")
    sample_bytes = int(np.prod(dim))
    with open(paths[0], "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        header = f.tell()
    sizes = {os.path.getsize(p) for p in paths}
    if sizes != {header + sample_bytes}:
        raise ValueError(f"files must all be {header} + {sample_bytes} bytes "
                         f"(uint8 {dim}); found sizes {sorted(sizes)[:5]}")
    if dtype != np.uint8 or tuple(shape) != tuple(dim) or fortran:
        raise ValueError(f"{paths[0]}: holds {dtype} {tuple(shape)} (fortran_order={fortran}), "
                         f"expected uint8 {tuple(dim)} in C order")

    def load(path, label):
        raw = tf.io.read_file(path)
        volume = tf.io.decode_raw(tf.strings.substr(raw, header, sample_bytes), tf.uint8)
        return tf.reshape(tf.cast(volume, tf.float32), (*dim, 1)), tf.one_hot(label, n_classes)

    ds = tf.data.Dataset.from_tensor_slices((list(paths), list(labels)))
    if shuffle:  # the whole list fits in the buffer: it only holds paths
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
