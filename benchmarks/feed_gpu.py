"""Keeping the accelerator fed: every rung of notebook 07's ladder, measured on this machine.

    python benchmarks/feed_gpu.py                  # the committed CPU run (about 6 minutes)
    python benchmarks/feed_gpu.py --tiny           # a smoke test in seconds (the unit tests)

**Loader part (any machine).** How many images one CPU core serves per second on each rung,
in steady state (a warm-up batch, then ``--rounds`` passes over the same batches), measured as
CPU time of the thread that builds the batches (``time.thread_time``), so other programs on
the machine do not inflate it:

0. ``ImageFolderDataset``: decode, resize and augment (crop + flip) every image, every epoch;
1. decode once: ``build_image_cache`` then ``CachedImageDataset`` (with the same CPU
   augmentation, and without it: the augmentation moved into the model, rung 2);
3. tf.data (where TensorFlow is installed): ``image_dataset_from_directory`` with and without
   ``cache()``, and what ``prefetch()`` hides behind a simulated training step;
4. data resident on the device: the loader sends row numbers only (``IndexBatches``);

the same for the CIFAR-10 format (``CIFAR10Sequence`` with and without its augmentation). It
also builds the cache three times (build time, size beside the JPEG folder), and measures the
anonymous memory and the RSS an epoch adds when the folder grows 8x.

**The table.** Beside those per-core rates, how fast a T4, an A100 and an H100 consume the
two workloads (cited, with sources: ``GPU_RATES``), and the cores each rung would need.

**Model part (a GPU, or ``--models``).** Each model (the article's CIFAR-10 CNN; ResNet-50 on
160 px images) trained for an epoch per rung, beside the epoch from arrays in memory: epoch
seconds, samples/s and, with ``nvidia-smi``, how busy the GPU was (sampled every 100 ms).

Results go to ``benchmarks/results/reference_feed_<cpu|gpu>.json`` with provenance (CPU,
cores, memory, GPU, backend and versions, date, command); keys start with ``feed.``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.reference import provenance, spread  # noqa: E402
from helpers.atomic import write_text_atomic  # noqa: E402
from helpers.cifar import CIFAR10Sequence  # noqa: E402
from helpers.cifar_standin import write_cifar10_like  # noqa: E402
from helpers.environment import data_root  # noqa: E402
from helpers.feeding import (  # noqa: E402
    IndexBatches,
    RandomShift,
    ResidentImages,
    loader_cpu_seconds,
)
from helpers.image_cache import CachedImageDataset, build_image_cache  # noqa: E402
from helpers.imagenette import write_imagenette_like  # noqa: E402
from helpers.images import ImageFolderDataset  # noqa: E402
from helpers.memory import MB  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PER_CORE = "images per CPU-second"
SIZE = (160, 160)
BATCH = 64             # image folder batches (ResNet-50-class models train at 64-256)
CIFAR_BATCH = 256      # CIFAR-10 batches

# How fast GPUs consume the two workloads, from published figures (none measured here).
# kind: "cited" (a figure a source states), "derived" (computed from sourced figures), "EST"
# (needs an assumption no source states). Details and more: the course's perf-anchors review.
GPU_RATES = [
    {"gpu": "T4", "workload": "cifar_cnn", "rate": 5_700, "kind": "EST",
     "basis": "a floor: ResNet-9 (24 epochs in 75 s on a V100, Lambda Labs) x NVIDIA's T4/V100 "
              "ResNet-50 inference ratio (1198 / 3382 img/s, DeepLearningExamples); a smaller "
              "CNN may run 2-5x faster",
     "source": "https://lambdalabs.com/blog/resnet9-train-to-94-cifar10-accuracy-in-100-seconds"},
    {"gpu": "A100", "workload": "cifar_cnn", "rate": 129_000, "kind": "derived",
     "basis": "airbench94's own network and code: 9.9 epochs of 50,000 images in 3.83 s on one "
              "A100 (a lower bound: the time includes set-up and evaluation)",
     "source": "https://arxiv.org/html/2404.00498v2"},
    {"gpu": "H100", "workload": "cifar_cnn", "rate": 129_000, "kind": "EST",
     "basis": "the A100 figure, assuming an H100 is at least as fast (no published figure)",
     "source": "https://arxiv.org/html/2404.00498v2"},
    {"gpu": "T4", "workload": "resnet50_160", "rate": 830, "kind": "EST",
     "basis": "the top of 425-830: NVIDIA's T4 ResNet-50 inference (1198 img/s, 224 px, mixed "
              "precision) / the V100's inference-to-training ratio (3382 / 1200) x (224/160)^2",
     "source": "https://github.com/NVIDIA/DeepLearningExamples/tree/master/PyTorch/"
               "Classification/ConvNets/resnet50v1.5"},
    {"gpu": "A100", "workload": "resnet50_160", "rate": 3_040, "kind": "derived",
     "basis": "FFCV ResNet-50: 88 epochs of ImageNet in 77.2 min on 8 A100s, 160-192 px "
              "progressive resizing, mixed precision, evaluation included",
     "source": "https://github.com/libffcv/ffcv-imagenet"},
    {"gpu": "H100", "workload": "resnet50_160", "rate": 7_000, "kind": "EST",
     "basis": "MLPerf Training v3.0, one DGX H100: about 56,000 img/s over 8 GPUs at 224 px "
              "(MXNet + DALI, mixed precision); at 160 px up to about 13,700 (FLOP scaling)",
     "source": "https://github.com/mlcommons/training_results_v3.0/blob/9f08e30cbe2fed7cd12bea"
               "174729b3904124c7bc/NVIDIA/results/dgxh100_ngc23.04_mxnet/resnet/result_0.txt"},
]
COLAB_LOADER_CORES = 1
"""Colab's free and standard runtimes have 2 vCPUs (one physical core); one drives the
training loop, which leaves about one for the loader."""


# ---------------------------------------------------------------------------------------
# Data

def image_folder(root: Path, per_class: int, val_per_class: int = 40) -> Path:
    """An Imagenette-like stand-in with ``per_class`` training images a class; its ``val``
    folder is beside the returned ``train`` folder."""
    folder = root / f"feed-imagenette-like-{per_class}x{val_per_class}"
    if not (folder / "train").is_dir():
        print(f"writing {10 * (per_class + val_per_class):,} stand-in JPEG/PNG files ...",
              flush=True)
        write_imagenette_like(folder, train_per_class=per_class, val_per_class=val_per_class,
                              seed=0)
    return folder / "train"


def cifar_folder(root: Path, n_per_batch: int) -> Path:
    """The CIFAR-10 python format (5 training batch files) with ``n_per_batch`` images each."""
    folder = root / f"feed-cifar10-like-{n_per_batch}"
    if not folder.is_dir():
        write_cifar10_like(folder, n_per_batch=n_per_batch, seed=0)
    return folder


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------
# Loader part: images per CPU-second, one thread

def per_core(name: str, dataset, batches: int, rounds: int, what: str) -> dict:
    """``feed.<name>.rate`` (images per CPU-second) and ``.cpu_ms_per_batch``."""
    out = loader_cpu_seconds(dataset, batches=batches, rounds=rounds)
    rates = [out["samples"] / c for c in out["cpu"]]
    print(f"  {name:<28}{statistics.median(rates):>12,.0f} images per CPU-second", flush=True)
    return {f"feed.{name}.rate": spread(rates, PER_CORE, f"{what} (one thread builds the "
                                        "batches)"),
            f"feed.{name}.cpu_ms_per_batch": spread([c * 1e3 for c in out["cpu"]], "ms",
                                                    f"{what}: CPU ms per batch")}


def ratio(results: dict, key: str, num: str, den: str, what: str) -> None:
    a, b = results[f"feed.{num}.rate"]["values"], results[f"feed.{den}.rate"]["values"]
    results[key] = spread([x / y for x, y in zip(a, b, strict=True)], "x", what)


def cut(results: dict, key: str, before: str, after: str, what: str) -> None:
    """The share of CPU time per batch that ``after`` saves against ``before``, in %."""
    a = results[f"feed.{before}.cpu_ms_per_batch"]["values"]
    b = results[f"feed.{after}.cpu_ms_per_batch"]["values"]
    results[key] = spread([100 * (1 - y / x) for x, y in zip(a, b, strict=True)], "%", what)


def loader_study(folder: Path, cifar: Path, work: Path, rounds: int, batches: int) -> dict:
    r: dict = {}
    print("images per CPU-second, image folder at 160 px:", flush=True)
    r |= per_core("folder.decode_augment", ImageFolderDataset(
        folder, SIZE, BATCH, seed=0, augment=True), batches, rounds,
        "ImageFolderDataset, decode + crop + flip every epoch")
    r |= per_core("folder.decode", ImageFolderDataset(folder, SIZE, BATCH, seed=0), batches,
                  rounds, "ImageFolderDataset, decode every epoch, no augmentation")
    cache = build_image_cache(folder, work / "cache", SIZE, progress=False)
    r |= per_core("cache.augment_cpu", CachedImageDataset(cache, BATCH, seed=0, augment=True),
                  batches, rounds, "CachedImageDataset with crop + flip on the CPU (Pillow)")
    r |= per_core("cache.float32", CachedImageDataset(cache, BATCH, seed=0), batches, rounds,
                  "CachedImageDataset, float32 batches, augmentation in the model")
    r |= per_core("cache.uint8", CachedImageDataset(cache, BATCH, seed=0, dtype="uint8"),
                  batches, rounds, "CachedImageDataset, uint8 batches, augmentation in the model")
    r |= per_core("resident.images", IndexBatches(cache.labels, BATCH, seed=0), batches,
                  rounds, "IndexBatches: row numbers for images resident on the device")
    ratio(r, "feed.cache_vs_folder", "cache.float32", "folder.decode",
          "decode once: the cached loader against decoding every epoch (no augmentation in "
          "either), images per CPU-second")
    ratio(r, "feed.cache_in_model_vs_folder", "cache.uint8", "folder.decode_augment",
          "decode once + augment in the model (uint8) against decoding + augmenting every epoch")
    cut(r, "feed.augment_in_model_cut", "cache.augment_cpu", "cache.float32",
        "CPU time per batch the cached loader saves when augmentation moves into the model")
    cut(r, "feed.augment_in_model_cut_folder", "folder.decode_augment", "folder.decode",
        "CPU time per batch the decoding loader saves when augmentation moves into the model")

    print("images per CPU-second, CIFAR-10 format:", flush=True)
    cifar_batches = min(batches, 50_000 // CIFAR_BATCH - 2)
    r |= per_core("cifar.augment_cpu", CIFAR10Sequence(cifar, batch_size=CIFAR_BATCH, seed=0,
                  augment=True, label_mode="int", cache_dir=work / "cifar-cache"),
                  cifar_batches, rounds, "CIFAR10Sequence (memory-mapped) with flip + shift on "
                  "the CPU (NumPy)")
    r |= per_core("cifar.plain", CIFAR10Sequence(cifar, batch_size=CIFAR_BATCH, seed=0,
                  label_mode="int", cache_dir=work / "cifar-cache"), cifar_batches, rounds,
                  "CIFAR10Sequence (memory-mapped), augmentation in the model")
    labels = np.zeros(50_000, np.int32)
    r |= per_core("cifar.resident", IndexBatches(labels, CIFAR_BATCH, seed=0), cifar_batches,
                  rounds, "IndexBatches for CIFAR-10 resident on the device")
    return r


def build_study(folder: Path, work: Path, rounds: int) -> dict:
    """Build time per core, and the cache's size beside the JPEG folder's."""
    rates, sizes = [], []
    for k in range(rounds):
        c0 = time.process_time()
        cache = build_image_cache(folder, work / f"build-{k}", SIZE, progress=False)
        rates.append(len(cache) / (time.process_time() - c0))
        sizes.append(cache.nbytes / folder_bytes(folder))
        shutil.rmtree(work / f"build-{k}")
    jpeg_mib = folder_bytes(folder) / MB
    print(f"  cache build: {statistics.median(rates):,.0f} images per CPU-second; "
          f"{len(cache):,} images: JPEG folder {jpeg_mib:,.0f} MiB, cache "
          f"{cache.nbytes / MB:,.0f} MiB", flush=True)
    return {"feed.cache.build_rate": spread(rates, PER_CORE, "build_image_cache: images "
                                            "decoded and written"),
            "feed.cache.size_vs_jpeg": spread(sizes, "x", "the cache's bytes (uint8 160x160) "
                                              "against the JPEG folder's")}


_EPOCH_MEMORY = """
import json, sys
from helpers.image_cache import CachedImageDataset, ImageCache
from helpers.memory import MB, anon_bytes, rss_bytes
ds = CachedImageDataset(ImageCache(sys.argv[1]), batch_size=int(sys.argv[2]), seed=0,
                        dtype="uint8")
anon = rss = 0
for i in range(len(ds)):
    ds[i]
    anon, rss = max(anon, anon_bytes()), max(rss, rss_bytes())
print(json.dumps({"anon": anon / MB, "rss": rss / MB}))
"""


def memory_study(small: Path, large: Path, work: Path, rounds: int) -> dict:
    """Anonymous memory and RSS of a fresh process serving one epoch from a cache, for a
    folder and the same kind of folder 8x larger (highest value seen after each batch)."""
    root = str(Path(__file__).resolve().parents[1])
    env = os.environ | {"PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    peaks: dict = {}
    for name, folder in (("small", small), ("large", large)):
        cache = build_image_cache(folder, work / f"mem-{name}", SIZE, progress=False)
        runs = [json.loads(subprocess.run(
            [sys.executable, "-c", _EPOCH_MEMORY, str(cache.cache_dir), str(BATCH)],
            capture_output=True, text=True, check=True, env=env).stdout)
            for _ in range(rounds)]
        peaks[name] = runs
        print(f"  a process serving one epoch from the {name} cache ({len(cache):,} images, "
              f"{cache.nbytes / MB:,.0f} MiB): anonymous "
              f"{statistics.median(r['anon'] for r in runs):.0f} MiB, RSS "
              f"{statistics.median(r['rss'] for r in runs):.0f} MiB", flush=True)
    out: dict = {}
    for kind, label in (("anon", "anonymous memory"), ("rss", "RSS")):
        for name in ("small", "large"):
            out[f"feed.memory.{name}.{kind}"] = spread(
                [r[kind] for r in peaks[name]], "MiB", f"{label} of a process serving one "
                f"epoch from the {name} cache (at its highest)")
        out[f"feed.memory.growth_8x.{kind}"] = spread(
            [100 * (b[kind] / a[kind] - 1) for a, b in zip(peaks["small"], peaks["large"],
                                                           strict=True)],
            "%", f"{label}: the 8x folder's process against the small one's")
    return out


_STEP_TIMES = """
import json, sys, time
import keras
import numpy as np
from helpers.feeding import RandomShift, augmentation_layers
from helpers.image_loaders import small_image_cnn

side, batch, steps, rounds = (int(a) for a in sys.argv[1:5])
x = np.random.default_rng(0).integers(0, 256, (batch * steps, side, side, 3)).astype("float32")
y = np.arange(len(x)) % 10
out = {}
for name, front in (("none", []), ("shift", [RandomShift(0.1, seed=1)]),
                    ("zoom", [augmentation_layers(seed=1)])):
    model = keras.Sequential([keras.Input((side, side, 3)), *front,
                              small_image_cnn((side, side), 10)])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # compiles
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        times.append(1e3 * (time.perf_counter() - start) / steps)
    out[name] = {"ms": times, "jit_compile": bool(model.jit_compile)}
print(json.dumps(out))
"""


def augment_step_study(rounds: int, side: int = 64, steps: int = 8,
                       backends: list[str] | None = None) -> dict:
    """Train-step time of a small CNN with no augmentation, with ``RandomShift`` and with
    Keras' ``RandomZoom`` + ``RandomFlip`` in front, on every installed backend (a child
    process each): Keras' zoom turns ``jit_compile`` off for the whole step."""
    from helpers.backends import installed_backends

    root = str(Path(__file__).resolve().parents[1])
    out: dict = {}
    for backend in backends or installed_backends():
        env = os.environ | {"KERAS_BACKEND": backend, "PYTHONPATH": root + os.pathsep
                            + os.environ.get("PYTHONPATH", "")}
        done = subprocess.run([sys.executable, "-c", _STEP_TIMES, str(side), str(BATCH),
                               str(steps), str(rounds)], capture_output=True, text=True,
                              env=env)
        if done.returncode:
            print(f"  {backend}: failed\n{done.stderr[-800:]}", flush=True)
            continue
        times = json.loads(done.stdout.strip().splitlines()[-1])
        for name, row in times.items():
            jit = "jit" if row["jit_compile"] else "no jit"
            out[f"feed.augment_step.{backend}.{name}"] = spread(
                row["ms"], "ms", f"a train step of the small CNN on {BATCH} images of "
                f"{side}x{side} px, augmentation: {name} ({backend}, jit_compile "
                f"{row['jit_compile']})")
            print(f"  {backend:<11}{name:<6}{statistics.median(row['ms']):8.1f} ms a step "
                  f"({jit})", flush=True)
        out[f"feed.augment_step.{backend}.zoom_vs_shift"] = spread(
            [z / s for z, s in zip(times["zoom"]["ms"], times["shift"]["ms"], strict=True)],
            "x", f"step time with Keras' RandomZoom + RandomFlip against RandomShift "
            f"({backend})")
    return out


WHERE = {"cpu": "in the loader (CPU: crop 80-100 % of each side, resize back, flip)",
         "model": "in the model (RandomShift: shift up to 10 % of a side, flip)"}


def learning_study(folder: Path, val_folder: Path, work: Path, rounds: int,
                   epochs: int) -> dict:
    """Validation accuracy after ``epochs`` epochs, augmentation on the CPU (in the loader)
    or in the model, ``rounds`` seeds each: does the model learn the same?"""
    from helpers.image_loaders import small_image_cnn

    train = build_image_cache(folder, work / "cache", SIZE, progress=False)
    val = build_image_cache(val_folder, work / "val-cache", SIZE, progress=False)
    accuracy: dict = {"cpu": [], "model": []}
    for seed in range(rounds):
        for where in accuracy:
            keras.utils.set_random_seed(seed)
            layers = [keras.Input((*SIZE, 3))]
            if where == "model":
                layers.append(RandomShift(0.1, seed=seed))
            model = keras.Sequential([*layers, small_image_cnn(SIZE, len(train.class_names))])
            model.compile(optimizer=keras.optimizers.Adam(learning_rate=2e-3),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            data = CachedImageDataset(train, BATCH, seed=seed, augment=where == "cpu")
            model.fit(data, epochs=epochs, verbose=0)
            accuracy[where].append(float(model.evaluate(
                CachedImageDataset(val, BATCH, shuffle=False), verbose=0)[1]))
        print(f"  seed {seed}: validation accuracy after {epochs} epochs, augmentation on the "
              f"CPU {accuracy['cpu'][-1]:.3f}, in the model {accuracy['model'][-1]:.3f}",
              flush=True)
    return {f"feed.learning.{where}.val_accuracy": spread(
        values, "accuracy", f"validation accuracy of the small CNN after {epochs} epochs on "
        f"the stand-in, augmentation {WHERE[where]}, one value per seed")
        for where, values in accuracy.items()}


def tf_data_study(folder: Path, rounds: int, batches: int) -> dict:
    """image_dataset_from_directory: images per CPU-second with and without ``cache()``;
    ``prefetch()`` on a one-thread decoding pipeline, against a simulated 20 ms step."""
    try:
        import tensorflow as tf
    except ImportError:
        print("  tf.data: skipped (TensorFlow is not installed)", flush=True)
        return {}
    from helpers.images import list_image_files

    step = 0.02
    paths = list_image_files(folder)[0][:batches * BATCH]

    def from_directory(cache: bool):
        ds = keras.utils.image_dataset_from_directory(folder, image_size=SIZE, batch_size=BATCH,
                                                      seed=0, verbose=False).take(batches)
        return ds.cache() if cache else ds

    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return tf.image.resize(image, SIZE)

    def one_thread(prefetch: bool):
        # By default tf.data rewrites a pipeline to work ahead of its consumer (a parallel map,
        # an injected prefetch, autotuned buffers): all off, so that only prefetch() differs.
        options = tf.data.Options()
        options.experimental_optimization.apply_default_optimizations = False
        options.autotune.enabled = False
        ds = tf.data.Dataset.from_tensor_slices(paths).map(decode).batch(BATCH)  # one thread
        ds = ds.prefetch(2) if prefetch else ds  # two batches ahead
        return ds.with_options(options)

    def epoch(ds, train_step: float) -> tuple[float, float]:
        c0, w0, n = time.process_time(), time.perf_counter(), 0
        for x, *_ in ds:
            n += int(x.shape[0])
            if train_step:
                time.sleep(train_step)
        return n / (time.process_time() - c0), time.perf_counter() - w0

    cpu = {"plain": [], "cached": []}
    walls = {"load_alone": [], "no_prefetch": [], "prefetch": []}
    for _ in range(rounds):
        cpu["plain"].append(epoch(from_directory(False), 0)[0])
        cached = from_directory(True)
        epoch(cached, 0)  # the first epoch decodes and fills the cache
        cpu["cached"].append(epoch(cached, 0)[0])
        walls["load_alone"].append(epoch(one_thread(False), 0)[1])
        for name, pre in (("no_prefetch", False), ("prefetch", True)):
            walls[name].append(epoch(one_thread(pre), step)[1])
    out: dict = {}
    for name, values in cpu.items():
        which = ".cache(), second epoch" if name == "cached" else ""
        out[f"feed.tfdata.{name}.rate"] = spread(
            values, PER_CORE, f"image_dataset_from_directory{which} (CPU time of all of "
            "tf.data's threads)")
    what = {"load_alone": "decoding alone, no step",
            "no_prefetch": f"each batch followed by a {step * 1e3:.0f} ms simulated step",
            "prefetch": "the same with prefetch(2)"}
    for name, values in walls.items():
        out[f"feed.tfdata.{name}.epoch"] = spread(
            values, "s", f"{batches} batches decoded by a one-thread tf.data map: {what[name]}")
    out["feed.tfdata.cache_speedup"] = spread(
        [c / p for c, p in zip(cpu["cached"], cpu["plain"], strict=True)], "x",
        "image_dataset_from_directory: images per CPU-second, cache() second epoch vs none")
    out["feed.tfdata.steps_alone"] = spread([batches * step] * rounds, "s",
                                            "the simulated steps alone")
    print(f"  tf.data: {statistics.median(cpu['plain']):,.0f} -> "
          f"{statistics.median(cpu['cached']):,.0f} images per CPU-second with cache(); "
          f"decode alone {statistics.median(walls['load_alone']):.2f} s, steps alone "
          f"{batches * step:.2f} s; together {statistics.median(walls['no_prefetch']):.2f} s, "
          f"with prefetch() {statistics.median(walls['prefetch']):.2f} s", flush=True)
    return out


# ---------------------------------------------------------------------------------------
# The table

RUNGS = {"cifar_cnn": [("per-sample, CPU augmentation", "cifar.augment_cpu"),
                       ("memory-mapped, augmentation in the model", "cifar.plain"),
                       ("resident on the device", "cifar.resident")],
         "resnet50_160": [("decode + augment every epoch", "folder.decode_augment"),
                          ("decoded once, CPU augmentation", "cache.augment_cpu"),
                          ("decoded once, augmentation in the model", "cache.uint8"),
                          ("tf.data, decode every epoch", "tfdata.plain"),
                          ("tf.data, cache()", "tfdata.cached"),
                          ("resident on the device", "resident.images")]}


def cores_needed(results: dict) -> dict:
    """``feed.cores.<gpu>.<rung>``: the cores a rung needs to keep a GPU busy, per round."""
    out = {}
    for gpu in GPU_RATES:
        for _label, key in RUNGS[gpu["workload"]]:
            if f"feed.{key}.rate" not in results:
                continue  # tf.data without TensorFlow
            rates = results[f"feed.{key}.rate"]["values"]
            out[f"feed.cores.{gpu['gpu']}.{key}"] = spread(
                [gpu["rate"] / r for r in rates], "cores",
                f"CPU cores the rung {key} needs to feed a {gpu['gpu']} at {gpu['rate']:,} "
                f"images/s ({gpu['kind']}), from its per-core rate in each round")
    return out


def table(results: dict) -> list[dict]:
    """Cores each rung needs to keep each GPU busy, from per-core rates and GPU_RATES."""
    rows = []
    for gpu in GPU_RATES:
        for label, key in RUNGS[gpu["workload"]]:
            if f"feed.{key}.rate" not in results:
                continue
            per_core_rate = results[f"feed.{key}.rate"]["median"]
            cores = gpu["rate"] / per_core_rate
            verdict = ("fed" if cores <= COLAB_LOADER_CORES else
                       "tight" if cores <= 2 * COLAB_LOADER_CORES else "waits")
            rows.append({"gpu": gpu["gpu"], "workload": gpu["workload"], "rung": label,
                         "gpu_rate": gpu["rate"], "gpu_rate_kind": gpu["kind"],
                         "per_core_rate": round(per_core_rate), "cores_needed": cores,
                         "colab_2_vcpu": verdict})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"\n{'GPU':<5}{'workload':<14}{'rung':<44}{'GPU img/s':>11}{'per core':>10}"
          f"{'cores':>9}  Colab (2 vCPU)")
    for r in rows:
        print(f"{r['gpu']:<5}{r['workload']:<14}{r['rung']:<44}"
              f"{r['gpu_rate']:>8,} {r['gpu_rate_kind'][:3]:<3}{r['per_core_rate']:>9,}"
              f"{r['cores_needed']:>9.2f}  {r['colab_2_vcpu']}")


# ---------------------------------------------------------------------------------------
# Model part: epochs through fit() per rung, on the GPU where there is one

class GpuBusy:
    """Samples ``nvidia-smi``'s utilization.gpu every 100 ms while the block runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._proc = None
        self._thread = None

    def __enter__(self) -> GpuBusy:
        if shutil.which("nvidia-smi"):
            self._proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 "-lms", "100", "-i", "0"], stdout=subprocess.PIPE, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            with contextlib.suppress(ValueError):
                self.samples.append(float(line.strip()))

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait()
            self._thread.join(timeout=2)

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


def cifar_model(augment: bool, resident: np.ndarray | None = None) -> keras.Model:
    """The article's CIFAR-10 CNN (helpers.models), with in-model augmentation in front."""
    from helpers.models import article_cifar_cnn

    core = article_cifar_cnn()
    return _wrap(core, (32, 32, 3), augment, resident)


def resnet_model(augment: bool, resident: np.ndarray | None = None,
                 tiny: bool = False) -> keras.Model:
    """ResNet-50 (random weights) for 10 classes at 160 px; ``tiny``: a two-layer stand-in
    that only exercises the code (the unit tests)."""
    if tiny:
        core = keras.Sequential([keras.layers.AveragePooling2D(8), keras.layers.Flatten(),
                                 keras.layers.Dense(10, activation="softmax")])
    else:
        core = keras.applications.ResNet50(weights=None, input_shape=(*SIZE, 3), classes=10)
    return _wrap(core, (*SIZE, 3), augment, resident)


def _wrap(core: keras.Model, shape: tuple, augment: bool,
          resident: np.ndarray | None) -> keras.Model:
    if resident is not None:
        inputs = keras.Input((), dtype="int32")
        x = ResidentImages(resident)(inputs)
    else:
        inputs = keras.Input(shape)
        x = inputs
    if augment:
        x = RandomShift(0.1, seed=0)(x)
    x = keras.layers.Rescaling(1 / 255)(x)
    model = keras.Model(inputs, core(x))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy")
    return model


def timed_epoch(model: keras.Model, data, **fit_kwargs) -> dict:
    """One warm-up epoch (compilation), then one timed epoch with the GPU sampled."""
    model.fit(data, epochs=1, verbose=0, **fit_kwargs)
    with GpuBusy() as busy:
        t0 = time.perf_counter()
        model.fit(data, epochs=1, verbose=0, **fit_kwargs)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "gpu_busy": busy.mean}


def model_study(folder: Path, cifar: Path, work: Path, workers: int, tiny: bool) -> dict:
    out: dict = {}
    kw = {"workers": workers, "use_multiprocessing": True, "max_queue_size": 4 * workers}
    seq = CIFAR10Sequence(cifar, batch_size=CIFAR_BATCH, seed=0, label_mode="int",
                          cache_dir=work / "cifar-cache")
    x_cifar = np.load(seq.images_path)
    y_cifar = seq.labels.astype(np.int32)
    cache = build_image_cache(folder, work / "cache", SIZE, progress=False)
    x_img, y_img = np.asarray(cache.images), cache.labels
    runs = {
        "cifar_cnn": (cifar_model, x_cifar, y_cifar, CIFAR_BATCH, {
            "per_sample_cpu_augment": lambda: CIFAR10Sequence(
                cifar, batch_size=CIFAR_BATCH, seed=0, augment=True, label_mode="int",
                cache_dir=work / "cifar-cache", **kw),
            "memmap_model_augment": lambda: CIFAR10Sequence(
                cifar, batch_size=CIFAR_BATCH, seed=0, label_mode="int",
                cache_dir=work / "cifar-cache", **kw),
        }),
        "resnet50_160": (lambda *a, **k: resnet_model(*a, **k, tiny=tiny), x_img, y_img, BATCH, {
            "decode_every_epoch": lambda: ImageFolderDataset(
                folder, SIZE, BATCH, seed=0, augment=True, **kw),
            "cache_model_augment": lambda: CachedImageDataset(
                cache, BATCH, seed=0, dtype="uint8", **kw),
        }),
    }
    for workload, (build, x, y, batch, loaders) in runs.items():
        base = timed_epoch(build(True), x, y=y, batch_size=batch, shuffle=True)
        rows = {"in_memory": base}
        for name, make in loaders.items():
            augment = name.endswith("model_augment")
            rows[name] = timed_epoch(build(augment), make())
        rows["resident"] = timed_epoch(build(True, resident=x),
                                       IndexBatches(y, batch, seed=0))
        for name, row in rows.items():
            row["samples_per_s"] = len(y) / row["seconds"]
            row["vs_in_memory"] = row["seconds"] / base["seconds"]
            busy = "n/a" if row["gpu_busy"] is None else f"{row['gpu_busy']:.0f} %"
            print(f"  {workload:<14}{name:<26}{row['seconds']:>8.2f} s"
                  f"{row['samples_per_s']:>10,.0f}/s{row['vs_in_memory']:>7.2f}x  GPU {busy}",
                  flush=True)
        out[workload] = rows
    return out


# ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=960,
                        help="images per class of the image folder (Imagenette: about 950)")
    parser.add_argument("--cifar-per-batch", type=int, default=10_000,
                        help="images per CIFAR-10 batch file (5 files; 10,000 is the real size)")
    parser.add_argument("--batches", type=int, default=24, help="batches timed per round")
    parser.add_argument("--epochs", type=int, default=4,
                        help="epochs of each training run that compares where augmentation runs")
    parser.add_argument("--tiny", action="store_true", help="a smoke test in seconds")
    parser.add_argument("--models", action="store_true",
                        help="train the models even without a GPU (slow; tests use --tiny)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.tiny:
        args.per_class, args.cifar_per_batch, args.batches, args.epochs = 40, 600, 2, 1
    if args.rounds < 3:
        parser.error("--rounds must be >= 3: a figure needs its spread")
    load_before = list(os.getloadavg())
    root = args.data_dir or data_root()
    with tempfile.TemporaryDirectory(dir=root if root.is_dir() else None) as tmp:
        work = Path(tmp)
        folder = image_folder(root, args.per_class)
        small = image_folder(root, max(args.per_class // 8, 2), val_per_class=1)
        cifar = cifar_folder(root, args.cifar_per_batch)
        batches = min(args.batches, 10 * args.per_class // BATCH - 2)
        started = time.perf_counter()
        results = loader_study(folder, cifar, work, args.rounds, batches)
        results |= build_study(folder, work, args.rounds)
        results |= memory_study(small, folder, work, args.rounds)
        results |= tf_data_study(folder, args.rounds, batches)
        results |= learning_study(folder, folder.parent / "val", work, args.rounds, args.epochs)
        results |= augment_step_study(args.rounds, steps=2 if args.tiny else 8, backends=(
            [keras.backend.backend()] if args.tiny else None))
        gpus = provenance(args, load_before)["gpus"]
        models = None
        if gpus or args.models:
            models = model_study(folder, cifar, work, args.workers, args.tiny)
        else:
            print("model part: skipped (no GPU found; --models runs it anyway)", flush=True)
    results |= cores_needed(results)
    rows = table(results)
    print_table(rows)
    meta = provenance(args, load_before)
    meta["command"] = "python benchmarks/feed_gpu.py " + " ".join(argv or sys.argv[1:])
    meta |= {"load_average_after": list(os.getloadavg()),
             "seconds": round(time.perf_counter() - started),
             "images": 10 * args.per_class, "image_size": list(SIZE), "batch": BATCH,
             "cifar_images": 5 * args.cifar_per_batch, "cifar_batch": CIFAR_BATCH}
    report = {"provenance": meta, "results": dict(sorted(results.items())),
              "gpu_rates": GPU_RATES, "table": rows, "models": models}
    out = args.out or RESULTS / f"reference_feed_{'gpu' if gpus else 'cpu'}.json"
    if not args.tiny or args.out:
        write_text_atomic(out, json.dumps(report, indent=1) + "\n")
        print(f"written: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return report


if __name__ == "__main__":
    main()
