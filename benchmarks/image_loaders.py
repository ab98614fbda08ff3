"""Image loaders on a folder of JPEG files (the Imagenette stand-in): what each costs.

1. Cost per image (Pillow, OpenCV where installed, TensorFlow's ``decode_image`` where
   installed), and whether each decoder releases the GIL: the same in-memory files decoded
   by 1 then 2 threads, wall time and process CPU time, beside pure-Python work (which
   holds the GIL) and SHA-256 hashing (which releases it).
2. Loader alone and through ``fit()``, samples/s, per loader: image_dataset_from_directory,
   ImageFolderDataset (1 worker; 2 threads; 2 processes; with Pillow and with OpenCV),
   tf.data, Grain (threads, processes), PyTorch DataLoader (2 spawned, persistent workers);
   peak anonymous memory. On a stand-in the size of Imagenette's training set (950 images a
   class): Keras' PyDataset adapter pays about 0.1 s at each epoch's end when it stops
   its workers (``OrderedEnqueuer.stop`` waits on its queue with ``timeout=0.1``), which
   a short epoch would count many times over.
   Targets on 2 cores: the best loader >= 1.7x the single-worker PyDataset (Pillow, the
   default); the course's PyDataset (best setting) within 1.25x of the best loader.
3. Memory when the folder grows 8x (40 to 320 images a class): peak anonymous memory
   (RssAnon of the process plus its workers' USS) over one epoch, per loader. Target:
   <= 10% growth.

Each loader figure is the best of ``--rounds`` epochs (the least disturbed by other work).

    python benchmarks/image_loaders.py [--rounds 2] [--per-class 950] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import importlib.util
import io
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from helpers import c_stderr_silenced  # noqa: E402

with c_stderr_silenced():  # TensorFlow's C++ start-up notes
    import keras

import numpy as np  # noqa: E402

from helpers import (  # noqa: E402
    MB,
    ImageFolderDataset,
    data_root,
    fit_rate,
    grain_loader,
    keras_image_dataset,
    list_image_files,
    load_image,
    loader_rate,
    measure_model,
    small_image_cnn,
    tf_data_loader,
    thread_scaling,
    torch_loader,
    write_imagenette_like,
)

FOLDER_NAME = "imagenette2-160"
SIZE = (160, 160)
BATCH = 32


def standin(root: Path, per_class: int) -> Path:
    """The stand-in's train folder with ``per_class`` images per class (written once)."""
    folder = root / f"standin-{per_class}-1" / FOLDER_NAME
    if not (folder / "train").is_dir():
        print(f"  writing a stand-in with {10 * per_class:,} training images ...")
        write_imagenette_like(folder, train_per_class=per_class, val_per_class=1, seed=0)
    return folder / "train"


def available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def loaders(directory: Path, seed: int = 0) -> dict[str, callable]:
    """name -> function making a fresh loader over ``directory`` (installed ones only).

    The PyTorch loader's workers persist: its measurements reuse one loader (``REUSED``).
    """
    paths, labels, _ = list_image_files(directory)
    out = {}
    settings = [("pillow", "1 worker", {}), ("pillow", "2 threads", {"workers": 2}),
                ("pillow", "2 processes", {"workers": 2, "use_multiprocessing": True})]
    if available("cv2"):
        settings += [("opencv", "1 worker", {}), ("opencv", "2 threads", {"workers": 2})]
    for decoder, how, kw in settings:
        tag = "" if decoder == "pillow" else " (OpenCV)"
        out[f"PyDataset{tag}, {how}"] = (
            lambda kw=kw, decoder=decoder: ImageFolderDataset(
                directory, SIZE, BATCH, seed=seed, decoder=decoder, **kw))
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


REUSED = ("torch DataLoader, 2 workers",)
"""Loaders whose workers start once and serve every epoch (persistent_workers)."""


def quiet(name: str):
    """Silence C-level stderr where worker processes start (each imports TensorFlow)."""
    spawns = "processes" in name or name in REUSED
    return c_stderr_silenced() if spawns else contextlib.nullcontext()


def _python_work(raw: bytes) -> int:
    """Pure-Python work of about a decode's length: it holds the GIL throughout."""
    return sum(b * b for b in raw[:20000])


def _hash_work(raw: bytes) -> bytes:
    """C work known to release the GIL (hashlib does for inputs over 2 KiB)."""
    return hashlib.sha256(raw * 16).digest()


def _decode(raw: bytes):
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as img:
        img.load()
    return img


def _decode_opencv(raw: bytes):
    import cv2

    return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)


def _per_image_ms(fn, items, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t)
    return best / len(items) * 1e3


def decode_costs(directory: Path, n: int = 200) -> None:
    """Per-image cost of read / decode / resize with Pillow, and GIL release."""
    from PIL import Image

    paths = list_image_files(directory)[0][:n]
    raws = [Path(p).read_bytes() for p in paths]
    decoded = [_decode(r).convert("RGB") for r in raws]
    read = _per_image_ms(lambda p: Path(p).read_bytes(), paths)
    decode = _per_image_ms(_decode, raws)
    resize = _per_image_ms(lambda im: im.resize(SIZE[::-1], Image.Resampling.BILINEAR),
                           decoded)
    whole = _per_image_ms(lambda p: load_image(p, SIZE), paths)
    print(f"  Pillow, per image: read {read:.3f} ms, decode {decode:.3f} ms, "
          f"resize {resize:.3f} ms; load_image (all three) {whole:.3f} ms")
    if available("cv2"):
        cv_decode = _per_image_ms(_decode_opencv, raws)
        cv_whole = _per_image_ms(lambda p: load_image(p, SIZE, decoder="opencv"), paths)
        print(f"  OpenCV, per image: decode {cv_decode:.3f} ms; "
              f"load_image(decoder='opencv') {cv_whole:.3f} ms")
    if available("tensorflow"):
        import tensorflow as tf

        ms = _per_image_ms(lambda r: tf.image.resize(
            tf.io.decode_image(r, channels=3, expand_animations=False), SIZE), raws, 2)
        print(f"  tf.io.decode_image + tf.image.resize, eager, per image: {ms:.3f} ms")
    work = {"Pillow decode": _decode, "pure Python (holds the GIL)": _python_work,
            "sha256 (releases the GIL)": _hash_work}
    if available("cv2"):
        work["OpenCV decode"] = _decode_opencv
    scaling = {label: thread_scaling(fn, raws) for label, fn in work.items()}
    for label, r in scaling.items():
        print(f"  {label:<28}: 2 threads {r.speedup:.2f}x 1 thread; cores busy "
              f"{r.busy_1:.2f} -> {r.busy_2:.2f}")
    py, sha = scaling["pure Python (holds the GIL)"], scaling["sha256 (releases the GIL)"]
    for label in [k for k in scaling if k.endswith("decode")]:
        frac = scaling[label].released_fraction(py, sha)
        print(f"  -> {label}: " + (
            "no spare core for the second thread: the GIL test is inconclusive"
            if frac is None else f"used {frac:.0%} of the second core that GIL-free work "
            "used: it " + ("releases" if frac > 0.5 else "does not release") + " the GIL")
            + f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=950,
                        help="training images per class for the loaders' speed (part 2)")
    parser.add_argument("--memory-per-class", type=int, default=40,
                        help="images per class of the smaller folder of part 3")
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
    batches = [ImageFolderDataset(small, SIZE, BATCH, seed=0)[i] for i in range(4)]
    alone = measure_model(model, batches, epochs=args.rounds)
    print(f"  the model alone (fit on in-memory arrays): {alone:,.0f} samples/s")
    rates, fits, mem = {}, {}, {}
    for name, make in loaders(small).items():
        reuse = name in REUSED
        with quiet(name):
            rates[name], mem[name] = loader_rate(make, args.rounds, reuse=reuse)
        line = f"  {name:<32} alone {rates[name]:7,.0f} samples/s"
        if not args.skip_fit:
            with quiet(name):
                fits[name] = fit_rate(model, make, n, BATCH, args.rounds, reuse=reuse)
            line += (f" | fit() {fits[name]:6,.0f} samples/s, bottleneck ratio "
                     f"{alone / fits[name]:.2f}")
        print(line + f" | peak anon {mem[name] / MB:,.0f} MiB")
        gc.collect()
    for how, r in (("alone", rates), ("through fit()", fits)):
        if not r:
            continue
        base, best_name = r["PyDataset, 1 worker"], max(r, key=r.get)
        ours = max((v, k) for k, v in r.items() if k.startswith("PyDataset"))
        print(f"  {how}: best loader {best_name}, {r[best_name] / base:.2f}x the single-worker "
              f"PyDataset (target >= 1.7x: {'met' if r[best_name] / base >= 1.7 else 'NOT met'})"
              f"; best PyDataset setting {ours[1]}, best loader / it = "
              f"{r[best_name] / ours[0]:.2f}x (target <= 1.25x: "
              f"{'met' if r[best_name] / ours[0] <= 1.25 else 'NOT met'})")

    small = standin(root, args.memory_per_class)
    n = len(list_image_files(small)[0])
    big = standin(root, args.memory_per_class * args.growth)
    n_big = len(list_image_files(big)[0])
    print(f"3. Peak anonymous memory, {n} vs {n_big} images ({args.growth}x), one epoch "
          "each, measured back to back after a warm-up epoch")
    worst = 0.0
    small_makers, big_makers = loaders(small), loaders(big)
    for name, make in small_makers.items():
        reuse = name in REUSED
        with quiet(name):
            loader_rate(make, 1, reuse=reuse)  # warm-up: first-use allocations are not growth
            _, before = loader_rate(make, 1, reuse=reuse)
            _, after = loader_rate(big_makers[name], 1, reuse=reuse)
        growth = after / before - 1
        worst = max(worst, growth)
        print(f"  {name:<32} {before / MB:7,.0f} -> {after / MB:7,.0f} MiB ({growth:+.1%})")
        gc.collect()
    print(f"  largest growth {worst:+.1%} (target <= 10%: {'met' if worst <= 0.10 else 'NOT met'})")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
