"""The figures of notebook 07: peak memory of training, and samples/s of each reader.

Memory: peak resident memory (RSS) of one training epoch from in-memory float32 arrays vs.
from ``helpers.DataGenerator``, for datasets of growing size, each run in a fresh process
(this script re-invoked with ``--child``) so earlier allocations cannot hide what a run
adds. Goal: the generator's peak grows by at most 10% from the smallest size to the largest.

Throughput: samples/s of readers alone over the same files (page cache warm), best of
several interleaved rounds, against the ceiling of reading each per-sample file's bytes:
the article's generator (``helpers.article``), ``helpers.DataGenerator``,
``helpers.packed.PackedDataGenerator`` (memory-mapped shards) and a ``tf.data`` pipeline.

    python benchmarks/memory_and_throughput.py [--sizes 512 1024 2048 4096] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

N_CLASSES, DIM, HEADER = 6, (32, 32, 32), 128


def child(mode: str, n: int, data_dir: str) -> None:
    """Train one epoch on the first ``n`` samples from ``mode``; print the peak RSS as JSON."""
    import keras
    import numpy as np
    from keras import layers

    from helpers.generator import DataGenerator
    from helpers.memory import PeakMemory
    from helpers.volumes import load_partition

    _, labels = load_partition(data_dir)
    ids = [f"id-{i}" for i in range(1, n + 1)]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((*DIM, 1)),
        layers.Conv3D(4, 3, strides=4, activation="relu"),
        layers.GlobalAveragePooling3D(),
        layers.Dense(N_CLASSES, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with PeakMemory() as mem:
        if mode == "arrays":
            x = np.empty((n, *DIM, 1), dtype=np.float32)
            for k, id_ in enumerate(ids):
                x[k, ..., 0] = np.load(os.path.join(data_dir, f"{id_}.npy"))
            y = keras.utils.to_categorical([labels[i] for i in ids], N_CLASSES)
            model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        else:
            gen = DataGenerator(ids, labels, data_dir, batch_size=32, n_classes=N_CLASSES,
                                seed=0)
            model.fit(gen, epochs=1, verbose=0)
    print(json.dumps({"mode": mode, "n": n, "peak_mb": mem.peak_mb}))


def peak_memory_mb(mode: str, n: int, data_dir: Path) -> float:
    env = os.environ | {"CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(n), str(data_dir)],
        capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{mode}, n={n} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]


def memory_study(sizes: list[int], data_dir: Path) -> dict[tuple[str, int], float]:
    runs = [(mode, n) for n in sizes for mode in ("arrays", "generator")]
    with ThreadPoolExecutor(max_workers=2) as pool:  # RSS is per process: pairs don't interfere
        peaks = pool.map(lambda r: peak_memory_mb(*r, data_dir), runs)
        return dict(zip(runs, peaks, strict=True))


def throughput_study(data_dir: Path, packed_dir: Path, rounds: int,
                     batch_size: int) -> dict[str, float]:
    import numpy as np
    import tensorflow as tf

    from helpers.article import ArticleDataGenerator
    from helpers.generator import DataGenerator
    from helpers.packed import PackedDataGenerator
    from helpers.volumes import load_partition

    partition, labels = load_partition(data_dir)
    ids = partition["train"] + partition["validation"]
    paths = [os.path.join(data_dir, f"{i}.npy") for i in ids]
    sample_bytes = int(np.prod(DIM))
    if {os.path.getsize(p) for p in paths} != {HEADER + sample_bytes}:
        raise ValueError(f"{data_dir}: files are not all {HEADER}-byte header + uint8 {DIM}")

    def load_sample(path, label):
        raw = tf.io.read_file(path)
        volume = tf.io.decode_raw(tf.strings.substr(raw, HEADER, sample_bytes), tf.uint8)
        return tf.reshape(tf.cast(volume, tf.float32), (*DIM, 1)), tf.one_hot(label, N_CLASSES)

    tf_data = (tf.data.Dataset.from_tensor_slices((paths, [labels[i] for i in ids]))
               .shuffle(len(paths), seed=0)
               .map(load_sample, num_parallel_calls=tf.data.AUTOTUNE)
               .batch(batch_size).prefetch(tf.data.AUTOTUNE))
    common = dict(batch_size=batch_size, n_classes=N_CLASSES)
    article = ArticleDataGenerator(ids, labels, str(data_dir), **common)
    per_file = DataGenerator(ids, labels, data_dir, seed=0, **common)
    packed = PackedDataGenerator(ids, labels, packed_dir, seed=0, **common)

    def read_files(files):
        for p in files:
            with open(p, "rb") as f:
                f.read()

    def serve(dataset):
        for i in range(len(dataset)):
            dataset[i]

    def iterate(dataset):
        for _ in dataset:
            pass

    readers = {
        "ceiling (read files)": (lambda: read_files(paths), len(ids)),
        "article": (lambda: serve(article), len(article) * batch_size),
        "DataGenerator": (lambda: serve(per_file), len(ids)),
        "packed": (lambda: serve(packed), len(ids)),
        "tf.data": (lambda: iterate(tf_data), len(ids)),
    }
    best = dict.fromkeys(readers, 0.0)
    for _ in range(rounds):  # interleaved: a busy moment hits every reader alike
        for name, (one_pass, n) in readers.items():
            start = time.perf_counter()
            one_pass()
            best[name] = max(best[name], n / (time.perf_counter() - start))
    return best


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()

    import helpers
    from helpers.memory import MB
    from helpers.packed import pack_volume_dataset

    n = max(args.sizes)
    data_dir = args.data_dir or helpers.data_root() / f"benchmark-volumes-{n}"
    helpers.make_volume_dataset(data_dir, n, n_classes=N_CLASSES, seed=0)
    packed_dir = pack_volume_dataset(data_dir, data_dir.with_name(data_dir.name + "-packed"))

    peaks = memory_study(sorted(args.sizes), data_dir)
    sizes = sorted(args.sizes)
    print(f"\nPeak RSS of one training epoch (fresh process each, {os.cpu_count()} CPUs)")
    print(f"{'samples':>8}{'float32 data MiB':>18}{'arrays MiB':>12}{'generator MiB':>15}")
    for s in sizes:
        print(f"{s:>8}{s * 32**3 * 4 / MB:>18.0f}{peaks['arrays', s]:>12.0f}"
              f"{peaks['generator', s]:>15.0f}")
    growth = peaks["generator", sizes[-1]] / peaks["generator", sizes[0]]
    arrays = peaks["arrays", sizes[-1]] / peaks["arrays", sizes[0]]
    print(f"data x{sizes[-1] / sizes[0]:.0f}: generator peak x{growth:.3f} "
          f"(goal <= 1.10: {'met' if growth <= 1.10 else 'NOT met'}), arrays peak x{arrays:.2f}")

    best = throughput_study(data_dir, packed_dir, args.rounds, args.batch_size)
    ceiling = best["ceiling (read files)"]
    print(f"\nReaders alone, {n} samples of 32x32x32 uint8, batch {args.batch_size}, "
          f"best of {args.rounds} rounds, page cache warm")
    print(f"{'reader':<22}{'samples/s':>11}{'of ceiling':>12}")
    for name, rate in best.items():
        print(f"{name:<22}{rate:>11,.0f}{rate / ceiling:>11.0%}")


if __name__ == "__main__":
    main()
