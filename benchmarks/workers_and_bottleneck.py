"""Process workers on CPU-bound work, and generator-fed vs in-memory epochs (targets below).

1. CPU-bound ``__getitem__`` (a pure-Python loop per sample, ``helpers.workloads.
   SimulatedWork``): samples/s of 2 process workers against 1 worker, measured as ``fit()``
   consumes a dataset (``helpers.throughput.probe``). Target on 2 cores: >= 1.6x.
2. Notebook 05's model (notebook 01's small 3-D CNN) trained one epoch on the volume dataset fed by
   ``helpers.DataGenerator`` against one epoch on the same samples held in memory as arrays.
   Target: generator-fed epoch <= 1.15x the in-memory epoch.

Each figure is measured over several rounds, interleaved, and the best round is kept (the
least disturbed by other work on the machine).

    python benchmarks/workers_and_bottleneck.py [--rounds 6] [--n 1024] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from helpers import (  # noqa: E402
    DataGenerator,
    InMemoryBatches,
    SimulatedWork,
    best_epoch_seconds,
    data_root,
    make_volume_dataset,
    probe,
    volume_cnn,
)


def cpu_bound_speedup(rounds: int) -> tuple[float, float]:
    """Best samples/s of 1 worker and of 2 process workers over interleaved rounds."""
    rng = np.random.default_rng(0)
    x = rng.random((48 * 32, 8), dtype=np.float32)
    y = rng.random((48 * 32, 1), dtype=np.float32)
    best = {(1, False): 0.0, (2, True): 0.0}
    for r in range(rounds):
        for workers, mp in best:
            ds = SimulatedWork(InMemoryBatches(x, y, 32), python_ops=20_000, workers=workers,
                               use_multiprocessing=mp)
            rate = probe(ds, batches=60).pipeline_samples_per_s
            best[(workers, mp)] = max(best[(workers, mp)], rate)
            print(f"  round {r + 1}: workers={workers}, "
                  f"{'processes' if mp else 'main thread'}: {rate:,.0f} samples/s")
    return best[(1, False)], best[(2, True)]


def generator_vs_memory(data_dir: Path, n: int, rounds: int, batch_size: int,
                        configs: dict[str, dict]) -> dict[str, float]:
    """Best epoch time in memory and per DataGenerator configuration, epochs interleaved."""
    partition, labels = make_volume_dataset(data_dir, n, n_classes=6, seed=0,
                                                    progress=False)
    ids = partition["train"]
    x = np.stack([np.load(data_dir / f"{i}.npy") for i in ids])[..., None].astype(np.float32)
    y = keras.utils.to_categorical([labels[i] for i in ids], 6).astype(np.float32)
    runs = {"in memory": (volume_cnn(), {"x": x, "y": y, "batch_size": batch_size})}
    for label, kwargs in configs.items():
        gen = DataGenerator(ids, labels, data_dir, batch_size=batch_size,
                                    n_classes=6, seed=0, **kwargs)
        model = volume_cnn()
        # Built before fit(): on JAX and PyTorch, an unbuilt model with workers >= 2 makes the
        # first epochs train on batches read ahead for another epoch (notebook 05 shows it).
        model.evaluate(*gen[0], verbose=0)
        runs[label] = (model, {"x": gen})
    return best_epoch_seconds(runs, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--n", type=int, default=1000, help="volume samples (80%% train)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores; Keras {keras.__version__} "
          f"({keras.backend.backend()}); load average {os.getloadavg()[0]:.2f}")

    print("1. CPU-bound __getitem__: 2 process workers vs 1 worker (best of rounds)")
    one, two = cpu_bound_speedup(args.rounds)

    data_dir = args.data_dir or data_root() / f"volumes-{args.n}"
    print(f"2. Notebook 05's model, one epoch, best of rounds ({data_dir})")
    configs = {"DataGenerator, 1 worker": {},
               "DataGenerator, 2 threads": {"workers": 2, "max_queue_size": 8}}
    best = generator_vs_memory(data_dir, args.n, args.rounds, args.batch_size, configs)

    print()
    print(f"CPU-bound, 2 processes / 1 worker: {two / one:.2f}x (target >= 1.6x)")
    for label in configs:
        print(f"{label}: epoch {best[label] / best['in memory']:.3f}x the in-memory epoch "
              f"({best[label]:.2f} s vs {best['in memory']:.2f} s; target <= 1.15x)")
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other work skews timings)")


if __name__ == "__main__":
    main()
