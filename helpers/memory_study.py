"""Peak memory of one training epoch: from in-memory arrays, DataGenerator, or a packed reader.

Notebook 09 writes one measurement by hand first; ``memory_study`` repeats it for every mode
and dataset size. Each run trains in a fresh Python process (``python -m
helpers.memory_study MODE N DATA_DIR [PACKED_DIR]``), so memory held by earlier work cannot
hide what a run adds. A run reports two peaks of the whole process (``helpers.memory``):
anonymous memory, what it really holds (RssAnon, or USS where ``/proc`` is missing), and
RSS, which also counts pages of memory-mapped files it touched. Notebook 09 and
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
from .packed import PackedDataGenerator
from .volumes import load_partition

__all__ = ["MODES", "memory_study", "peak_training_memory", "train_one_epoch_peak"]

MODES = ("arrays", "generator", "packed")


def train_one_epoch_peak(mode: str, n: int, data_dir: str | Path,
                         packed_dir: str | Path | None = None) -> dict[str, float]:
    """Peaks (MiB) while training one epoch on samples ``id-1`` .. ``id-n``, in this process.

    ``mode="arrays"`` loads them all into one float32 array and calls ``fit(x, y)``;
    ``"generator"`` calls ``fit(DataGenerator(...))`` on ``data_dir``; ``"packed"`` calls
    ``fit(PackedDataGenerator(...))`` on ``packed_dir`` (a ``pack_volume_dataset`` folder).
    Returns ``{"anon_mb": peak anonymous memory, "rss_mb": peak RSS}`` of the process. The
    model is tiny (one small convolution after 4x4x4 average pooling): the figure is about
    the data, not the network. Pooling first makes a step cheap on every backend's CPU.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "packed" and packed_dir is None:
        raise ValueError("mode 'packed' needs packed_dir (a pack_volume_dataset folder)")
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
    common = dict(batch_size=32, dim=dim, n_classes=n_classes, seed=0)
    with PeakMemory() as mem:
        if mode == "arrays":
            x = np.empty((n, *dim, 1), dtype=np.float32)
            for k, id_ in enumerate(ids):
                x[k, ..., 0] = np.load(Path(data_dir) / f"{id_}.npy")
            y = keras.utils.to_categorical([labels[i] for i in ids], n_classes)
            model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        elif mode == "generator":
            model.fit(DataGenerator(ids, labels, data_dir, **common), epochs=1, verbose=0)
        else:
            model.fit(PackedDataGenerator(ids, labels, packed_dir, **common), epochs=1,
                      verbose=0)
    return {"anon_mb": mem.anon_peak_mb, "rss_mb": mem.peak_mb}


def peak_training_memory(mode: str, n: int, data_dir: str | Path,
                         packed_dir: str | Path | None = None) -> dict[str, float]:
    """``train_one_epoch_peak`` run in a fresh Python process (the GPU hidden: the study is
    about the machine's memory); returns its ``{"anon_mb": ..., "rss_mb": ...}``."""
    env = os.environ | {"CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "helpers.memory_study", mode, str(n), str(data_dir)]
    if packed_dir is not None:
        command.append(str(packed_dir))
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"memory run {mode}, n={n} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_study(sizes: Sequence[int], data_dir: str | Path,
                 packed_dir: str | Path | None = None,
                 parallel: int = 2) -> dict[tuple[str, int], dict[str, float]]:
    """``{(mode, n): {"anon_mb": ..., "rss_mb": ...}}`` for every size, in fresh processes,
    ``parallel`` at a time (each process's memory is its own). Modes: ``"arrays"`` and
    ``"generator"``, plus ``"packed"`` when ``packed_dir`` is given."""
    modes = MODES if packed_dir is not None else MODES[:2]
    runs = [(mode, n) for n in sizes for mode in modes]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        peaks = pool.map(lambda run: peak_training_memory(*run, data_dir, packed_dir), runs)
        return dict(zip(runs, peaks, strict=True))


if __name__ == "__main__":  # python -m helpers.memory_study MODE N DATA_DIR [PACKED_DIR]
    mode, n, data_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    packed_dir = sys.argv[4] if len(sys.argv) > 4 else None
    print(json.dumps(train_one_epoch_peak(mode, n, data_dir, packed_dir)))
