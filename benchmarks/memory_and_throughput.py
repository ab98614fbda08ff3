"""The figures of notebook 09: peak memory of training, and samples/s of each reader.

Memory: peak anonymous memory (RssAnon, or USS) and peak RSS of one training epoch from
in-memory float32 arrays, from ``helpers.DataGenerator`` and from
``helpers.PackedDataGenerator``, for datasets of growing size, each run in a fresh process
(``helpers.memory_study``) so earlier allocations cannot hide what a run adds. Reported as
a slope: MiB of peak memory per MiB of float32 data (0: flat; 1: the data held once).

Throughput: samples/s of readers alone over the same files (page cache warm), best of
several interleaved rounds, against a baseline that reads each per-sample file's bytes:
the article's generator (``helpers.article``), ``helpers.DataGenerator``,
``helpers.PackedDataGenerator`` (memory-mapped shards) and a ``tf.data`` pipeline (only
where TensorFlow is installed; it runs beside any Keras backend, set by ``KERAS_BACKEND``,
which the memory runs use too).

    python benchmarks/memory_and_throughput.py [--sizes 512 1024 2048 4096] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

import numpy as np

from helpers import (
    MB,
    ArticleDataGenerator,
    DataGenerator,
    PackedDataGenerator,
    best_rates,
    data_root,
    load_partition,
    make_volume_dataset,
    memory_study,
    pack_volume_dataset,
    read_files,
    serve_all,
    volume_tf_data,
)

N_CLASSES = 6


def throughput_study(data_dir: Path, packed_dir: Path, rounds: int,
                     batch_size: int) -> dict[str, float]:
    partition, labels = load_partition(data_dir)
    ids = partition["train"] + partition["validation"]
    paths = [os.path.join(data_dir, f"{i}.npy") for i in ids]
    common = dict(batch_size=batch_size, n_classes=N_CLASSES)
    article = ArticleDataGenerator(ids, labels, str(data_dir), **common)
    per_file = DataGenerator(ids, labels, data_dir, seed=0, **common)
    packed = PackedDataGenerator(ids, labels, packed_dir, seed=0, **common)
    readers = {
        "baseline: open()+read()": (lambda: read_files(paths), len(ids)),
        "article": (lambda: serve_all(article), len(article) * batch_size),
        "DataGenerator": (lambda: serve_all(per_file), len(ids)),
        "packed": (lambda: serve_all(packed), len(ids)),
    }
    if importlib.util.find_spec("tensorflow") is not None:
        tf_data = volume_tf_data(paths, [labels[i] for i in ids], batch_size,
                                 n_classes=N_CLASSES)
        readers["tf.data"] = (lambda: [None for _ in tf_data], len(ids))
    else:
        print("tf.data: skipped, TensorFlow is not installed")
    return best_rates(readers, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()

    sizes = sorted(args.sizes)
    n = sizes[-1]
    data_dir = args.data_dir or data_root() / f"benchmark-volumes-{n}"
    make_volume_dataset(data_dir, n, n_classes=N_CLASSES, seed=0)
    packed_dir = pack_volume_dataset(data_dir, data_dir.with_name(data_dir.name + "-packed"))

    peaks = memory_study(sizes, data_dir, packed_dir)
    modes = ("arrays", "generator", "packed")
    print(f"\nPeak anonymous / RSS MiB of one training epoch (fresh process each, "
          f"{os.cpu_count()} CPUs)")
    print(f"{'samples':>8}{'float32 data MiB':>18}" + "".join(f"{m:>16}" for m in modes))
    for s in sizes:
        print(f"{s:>8}{s * 32**3 * 4 / MB:>18.0f}" + "".join(
            f"{peaks[m, s]['anon_mb']:>10.0f} /{peaks[m, s]['rss_mb']:>5.0f}" for m in modes))
    data_mib = np.array(sizes) * 32**3 * 4 / MB
    print("MiB of peak per MiB of data (slope):")
    for m in modes:
        anon, rss = (np.polyfit(data_mib, [peaks[m, s][k] for s in sizes], 1)[0]
                     for k in ("anon_mb", "rss_mb"))
        print(f"  {m:<10} anonymous {anon:+.3f}   RSS {rss:+.3f}")

    best = throughput_study(data_dir, packed_dir, args.rounds, args.batch_size)
    baseline = best["baseline: open()+read()"]
    print(f"\nReaders alone, {n} samples of 32x32x32 uint8, batch {args.batch_size}, "
          f"best of {args.rounds} rounds, page cache warm")
    print(f"{'reader':<26}{'samples/s':>11}{'of baseline':>13}")
    for name, rate in best.items():
        print(f"{name:<26}{rate:>11,.0f}{rate / baseline:>12.0%}")


if __name__ == "__main__":
    main()
