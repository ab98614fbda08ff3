"""The course's reference results: one command, one JSON file per machine.

The TL;DRs and the "which loader when" card cite these figures; a live run in a notebook is an
"on your machine" check beside them. Every figure is measured over ``--rounds`` rounds
(interleaved where two contenders are compared) and stored with its median, minimum and
maximum, so a reader can see whether a difference lies beyond the spread. Fixed costs (Keras'
wait at the end of an epoch with workers) are measured apart from per-sample rates.

Most figures come from workloads of KNOWN cost, so that they come out the same on any machine:
a loader that sleeps a fixed time per batch (standing for a slow disk), a pure-Python loop
(CPU work that holds the GIL), a training step that makes the host wait a fixed time
(standing for an accelerator's step). The rest are the course's real workloads (the 3-D
volumes of notebooks 01-05): memory held by ``fit(X, y)`` against a generator, and how fast
the generator reads against how fast the model trains.

    python benchmarks/reference.py                     # about 2 minutes on 2 cores
    python benchmarks/reference.py --out benchmarks/results/reference_MYMACHINE.json

Run it on a quiet machine (nothing else running): the load average before and after is
stored in the file's provenance.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from helpers import (  # noqa: E402
    MB,
    DataGenerator,
    InMemoryBatches,
    SimulatedWork,
    data_root,
    load_partition,
    make_volume_dataset,
    measure_model,
    memory_study,
    serve_all,
    volume_cnn,
)
from helpers.atomic import write_text_atomic  # noqa: E402
from helpers.image_loaders import loader_rate  # noqa: E402
from helpers.quiet import c_stderr_silenced  # noqa: E402
from helpers.throughput import measure_pipeline  # noqa: E402
from helpers.timeline import fit_timeline  # noqa: E402

DEFAULT_OUT = Path(__file__).parent / "results" / "reference_cpu_2core.json"

# Known-cost workloads: the same numbers as notebook 05 uses.
KNOWN_BATCH = 8                      # samples per batch of the known-cost loaders
IO_SECONDS_PER_SAMPLE = 0.0025       # 20 ms a batch of 8: a slow disk
PYTHON_OPS_PER_SAMPLE = 25_000       # 10-20 ms a batch of 8: CPU work that holds the GIL
OVERLAP = {"n_batches": 16, "load_seconds": 0.2, "step_seconds": 0.05}
BATCH = 32                           # the volumes' batch (notebooks 01-05)


def spread(values: list[float], unit: str, what: str) -> dict:
    """A figure as the course stores it: median, min, max and every round's value."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "rounds": len(values), "values": values, "unit": unit, "what": what}


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                          capture_output=True, text=True)
    return [g.strip() for g in done.stdout.splitlines() if g.strip()]


def provenance(args: argparse.Namespace, load_before: list[float]) -> dict:
    import psutil

    return {
        "cpu": _cpu_model(), "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpus": _gpus(), "backend": keras.backend.backend(),
        "versions": {name: _version(name) for name in
                     ("keras", "numpy", "tensorflow", "jax", "torch")} | {
                         "python": platform.python_version()},
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/reference.py " + " ".join(sys.argv[1:]),
        "rounds": args.rounds, "load_average_before": load_before,
    }


# ---------------------------------------------------------------------------------------
# Known-cost workloads

def _tiny_batches(n_batches: int) -> InMemoryBatches:
    x = np.random.default_rng(0).random((n_batches * KNOWN_BATCH, 8), dtype=np.float32)
    return InMemoryBatches(x, np.zeros((len(x), 1), np.float32), KNOWN_BATCH)


def _pipeline_rate(dataset) -> float:
    """Samples/s of one epoch's batches served as fit() asks for them (start-up excluded)."""
    with c_stderr_silenced():  # forked workers may print TensorFlow's notes
        return measure_pipeline(dataset, batches=len(dataset) - 4, warmup=4)[1]


def workers_study(rounds: int) -> dict:
    """Speed-ups over one worker: waiting (threads scale) vs a Python loop (they do not)."""
    inner = _tiny_batches(32)
    io = {"1": [], "threads_2": [], "threads_4": []}
    loop = {"1": [], "threads_2": [], "processes_2": []}
    io_cfg = {"1": {}, "threads_2": {"workers": 2}, "threads_4": {"workers": 4}}
    loop_cfg = {"1": {}, "threads_2": {"workers": 2},
                "processes_2": {"workers": 2, "use_multiprocessing": True}}
    for _ in range(rounds):
        for name, kw in io_cfg.items():
            io[name].append(_pipeline_rate(
                SimulatedWork(inner, io_seconds=IO_SECONDS_PER_SAMPLE, **kw)))
        for name, kw in loop_cfg.items():
            loop[name].append(_pipeline_rate(
                SimulatedWork(inner, python_ops=PYTHON_OPS_PER_SAMPLE, **kw)))
    out = {"workers.io_wait.samples_per_s_1": spread(
        io["1"], "samples/s", f"a loader that sleeps {IO_SECONDS_PER_SAMPLE * 1e3:g} ms a sample "
        f"(batch {KNOWN_BATCH}), served alone by one worker")}
    for name in ("threads_2", "threads_4"):
        out[f"workers.io_wait.speedup_{name}"] = spread(
            [a / b for a, b in zip(io[name], io["1"], strict=True)], "x",
            f"the same loader with {name.replace('_', ' ')} against one worker (same round)")
    out["workers.python_loop.samples_per_s_1"] = spread(
        loop["1"], "samples/s", f"a loader that runs a pure-Python loop of "
        f"{PYTHON_OPS_PER_SAMPLE:,} steps a sample, served alone by one worker")
    for name in ("threads_2", "processes_2"):
        out[f"workers.python_loop.speedup_{name}"] = spread(
            [a / b for a, b in zip(loop[name], loop["1"], strict=True)], "x",
            f"the same loader with {name.replace('_', ' ')} against one worker (same round)")
    return out


class _FreeBatches(keras.utils.PyDataset):
    """Batches that cost nothing: an epoch of them times Keras' own work alone."""

    def __len__(self) -> int:
        return 20

    def __getitem__(self, index: int):
        return np.zeros((BATCH, 1), "float32"), np.zeros(BATCH, "int32")


def epoch_end_wait(rounds: int) -> dict:
    """Keras' fixed cost per epoch with 2 thread workers: an epoch of free batches."""
    waits = []
    for _ in range(rounds):
        none, _ = loader_rate(lambda: _FreeBatches(), rounds=1)
        two, _ = loader_rate(lambda: _FreeBatches(workers=2), rounds=1)
        waits.append(20 * BATCH / two - 20 * BATCH / none)
    return {"keras.epoch_end_wait_s": spread(
        waits, "s", "one epoch of 20 free batches with 2 thread workers minus the same with "
        "none: the fixed wait Keras adds to every epoch with workers (OrderedEnqueuer.stop)")}


def overlap_study(rounds: int) -> dict:
    """fit() on a sleeping loader with a step of known cost: 1, 2, 4 thread workers."""
    n, load, step = OVERLAP["n_batches"], OVERLAP["load_seconds"], OVERLAP["step_seconds"]
    out = {}
    for w in (1, 2, 4):
        runs = [fit_timeline(n, load, step, workers=w) for _ in range(rounds)]
        out[f"overlap.epoch_s.workers_{w}"] = spread(
            [t.epoch_seconds[0] for t in runs], "s",
            f"one fit() epoch of {n} batches, loading {load:g} s and a step of "
            f"{step:g} s each, {w} thread worker(s); with 1 worker TensorFlow still prefetches "
            "on a thread of tf.data's, JAX and PyTorch load on the training thread")
    out["overlap.epoch_s.ideal"] = spread(  # runs: the 4 workers' (Timeline's own formulas)
        [runs[0].ideal_seconds], "s", f"the best any pipeline could do with 4 workers: {n} x "
        "max(step, load / 4) (computed, not measured)")
    out["overlap.epoch_s.serial"] = spread(
        [runs[0].serial_seconds], "s",
        f"loading and training one after the other: {n} x (load + step) (computed)")
    return out


# ---------------------------------------------------------------------------------------
# The course's real workloads (3-D volumes, notebooks 01-05)

def memory_slopes(rounds: int, data_dir: Path, sizes: list[int]) -> dict:
    """MiB of peak anonymous memory per MiB of float32 data, fit(X, y) vs a generator."""
    data_mib = np.array(sizes) * 32**3 * 4 / MB
    slopes = {"arrays": [], "generator": []}
    for _ in range(rounds):
        peaks = memory_study(sizes, data_dir)
        for mode in slopes:
            anon = [peaks[mode, s]["anon_mb"] for s in sizes]
            slopes[mode].append(float(np.polyfit(data_mib, anon, 1)[0]))
    what = ("peak anonymous memory of one training epoch per MiB of float32 data: the slope "
            f"over {', '.join(map(str, sizes))} samples of 32x32x32, each run in a fresh process")
    return {"memory.fit_xy.mib_per_data_mib": spread(slopes["arrays"], "MiB/MiB",
                                                     f"fit(X, y) on arrays: {what}"),
            "memory.generator.mib_per_data_mib": spread(slopes["generator"], "MiB/MiB",
                                                        f"fit(DataGenerator): {what}")}


def read_vs_model(rounds: int, data_dir: Path) -> dict:
    """DataGenerator alone (one worker) against the small 3-D CNN's steps alone."""
    partition, labels = load_partition(data_dir)
    ids = partition["train"] + partition["validation"]
    reader, model_rate = [], []
    model = volume_cnn()
    gen = DataGenerator(ids, labels, data_dir, batch_size=BATCH, n_classes=6, seed=0)
    serve_all(gen)  # once untimed: the files in the page cache, as in every later epoch
    for _ in range(rounds):  # a round: 5 epochs of reading (one lasts a few hundredths of a s)
        epochs = [measure_pipeline(gen, batches=len(gen) - 2, warmup=2, keep=8)
                  for _ in range(5)]
        reader.append(statistics.median(e[1] for e in epochs))
        model_rate.append(measure_model(model, epochs[0][5], epochs=3))
    return {
        "read.generator.samples_per_s": spread(
            reader, "samples/s", f"DataGenerator serving {len(ids)} volumes of 32x32x32 "
            f"(.npy, page cache warm), batch {BATCH}, one worker, alone; a round's figure is the "
            "median of 5 epochs"),
        "read.model.samples_per_s": spread(
            model_rate, "samples/s", "notebook 01's small 3-D CNN training on batches in memory "
            "(steps alone, compile excluded)"),
        "read.reader_over_model": spread(
            [a / b for a, b in zip(reader, model_rate, strict=True)], "x",
            "how many times faster the generator reads than the model trains (same round)"),
    }


# ---------------------------------------------------------------------------------------
# Image folders (notebook 06): every loader fit() takes, on an Imagenette-size stand-in

def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def images_study(rounds: int, per_class: int) -> dict:
    """Samples/s of each image loader alone and through fit(); every round reads each loader
    once, in turn (``benchmarks/image_loaders.py``'s loaders). Their memory is that script's
    part 3: one process that runs every loader in turn holds memory from round to round."""
    import image_loaders as bench  # benchmarks/image_loaders.py, beside this file

    from helpers import ImageFolderDataset, fit_rate, list_image_files, small_image_cnn

    folder = bench.standin(data_root() / "imagenette", per_class)
    n = len(list_image_files(folder)[0])
    model = small_image_cnn(bench.SIZE, 10)
    batches = [ImageFolderDataset(folder, bench.SIZE, bench.BATCH, seed=0)[i] for i in range(4)]
    makers = bench.loaders(folder)
    alone = {name: [] for name in makers}
    fits, model_rate = {name: [] for name in makers}, []
    for r in range(rounds):
        model_rate.append(measure_model(model, batches, epochs=2))
        for name, make in makers.items():
            reuse = name in bench.REUSED
            with bench.quiet(name):
                rate, _ = loader_rate(make, 1, reuse=reuse)
                fits[name].append(fit_rate(model, make, n, bench.BATCH, 1, warmup=r == 0,
                                           reuse=reuse))
            alone[name].append(rate)
        gc.collect()
    where = (f"{n:,} JPEG/PNG files of a stand-in in Imagenette's layout, batch {bench.BATCH}, "
             "160x160")
    out = {"images.model.samples_per_s": spread(
        model_rate, "samples/s", "notebook 06's small CNN training on 4 batches in memory")}
    base = "PyDataset, 1 worker"
    for name in makers:
        key = f"images.{_slug(name)}"
        out[f"{key}.alone"] = spread(alone[name], "samples/s", f"{name} served alone: {where}")
        out[f"{key}.fit"] = spread(fits[name], "samples/s", f"{name} through one fit() epoch "
                                   f"of notebook 06's small CNN: {where}")
        if name != base:
            for how, rates in (("alone", alone), ("fit", fits)):
                out[f"{key}.{how}_vs_1_worker"] = spread(
                    [a / b for a, b in zip(rates[name], rates[base], strict=True)], "x",
                    f"{name} against the one-worker (Pillow) PyDataset, "
                    f"{'alone' if how == 'alone' else 'through fit()'}, same round")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--per-class", type=int, default=950,
                        help="images per class of the image folder (Imagenette: about 950)")
    parser.add_argument("--only", nargs="+", default=None,
                        choices=["workers", "wait", "overlap", "memory", "read", "images"],
                        help="run these parts only, and merge them into --out")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be >= 3: a figure needs its spread")
    load_before = list(os.getloadavg())  # 1, 5 and 15 minutes, before anything is measured
    keras.utils.set_random_seed(0)
    data_dir = data_root() / f"reference-volumes-{max(args.sizes)}"
    make_volume_dataset(data_dir, max(args.sizes), n_classes=6, seed=0, progress=False)

    parts = {
        "workers": lambda: workers_study(args.rounds),
        "wait": lambda: epoch_end_wait(args.rounds),
        "overlap": lambda: overlap_study(args.rounds),
        "read": lambda: read_vs_model(max(args.rounds, 5), data_dir),
        "memory": lambda: memory_slopes(args.rounds, data_dir, sorted(args.sizes)),
        "images": lambda: images_study(args.rounds, args.per_class),
    }
    results: dict = {}
    if args.only and args.out.exists():
        results = json.loads(args.out.read_text())["results"]
    started = time.perf_counter()
    for name in args.only or parts:
        t0 = time.perf_counter()
        results.update(parts[name]())
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    meta = provenance(args, load_before)
    meta["load_average_after"] = list(os.getloadavg())
    meta["seconds"] = round(time.perf_counter() - started)
    report = {"provenance": meta, "results": dict(sorted(results.items()))}
    write_text_atomic(args.out, json.dumps(report, indent=1) + "\n")
    for key, fig in report["results"].items():
        print(f"{key:<42} {fig['median']:>10.3g} {fig['unit']:<9} "
              f"[{fig['min']:.3g} .. {fig['max']:.3g}]")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
