"""Peak memory of one training epoch: all samples as in-memory arrays, or fed by DataGenerator.

``memory_study`` runs each training in a fresh Python process (``python -m
helpers.memory_study MODE N DIR``), so memory held by earlier work cannot hide what a run
adds, and returns the peak resident memory of each. Notebook 07 and
``benchmarks/memory_and_throughput.py`` draw their memory figures from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np

from .generator import DataGenerator
from .memory import PeakMemory
from .volumes import load_partition

__all__ = ["memory_study", "peak_training_memory", "train_one_epoch_peak"]


def train_one_epoch_peak(mode: str, n: int, data_dir: str | Path) -> float:
    """Peak RSS (MiB) while training one epoch on samples ``id-1`` .. ``id-n``, in this process.

    ``mode="arrays"`` loads them all into one float32 array and calls ``fit(x, y)``;
    ``mode="generator"`` calls ``fit(DataGenerator(...))``. The model is tiny (one small
    convolution after 4x4x4 average pooling): the figure is about the data, not the
    network. Pooling first, not a strided convolution: on CPU that made a step several
    times cheaper on TensorFlow and JAX, and somewhat cheaper on PyTorch.
    """
    if mode not in ("arrays", "generator"):
        raise ValueError(f"mode must be 'arrays' or 'generator', got {mode!r}")
    manifest = json.loads((Path(data_dir) / "dataset.json").read_text())
    dim, n_classes = tuple(manifest["dim"]), manifest["n_classes"]
    _, labels = load_partition(data_dir)
    ids = [f"id-{i}" for i in range(1, n + 1)]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((*dim, 1)),
        keras.layers.AveragePooling3D(4),
        keras.layers.Conv3D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling3D(),
        keras.layers.Dense(n_classes, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with PeakMemory() as mem:
        if mode == "arrays":
            x = np.empty((n, *dim, 1), dtype=np.float32)
            for k, id_ in enumerate(ids):
                x[k, ..., 0] = np.load(Path(data_dir) / f"{id_}.npy")
            y = keras.utils.to_categorical([labels[i] for i in ids], n_classes)
            model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        else:
            gen = DataGenerator(ids, labels, data_dir, batch_size=32, dim=dim,
                                n_classes=n_classes, seed=0)
            model.fit(gen, epochs=1, verbose=0)
    return mem.peak_mb


def peak_training_memory(mode: str, n: int, data_dir: str | Path) -> float:
    """``train_one_epoch_peak`` run in a fresh Python process (the GPU hidden: the study is
    about the machine's memory); returns its peak RSS in MiB."""
    env = os.environ | {"CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "helpers.memory_study", mode, str(n), str(data_dir)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"memory run {mode}, n={n} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]


def memory_study(sizes: Sequence[int], data_dir: str | Path,
                 parallel: int = 2) -> dict[tuple[str, int], float]:
    """``{(mode, n): peak MiB}`` for both modes and every size, ``parallel`` runs at a time
    (each process's RSS is its own, so runs side by side do not change the figures)."""
    runs = [(mode, n) for n in sizes for mode in ("arrays", "generator")]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        peaks = pool.map(lambda run: peak_training_memory(*run, data_dir), runs)
        return dict(zip(runs, peaks, strict=True))


if __name__ == "__main__":  # python -m helpers.memory_study MODE N DATA_DIR -> one JSON line
    mode, n, data_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print(json.dumps({"mode": mode, "n": n,
                      "peak_mb": train_one_epoch_peak(mode, n, data_dir)}))
