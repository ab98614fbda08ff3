"""The measurements of notebook 07 and ``benchmarks/``, written once.

Memory: ``memory_study`` trains one epoch from in-memory float32 arrays, or from
``DataGenerator``, each in a fresh Python process (``python -m helpers.study MODE N DIR``)
so memory held by earlier work cannot hide what a run adds, and returns the peak resident
memory of each. Throughput: ``best_rates`` times readers over full passes, and
``best_epoch_seconds`` times ``fit()`` epochs; both interleave their rounds so a busy moment
of the machine hits every contender alike, and keep each one's best. ``volume_tf_data`` is
notebook 06's ``tf.data`` reader of per-sample ``.npy`` files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

NPY_HEADER = 128
"""Header bytes of the ``.npy`` files ``np.save`` writes for these small arrays."""


def train_one_epoch_peak(mode: str, n: int, data_dir: str | Path) -> float:
    """Peak RSS (MiB) while training one epoch on samples ``id-1`` .. ``id-n``, in this process.

    ``mode="arrays"`` loads them all into one float32 array and calls ``fit(x, y)``;
    ``mode="generator"`` calls ``fit(DataGenerator(...))``. The model is tiny (one strided
    convolution): the figure is about the data, not the network.
    """
    import keras

    from .generator import DataGenerator
    from .memory import PeakMemory
    from .volumes import load_partition

    if mode not in ("arrays", "generator"):
        raise ValueError(f"mode must be 'arrays' or 'generator', got {mode!r}")
    manifest = json.loads((Path(data_dir) / "dataset.json").read_text())
    dim, n_classes = tuple(manifest["dim"]), manifest["n_classes"]
    _, labels = load_partition(data_dir)
    ids = [f"id-{i}" for i in range(1, n + 1)]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((*dim, 1)),
        keras.layers.Conv3D(4, 3, strides=4, activation="relu"),
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
    done = subprocess.run([sys.executable, "-m", "helpers.study", mode, str(n), str(data_dir)],
                          capture_output=True, text=True, env=env)
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


def read_files(paths: Iterable[str | Path]) -> None:
    """Open each file and read its bytes, nothing else: the ceiling of per-file readers."""
    for p in paths:
        with open(p, "rb") as f:
            f.read()


def serve_all(dataset) -> None:
    """Ask a PyDataset for every batch once, in this thread."""
    for i in range(len(dataset)):
        dataset[i]


def best_rates(readers: dict[str, tuple[Callable[[], object], int]],
               rounds: int = 5) -> dict[str, float]:
    """Best samples/s of each reader ``name: (one full pass, samples it serves)``."""
    best = dict.fromkeys(readers, 0.0)
    for _ in range(rounds):
        for name, (one_pass, n) in readers.items():
            start = time.perf_counter()
            one_pass()
            best[name] = max(best[name], n / (time.perf_counter() - start))
    return best


def best_epoch_seconds(runs: dict[str, tuple], rounds: int = 3) -> dict[str, float]:
    """Fastest ``fit()`` epoch, in seconds, of each run ``name: (compiled model, fit kwargs)``.

    Every round trains each model one epoch in turn; a first round, which traces and
    compiles, is not counted, nor the set-up ``fit()`` does before an epoch starts.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    best: dict[str, float] = {}
    for r in range(rounds + 1):
        for name, (model, fit_kwargs) in runs.items():
            timer = EpochTimer()
            model.fit(epochs=1, verbose=0, callbacks=[timer], **fit_kwargs)
            if r:
                best[name] = min(best.get(name, float("inf")), timer.seconds)
    return best


def volume_tf_data(paths: Sequence[str], labels: Sequence[int], batch_size: int,
                   dim: tuple[int, ...] = (32, 32, 32), n_classes: int = 6, seed: int = 0):
    """Notebook 06's ``tf.data`` reader: shuffle paths, parallel read and decode, batch.

    Decodes in TensorFlow (no Python per sample): it skips the 128-byte ``.npy`` header of
    uint8 files of shape ``dim``, and checks first that every file has exactly that size.
    """
    import tensorflow as tf

    sample_bytes = int(np.prod(dim))
    sizes = {os.path.getsize(p) for p in paths}
    if sizes != {NPY_HEADER + sample_bytes}:
        raise ValueError(f"files must all be {NPY_HEADER} + {sample_bytes} bytes "
                         f"(uint8 {dim}); found sizes {sorted(sizes)[:5]}")

    def load(path, label):
        raw = tf.io.read_file(path)
        volume = tf.io.decode_raw(tf.strings.substr(raw, NPY_HEADER, sample_bytes), tf.uint8)
        return tf.reshape(tf.cast(volume, tf.float32), (*dim, 1)), tf.one_hot(label, n_classes)

    return (tf.data.Dataset.from_tensor_slices((list(paths), list(labels)))
            .shuffle(len(paths), seed=seed)
            .map(load, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE))


if __name__ == "__main__":  # python -m helpers.study MODE N DATA_DIR -> one JSON line
    mode, n, data_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print(json.dumps({"mode": mode, "n": n,
                      "peak_mb": train_one_epoch_peak(mode, n, data_dir)}))
