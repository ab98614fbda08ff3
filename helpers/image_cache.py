"""Decode an image folder once into a uint8 memory-mapped cache, then serve epochs from it.

Decoding a JPEG costs far more than reading its pixels back: ``ImageFolderDataset`` pays
that cost for every image in every epoch. ``build_image_cache`` pays it once: it decodes
and resizes every image of ``directory/<class>/<file>`` (with ``helpers.decode.load_image``,
so ``images[k]`` is exactly what ``load_image(file_paths[k], image_size)`` returns) into
``images.npy``, a uint8 array of shape ``(N, height, width, 3)`` that later runs open
memory-mapped: the operating system keeps in RAM the pages it has room for, and each
process's anonymous memory does not grow with the dataset. ``CachedImageDataset`` is the
``PyDataset`` over it. It is notebook 04's CIFAR-10 technique brought to JPEG folders.

The cache folder holds ``images.npy``, ``labels.npy`` and ``manifest.json`` (what was
decoded: the folder, every file with its size and modification time, the image size and the
decoder). It is written whole or not at all (a temporary sibling folder renamed into place),
reused while the folder is unchanged, rebuilt (or, with ``if_changed="raise"``, refused)
when a file was added, removed or modified, and never written into a folder holding files
it did not write.

It needs numpy, Keras, Pillow, the standard library and, beside it, ``images.py`` (the file
listing Keras uses), ``decode.py`` and ``generator.py`` (epoch order, sharding): copy the
four into a package of your project.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np

from .decode import DECODERS, load_image
from .generator import check_start_batch, epoch_order, resolve_seed, shard_rows, shard_size
from .images import CROP_SCALE, list_image_files

__all__ = ["MANIFEST", "CachedImageDataset", "ImageCache", "build_image_cache"]

MANIFEST = "manifest.json"
"""The file that marks a folder as a cache this module wrote, and says what it holds."""
_FORMAT = "helpers.image_cache/1"
_FILES = ("images.npy", "labels.npy", MANIFEST)
_IF_CHANGED = ("rebuild", "raise")


def _listing(directory: Path) -> tuple[list[str], np.ndarray, list[str], list[list[int]]]:
    """``(file_paths, labels, class_names, [[size, mtime_ns] per file])`` of ``directory``."""
    file_paths, labels, class_names = list_image_files(directory)
    if not file_paths:
        raise FileNotFoundError(f"{directory}: no image files (.jpg, .jpeg, .png) in its "
                                f"class folders {class_names}")
    stats = []
    for path in file_paths:
        st = os.stat(path)
        stats.append([st.st_size, st.st_mtime_ns])
    return file_paths, labels, class_names, stats


def _relative(file_paths: list[str], directory: Path) -> list[str]:
    return [Path(p).relative_to(directory).as_posix() for p in file_paths]


def _what_changed(old: dict, files: list[str], stats: list[list[int]]) -> str:
    """'3 added, 1 removed, 2 modified (e.g. cat/b.jpg)', from an old manifest to now."""
    before = dict(zip(old["files"], map(tuple, old["stats"]), strict=True))
    now = dict(zip(files, map(tuple, stats), strict=True))
    added = [f for f in now if f not in before]
    removed = [f for f in before if f not in now]
    modified = [f for f in now if f in before and now[f] != before[f]]
    parts = [f"{len(v)} {k}" for k, v in (("added", added), ("removed", removed),
                                           ("modified", modified)) if v]
    example = (added + removed + modified)[:1]
    return ", ".join(parts) + (f" (e.g. {example[0]})" if example else "")


class ImageCache:
    """A built cache: ``images`` (uint8 ``(N, height, width, 3)``, memory-mapped, read-only),
    ``labels`` (int32 ``(N,)``), ``class_names``, ``file_paths`` (absolute, in the order and
    with the class indices ``image_dataset_from_directory(shuffle=False)`` gives),
    ``image_size``, ``decoder``, ``cache_dir``, ``built`` (True if this call decoded the
    folder, False if it reused the cache) and ``build_seconds`` (0.0 when reused).

    It pickles as its folder's path: a worker process re-opens the memory map instead of
    receiving a copy of the pixels.
    """

    def __init__(self, cache_dir: str | Path, built: bool = False,
                 build_seconds: float = 0.0) -> None:
        self.cache_dir = Path(cache_dir)
        manifest = json.loads((self.cache_dir / MANIFEST).read_text(encoding="utf-8"))
        directory = Path(manifest["directory"])
        self.directory = directory
        self.class_names: list[str] = list(manifest["class_names"])
        self.file_paths: list[str] = [str(directory / f) for f in manifest["files"]]
        self.image_size: tuple[int, int] = tuple(manifest["image_size"])
        self.decoder: str = manifest["decoder"]
        self.built, self.build_seconds = built, float(build_seconds)
        self.labels = np.load(self.cache_dir / "labels.npy")
        self.images = self._open_images()

    def _open_images(self) -> np.memmap:
        path = self.cache_dir / "images.npy"
        expected = (len(self.file_paths), *self.image_size, 3)
        try:
            images = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not a readable image cache ({e}); delete "
                             f"{self.cache_dir} to rebuild it") from None
        if images.dtype != np.uint8 or images.shape != expected:
            raise ValueError(f"{path}: holds {images.dtype} {images.shape}, the manifest says "
                             f"uint8 {expected}; delete {self.cache_dir} to rebuild it")
        return images

    def __len__(self) -> int:
        return len(self.file_paths)

    @property
    def nbytes(self) -> int:
        """Bytes of pixels on disk (``images.npy`` without its header)."""
        return int(self.images.nbytes)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["images"] = None  # a memmap would pickle as a full copy of the pixels
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.images = self._open_images()


def _read_manifest(cache_dir: Path) -> dict | None:
    """The manifest of a cache this module wrote in ``cache_dir``; None if ``cache_dir`` is
    missing or empty; FileExistsError if it holds anything else."""
    if not cache_dir.exists() or (cache_dir.is_dir() and not any(cache_dir.iterdir())):
        return None
    refuse = (f"{cache_dir} holds files build_image_cache did not write; it never writes "
              "there: choose an empty or new cache_dir")
    if not cache_dir.is_dir():
        raise FileExistsError(f"{cache_dir} is a file, not a cache folder")
    names = {p.name for p in cache_dir.iterdir()}
    if MANIFEST not in names or not names <= set(_FILES):
        raise FileExistsError(refuse)
    try:
        manifest = json.loads((cache_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise FileExistsError(refuse) from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise FileExistsError(refuse)
    return manifest


def _decode_all(file_paths: list[str], images: np.ndarray, image_size: tuple[int, int],
                decoder: str, workers: int, progress: bool) -> None:
    """Fill ``images[k]`` with ``load_image(file_paths[k])``, in threads if ``workers > 1``."""
    from concurrent.futures import ThreadPoolExecutor

    from .progress import progress_bar

    def one(k: int) -> None:
        images[k] = load_image(file_paths[k], image_size, decoder=decoder)

    bar = progress_bar(total=len(file_paths), enabled=progress, desc="decoding once",
                       unit="img")
    with bar, ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for _ in pool.map(one, range(len(file_paths))):
            bar.update()


def build_image_cache(directory: str | Path, cache_dir: str | Path,
                      image_size: tuple[int, int] = (160, 160), decoder: str = "pillow",
                      *, if_changed: str = "rebuild", workers: int = 1,
                      progress: bool = True) -> ImageCache:
    """Decode ``directory/<class>/<image file>`` once into ``cache_dir``; return the cache.

    Args:
        directory: the image folder, in ``image_dataset_from_directory``'s layout.
        cache_dir: the folder the cache lives in: missing, empty, or a cache this function
            wrote (anything else is refused with FileExistsError: nothing is overwritten).
        image_size: ``(height, width)`` every image is resized to, as ``load_image`` does.
        decoder: ``"pillow"`` or ``"opencv"`` (``helpers.decode``).
        if_changed: what to do when the cache was built from other files (added, removed or
            modified since), another ``image_size`` or another decoder: ``"rebuild"`` it, or
            ``"raise"`` a ValueError that says what changed. An up-to-date cache is reused.
        workers: decoding threads for the build (the build is the only time images decode).
        progress: show a progress bar while decoding.

    A file that does not decode raises ValueError naming it, and leaves the cache folder as
    it was: the new cache is written in a hidden sibling folder and renamed into place only
    when complete.
    """
    import time

    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    if if_changed not in _IF_CHANGED:
        raise ValueError(f"if_changed must be one of {_IF_CHANGED}, got {if_changed!r}")
    if (len(image_size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0
                                        for s in image_size)):
        raise ValueError(f"image_size must be (height, width) in positive integers, "
                         f"got {image_size!r}")
    directory, cache_dir = Path(directory).resolve(), Path(cache_dir)
    image_size = (int(image_size[0]), int(image_size[1]))
    file_paths, labels, class_names, stats = _listing(directory)
    files = _relative(file_paths, directory)
    manifest = {"format": _FORMAT, "directory": str(directory), "image_size": list(image_size),
                "decoder": decoder, "class_names": class_names, "files": files,
                "stats": stats}
    old = _read_manifest(cache_dir)
    if old is not None:
        same = {k: old.get(k) for k in manifest} == manifest
        if same:
            return ImageCache(cache_dir)
        if if_changed == "raise":
            if old.get("files") is not None and old.get("stats") is not None and (
                    old["files"] != files or old["stats"] != stats):
                what = f"the folder changed: {_what_changed(old, files, stats)}"
            else:
                what = "it was built with other settings (folder, image_size or decoder)"
            raise ValueError(f"{cache_dir}: the cache is out of date ({what}); pass "
                             "if_changed='rebuild' to decode the folder again")

    start = time.perf_counter()
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.", suffix=".part",
                                dir=cache_dir.parent))
    try:
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                           shape=(len(files), *image_size, 3))
        _decode_all(file_paths, images, image_size, decoder, workers, progress)
        images.flush()
        del images
        np.save(tmp / "labels.npy", labels.astype(np.int32), allow_pickle=False)
        (tmp / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")  # last: complete
        if cache_dir.exists():  # an empty folder or an old cache of ours
            stale = cache_dir.with_name(f".{cache_dir.name}.old-{os.getpid()}")
            os.rename(cache_dir, stale)
            os.rename(tmp, cache_dir)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.rename(tmp, cache_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
    return ImageCache(cache_dir, built=True, build_seconds=time.perf_counter() - start)


class CachedImageDataset(keras.utils.PyDataset):
    """Batches ``(X, y)`` gathered from an ``ImageCache``: no decoding, one copy per batch.

    Args:
        cache: what ``build_image_cache`` returned.
        batch_size: images per batch; ``len()`` rounds up, so no image is dropped.
        shuffle: a new order every epoch, a function of ``(seed, epoch)``, every image served
            once per epoch (``helpers.generator.epoch_order``, as the course's other
            generators).
        seed: makes the order reproducible; ``None`` draws one.
        augment: a random crop (``CROP_SCALE`` of each side, resized back) and a left-right
            flip per image, on the CPU with Pillow, drawn from ``(seed, epoch, batch)`` as
            ``ImageFolderDataset`` draws them: the augmentation notebook 07 moves into the
            model instead (``helpers.feeding.augmentation_layers``).
        dtype: of ``X``: ``"float32"`` (pixel values in ``[0, 255]``, what
            ``ImageFolderDataset`` and ``image_dataset_from_directory`` give) or ``"uint8"``
            (a quarter of the bytes to copy to the accelerator; the model converts them).
        shard, shard_remainder, epoch, start_batch: as ``ImageFolderDataset``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``PyDataset``.

    Batches are ``(X, y)``: X of shape ``(b, height, width, 3)``, y int32 ``(b,)``. It
    pickles without the pixels (the cache re-opens its memory map in a worker process).
    """

    def __init__(self, cache: ImageCache, batch_size: int = 32, shuffle: bool = True,
                 seed: int | None = None, augment: bool = False, dtype: str = "float32",
                 shard: tuple[int, int] | None = None, shard_remainder: str = "pad",
                 epoch: int = 0, start_batch: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(cache, ImageCache):
            raise TypeError(f"cache must be an ImageCache (build_image_cache's result), "
                            f"got {type(cache).__name__}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if dtype not in ("float32", "uint8"):
            raise ValueError(f"dtype must be 'float32' or 'uint8', got {dtype!r}")
        self.cache, self.batch_size, self.shuffle = cache, int(batch_size), shuffle
        self.augment = bool(augment)
        self.dtype = np.dtype(dtype)
        self.seed = resolve_seed(seed)
        self._shard_size = shard_size(len(cache), shard, shard_remainder)
        self.shard = None if shard is None else (int(shard[0]), int(shard[1]))
        self.shard_remainder = shard_remainder
        self.set_epoch(epoch, start_batch)

    @property
    def num_samples(self) -> int:
        return len(self.cache)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self._shard_size / self.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Serve epoch ``epoch``'s order from its batch ``start_batch`` on."""
        order = epoch_order(self.num_samples, self.seed, epoch, self.shuffle)
        self.start_batch = check_start_batch(start_batch, self.batches_per_epoch)
        rows = shard_rows(order, self.shard, self.shard_remainder)
        self.indexes = rows[self.start_batch * self.batch_size:]
        self.epoch = int(epoch)

    def on_epoch_end(self) -> None:
        """Move to the next epoch's order (``fit()`` calls it after each epoch)."""
        self.set_epoch(self.epoch + 1)

    def batch_rows(self, index: int) -> np.ndarray:
        """Positions in ``cache.file_paths`` of the images batch ``index`` holds."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        return self.indexes[index * self.batch_size:(index + 1) * self.batch_size]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.batch_rows(index)
        X = self.cache.images[rows]  # one gather from the memory map, in the epoch's order
        if self.augment:
            X = self._augmented(X, index)
        return X.astype(self.dtype, copy=False), self.cache.labels[rows]

    def _augmented(self, X: np.ndarray, index: int) -> np.ndarray:
        """Each image cropped at random, resized back and maybe flipped (Pillow, CPU)."""
        from PIL import Image

        rng = np.random.default_rng([self.seed, self.epoch, self.start_batch + index])
        scales = rng.uniform(*CROP_SCALE, size=(len(X), 2))
        offsets, flips = rng.random((len(X), 2)), rng.random(len(X)) < 0.5
        height, width = X.shape[1:3]
        out = np.empty_like(X)
        for j, image in enumerate(X):
            w, h = scales[j, 0] * width, scales[j, 1] * height
            left, top = offsets[j, 0] * (width - w), offsets[j, 1] * (height - h)
            img = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR,
                                                box=(left, top, left + w, top + h))
            if flips[j]:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            out[j] = np.asarray(img)
        return out
