"""Issue 11's figures: image loaders on a folder of JPEG files (the Imagenette stand-in).

1. Decode cost per image (Pillow; and TensorFlow's ``decode_image`` where installed), and
   whether Pillow's decode releases the GIL (2 threads vs 1 on the same files).
2. Loader alone and through ``fit()``, samples/s, per loader: image_dataset_from_directory,
   ImageFolderDataset (1 worker; 2 threads; 2 processes), tf.data, Grain (threads,
   processes), PyTorch DataLoader; peak anonymous memory of each.
   Targets on 2 cores: best loader >= 1.7x the single-worker PyDataset; ImageFolderDataset
   (best setting) within 1.25x of the best loader.
3. Memory when the folder grows 8x: peak anonymous memory (RssAnon of the process and its
   workers) over one epoch, per loader. Target: <= 10% growth.

Each loader figure is the best of ``--rounds`` epochs (the least disturbed by other work).

    python benchmarks/image_loaders.py [--rounds 2] [--per-class 40] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from helpers.course import data_root  # noqa: E402
from helpers.image_loaders import (  # noqa: E402
    MB,
    available,
    c_stderr_silenced,
    fit_rate,
    grain_loader,
    keras_image_dataset,
    loader_rate,
    model_rate,
    small_image_cnn,
    tf_data_loader,
    torch_loader,
)
from helpers.imagenette import FOLDER_NAME, write_imagenette_like  # noqa: E402
from helpers.images import ImageFolderDataset, list_image_files, load_image  # noqa: E402

SIZE = (160, 160)
BATCH = 32


def standin(root: Path, per_class: int) -> Path:
    """The stand-in's train folder with ``per_class`` images per class (written once)."""
    folder = root / f"standin-{per_class}-1" / FOLDER_NAME
    if not (folder / "train").is_dir():
        print(f"  writing a stand-in with {10 * per_class:,} training images ...")
        write_imagenette_like(folder, train_per_class=per_class, val_per_class=1, seed=0)
    return folder / "train"


def loaders(directory: Path, seed: int = 0) -> dict[str, callable]:
    """name -> function making a fresh loader over ``directory`` (installed ones only)."""
    paths, labels, _ = list_image_files(directory)
    out = {
        "PyDataset, 1 worker": lambda: ImageFolderDataset(
            directory, SIZE, BATCH, seed=seed),
        "PyDataset, 2 threads": lambda: ImageFolderDataset(
            directory, SIZE, BATCH, seed=seed, workers=2),
        "PyDataset, 2 processes": lambda: ImageFolderDataset(
            directory, SIZE, BATCH, seed=seed, workers=2, use_multiprocessing=True),
    }
    if available("tensorflow"):
        out["image_dataset_from_directory"] = lambda: keras_image_dataset(
            directory, SIZE, BATCH, seed)
        out["tf.data (AUTOTUNE)"] = lambda: tf_data_loader(paths, labels, SIZE, BATCH, seed)
    if available("grain"):
        out["Grain, 2 threads"] = lambda: grain_loader(paths, labels, SIZE, BATCH, seed,
                                                       threads=2)
        out["Grain, 2 processes"] = lambda: grain_loader(paths, labels, SIZE, BATCH, seed,
                                                         processes=2)
    if available("torch"):
        out["torch DataLoader, 2 workers"] = lambda: torch_loader(paths, labels, SIZE, BATCH,
                                                                  seed, workers=2)
    return out


def decode_costs(directory: Path, n: int = 200) -> None:
    """Per-image cost of read / decode / resize with Pillow, and GIL release."""
    from PIL import Image

    paths = list_image_files(directory)[0][:n]
    t = time.perf_counter()
    raws = [Path(p).read_bytes() for p in paths]
    read = (time.perf_counter() - t) / n
    import io

    t = time.perf_counter()
    decoded = []
    for raw in raws:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            decoded.append(img.convert("RGB"))
    decode = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for img in decoded:
        img.resize(SIZE[::-1], Image.Resampling.BILINEAR)
    resize = (time.perf_counter() - t) / n
    print(f"  Pillow, per image: read {read * 1e3:.3f} ms, decode {decode * 1e3:.3f} ms, "
          f"resize {resize * 1e3:.3f} ms")
    if available("tensorflow"):
        import tensorflow as tf

        t = time.perf_counter()
        for raw in raws:
            tf.image.resize(tf.io.decode_image(raw, channels=3, expand_animations=False), SIZE)
        print(f"  tf.io.decode_image + tf.image.resize, eager, per image: "
              f"{(time.perf_counter() - t) / n * 1e3:.3f} ms")
    one, busy_one = _time(lambda: [load_image(p, SIZE) for p in paths])
    with ThreadPoolExecutor(2) as pool:
        two, busy_two = _time(lambda: list(pool.map(lambda p: load_image(p, SIZE), paths)))
    print(f"  load_image on {n} files: 1 thread {n / one:,.0f} images/s, 2 threads "
          f"{n / two:,.0f} images/s ({one / two:.2f}x); CPU time / wall time: "
          f"{busy_one:.2f} cores with 1 thread, {busy_two:.2f} with 2 (more cores busy with "
          "2 threads only if the decoder releases the GIL)")


def _time(fn, rounds: int = 3) -> tuple[float, float]:
    """Best wall time of ``fn`` over ``rounds``, and the process's CPU time / wall time then."""
    best, busy = float("inf"), 0.0
    for _ in range(rounds):
        t, cpu = time.perf_counter(), time.process_time()
        fn()
        wall = time.perf_counter() - t
        if wall < best:
            best, busy = wall, (time.process_time() - cpu) / wall
    return best, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=40, help="training images per class")
    parser.add_argument("--growth", type=int, default=8, help="folder growth for memory")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--skip-fit", action="store_true")
    args = parser.parse_args()
    root = args.data_dir or data_root() / "imagenette"
    print(f"{os.cpu_count()} CPU cores; Keras {keras.__version__} "
          f"({keras.backend.backend()}); load average {os.getloadavg()[0]:.2f}")
    small = standin(root, args.per_class)
    n = len(list_image_files(small)[0])

    print(f"1. Cost per image ({SIZE[0]}x{SIZE[1]} output, stand-in JPEG/PNG files)")
    decode_costs(small)

    print(f"2. Loaders on {n} images, batch {BATCH}, best of {args.rounds} epochs")
    model = small_image_cnn(SIZE, 10)
    alone = model_rate(model, SIZE, BATCH, n, args.rounds)
    print(f"  the model alone (fit on in-memory arrays): {alone:,.0f} samples/s")
    rates, fits, mem = {}, {}, {}
    for name, make in loaders(small).items():
        quiet = c_stderr_silenced() if "processes" in name else contextlib.nullcontext()
        with quiet:
            rates[name], mem[name] = loader_rate(make, args.rounds)
        line = f"  {name:<30} alone {rates[name]:7,.0f} samples/s"
        if not args.skip_fit:
            with quiet:
                fits[name] = fit_rate(model, make, n, BATCH, args.rounds)
            line += (f" | fit() {fits[name]:6,.0f} samples/s, bottleneck ratio "
                     f"{alone / fits[name]:.2f}")
        print(line + f" | peak anon {mem[name] / MB:,.0f} MiB")
        gc.collect()
    base = rates["PyDataset, 1 worker"]
    best_name = max(rates, key=rates.get)
    ours = max((v, k) for k, v in rates.items() if k.startswith("PyDataset"))
    print(f"  best loader: {best_name}, {rates[best_name] / base:.2f}x the single-worker "
          f"PyDataset (target >= 1.7x: {'met' if rates[best_name] / base >= 1.7 else 'NOT met'})")
    print(f"  best PyDataset setting: {ours[1]}, best loader / it = "
          f"{rates[best_name] / ours[0]:.2f}x (target <= 1.25x: "
          f"{'met' if rates[best_name] / ours[0] <= 1.25 else 'NOT met'})")

    big = standin(root, args.per_class * args.growth)
    n_big = len(list_image_files(big)[0])
    print(f"3. Peak anonymous memory, {n} vs {n_big} images ({args.growth}x), one epoch "
          "each, measured back to back after a warm-up epoch")
    worst = 0.0
    small_makers, big_makers = loaders(small), loaders(big)
    for name, make in small_makers.items():
        with c_stderr_silenced() if "processes" in name else contextlib.nullcontext():
            loader_rate(make, 1)  # warm-up: first-use allocations are not growth
            _, before = loader_rate(make, 1)
            _, after = loader_rate(big_makers[name], 1)
        growth = after / before - 1
        worst = max(worst, growth)
        print(f"  {name:<30} {before / MB:7,.0f} -> {after / MB:7,.0f} MiB ({growth:+.1%})")
        gc.collect()
    print(f"  largest growth {worst:+.1%} (target <= 10%: {'met' if worst <= 0.10 else 'NOT met'})")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
