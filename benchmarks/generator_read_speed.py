"""How fast each way of reading per-sample ``.npy`` files serves samples.

Target: helpers.DataGenerator serves >= 5x the samples/s of the article's class, and
>= 70% of the raw read rate on the same files.

Measures, on the same files (32x32x32 uint8, page cache warm), in one run:
  raw       open each file and read its bytes, nothing else: the ceiling
  article   a faithful port of the article's DataGenerator (np.load per sample, float64)
  helpers   helpers.DataGenerator
Each is timed over full passes, several rounds interleaved, and the best round is kept
(the least disturbed by other work on the machine). Targets: helpers >= 5x article and
>= 70% of raw.

    python benchmarks/generator_read_speed.py [--n 4000] [--rounds 5] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from helpers import (
    ArticleDataGenerator,
    DataGenerator,
    best_rates,
    data_root,
    make_volume_dataset,
    read_files,
    serve_all,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4096, help="number of sample files")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()

    data_dir = args.data_dir or data_root() / f"benchmark-volumes-{args.n}"
    partition, labels = make_volume_dataset(data_dir, args.n, n_classes=6, seed=0)
    ids = partition["train"] + partition["validation"]
    paths = [os.path.join(data_dir, f"{i}.npy") for i in ids]
    read_files(paths)  # warm the page cache

    common = dict(batch_size=args.batch_size, n_classes=6, shuffle=True)
    article = ArticleDataGenerator(ids, labels, str(data_dir), **common)
    ours = DataGenerator(ids, labels, data_dir, seed=0, **common)
    n_article = len(article) * args.batch_size  # floor: it serves fewer samples
    best = best_rates({  # rounds interleaved, so a busy moment hits all three alike
        "raw": (lambda: read_files(paths), len(paths)),
        "article": (lambda: serve_all(article), n_article),
        "helpers": (lambda: serve_all(ours), len(ids)),
    }, args.rounds)

    print(f"{len(ids)} files of 32x32x32 uint8 in {data_dir}, batch {args.batch_size}, "
          f"best of {args.rounds} rounds, {os.cpu_count()} CPUs")
    print(f"{'reader':<10}{'samples/s':>12}{'vs article':>12}{'vs raw':>10}")
    for name, rate in best.items():
        print(f"{name:<10}{rate:>12,.0f}{rate / best['article']:>11.1f}x"
              f"{rate / best['raw']:>9.0%}")
    speedup, share = best["helpers"] / best["article"], best["helpers"] / best["raw"]
    print(f"target helpers >= 5x article: {speedup:.1f}x -> {'met' if speedup >= 5 else 'MISSED'}")
    print(f"target helpers >= 70% of raw: {share:.0%} -> {'met' if share >= 0.7 else 'MISSED'}")
    print(f"(raw itself is {best['raw'] / best['article']:.1f}x the article: no reader that opens "
          "one file per sample, one after another, can be faster than raw)")


if __name__ == "__main__":
    main()
