"""Imagenette (160 px) from its official archive, or a same-layout stand-in when offline.

Imagenette is fast.ai's 10-class subset of ImageNet (https://github.com/fastai/imagenette).
Its 160 px archive, ``imagenette2-160.tgz``, unpacks to ``imagenette2-160/train/<wnid>/`` and
``imagenette2-160/val/<wnid>/`` folders of ``.JPEG`` files whose shortest side is 160 px:
exactly the ``directory/<class>/<file>`` layout ``helpers.images.ImageFolderDataset`` and
``keras.utils.image_dataset_from_directory`` read.

- ``get_imagenette()``: the one call notebooks make. The real data when it is on disk or can
  be downloaded, else the stand-in; it says plainly which.
- ``download_imagenette`` / ``extract_imagenette``: the archive, MD5-verified before anything
  is unpacked, every member checked (``helpers.archive``).
- ``write_imagenette_like``: a synthetic stand-in in the same layout: ``.JPEG`` files,
  shortest side 160 px, varied aspect ratios, a few grayscale JPEGs and a few PNG files, one
  drawn shape per class so a small CNN can learn it. Its class names say ``synthetic-...``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# The course's verified download, checked extraction and atomic folder: the helpers this
# module builds on (a learner lifting it takes helpers/archive.py and helpers/atomic.py too).
from .archive import extract_tar_checked, fetch_archive, real_or_reason, source_choice
from .atomic import atomic_folder

__all__ = [
    "ARCHIVE_NAME", "FOLDER_NAME", "IMAGENETTE_MD5", "IMAGENETTE_URL", "ImagenetteData",
    "STANDIN_SHAPES", "WNID_NAMES", "download_imagenette", "extract_imagenette",
    "get_imagenette", "readable_class_names", "write_imagenette_like",
]

IMAGENETTE_URL = "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz"
IMAGENETTE_MD5 = "e793b78cc4c9e9a4ccc0c1155377a412"
"""As published in torchvision's ``torchvision/datasets/imagenette.py`` (``_ARCHIVES["160px"]``,
pytorch/vision commit 051ba3491924fe851a1ca2da180bf255a5b2e11b)."""
ARCHIVE_NAME = "imagenette2-160.tgz"
FOLDER_NAME = "imagenette2-160"
SPLITS = ("train", "val")
STANDIN_NOTE = "SYNTHETIC.txt"
"""File in a stand-in's top folder: says it is synthetic and names its classes."""

WNID_NAMES = {
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888257": "parachute",
}
"""ImageNet WordNet IDs of the ten Imagenette classes (its folder names) and their names."""

STANDIN_SHAPES = ("disc", "square", "ring", "triangle", "cross",
                  "stripes", "bars", "diagonal", "dots", "frame")
"""What each stand-in class draws, in the sorted order of the WordNet IDs it stands for."""

SHORT_SIDE = 160

# ---------------------------------------------------------------------------------------
# Download and unpack


def extract_imagenette(archive_path: str | Path, data_dir: str | Path,
                       md5: str | None = IMAGENETTE_MD5) -> Path:
    """Unpack ``imagenette2-160.tgz`` into ``data_dir``; return ``data_dir/imagenette2-160``.

    The MD5 is checked before any member is read; links, absolute paths, ``..`` and members
    outside ``imagenette2-160/`` are refused; the folder appears only once complete (see
    ``helpers.archive.extract_tar_checked``). ``md5=None`` only for archives you built.
    """
    folder = extract_tar_checked(archive_path, data_dir, FOLDER_NAME, md5)
    missing = [s for s in SPLITS if not (folder / s).is_dir()]
    if missing:
        raise ValueError(f"{archive_path}: unpacked to {folder}, which lacks the folders "
                         f"{missing}; this is not an Imagenette archive")
    return folder


def download_imagenette(data_dir: str | Path, url: str = IMAGENETTE_URL,
                        md5: str = IMAGENETTE_MD5) -> Path:
    """Make sure ``data_dir/imagenette2-160`` exists, downloading it if needed; return it.

    An unpacked folder is used as it is. An archive already at ``data_dir/imagenette2-160.tgz``
    is reused if its MD5 matches; one that does not is left alone (it may be yours) and a
    ValueError says so. Otherwise the archive (about 94 MiB) is downloaded into a temporary
    name, verified, renamed, and unpacked.
    """
    data_dir = Path(data_dir)
    folder = data_dir / FOLDER_NAME
    if _is_complete(folder):
        return folder
    archive = fetch_archive(url, data_dir / ARCHIVE_NAME, md5, "Imagenette 160 px (about 94 MiB)")
    print(f"Unpacking {archive.name}")
    return extract_imagenette(archive, data_dir, md5)


def _is_complete(folder: Path) -> bool:
    return all((folder / s).is_dir() for s in SPLITS)


# ---------------------------------------------------------------------------------------
# The stand-in


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float,
                fill: tuple[int, int, int]) -> None:
    """Draw one class's shape centred at ``(cx, cy)`` with radius ``r``."""
    box = (cx - r, cy - r, cx + r, cy + r)
    width = max(3, int(r / 3))
    if shape == "disc":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle((cx - 0.8 * r, cy - 0.8 * r, cx + 0.8 * r, cy + 0.8 * r), fill=fill)
    elif shape == "ring":
        draw.ellipse(box, outline=fill, width=width)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + 0.8 * r), (cx + r, cy + 0.8 * r)], fill=fill)
    elif shape == "cross":
        draw.rectangle((cx - r, cy - r / 4, cx + r, cy + r / 4), fill=fill)
        draw.rectangle((cx - r / 4, cy - r, cx + r / 4, cy + r), fill=fill)
    elif shape == "stripes":
        for y in np.arange(cy - r, cy + r, r / 2.5):
            draw.rectangle((cx - r, y, cx + r, y + r / 5), fill=fill)
    elif shape == "bars":
        for x in np.arange(cx - r, cx + r, r / 2.5):
            draw.rectangle((x, cy - r, x + r / 5, cy + r), fill=fill)
    elif shape == "diagonal":
        draw.line((cx - r, cy - r, cx + r, cy + r), fill=fill, width=width)
    elif shape == "dots":
        for dx in (-0.5, 0.5):
            for dy in (-0.5, 0.5):
                x, y = cx + dx * r, cy + dy * r
                draw.ellipse((x - r / 4, y - r / 4, x + r / 4, y + r / 4), fill=fill)
    elif shape == "frame":
        draw.rectangle(box, outline=fill, width=width)
    else:
        raise ValueError(f"unknown stand-in shape {shape!r}")


def _standin_image(shape: str, rng: np.random.Generator) -> Image.Image:
    """One RGB picture: a textured background with the class's shape somewhere on it."""
    long_side = int(rng.integers(SHORT_SIDE, int(SHORT_SIDE * 1.6)))
    w, h = (long_side, SHORT_SIDE) if rng.random() < 0.7 else (SHORT_SIDE, long_side)
    # A smooth two-colour gradient plus pixel noise: JPEG files of a photo-like size.
    c0, c1 = rng.uniform(0, 200, (2, 3))
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    base = c0 + (c1 - c0) * t
    noise = rng.normal(0, 18, (h, w, 3)).astype(np.float32)
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
    r = float(rng.uniform(0.2, 0.35) * min(w, h))
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    fill = tuple(int(v) for v in rng.integers(40, 256, 3))
    _draw_shape(ImageDraw.Draw(img), shape, cx, cy, r, fill)
    return img


def write_imagenette_like(folder: str | Path, train_per_class: int = 40,
                          val_per_class: int = 15, seed: int = 0) -> Path:
    """Write a synthetic stand-in for ``imagenette2-160`` into ``folder`` (new); return it.

    Same layout as the real archive: ``folder/train/<wnid>/<wnid>_<n>.JPEG`` and
    ``folder/val/...``, shortest side 160 px, aspect ratios from 1 to 1.6 (mostly
    landscape). One image in 20 is a grayscale JPEG and one in 25 a PNG file (``.png``), as
    real folders have. Class ``k`` (the ``k``-th WordNet ID in sorted order) draws the shape
    ``STANDIN_SHAPES[k]``; ``SYNTHETIC.txt`` in ``folder`` says so and lists the classes.
    Written whole or not at all (``helpers.atomic.atomic_folder``); an existing ``folder``
    holding anything is never overwritten (FileExistsError).
    """
    folder = Path(folder)
    for name, n in (("train_per_class", train_per_class), ("val_per_class", val_per_class)):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    wnids = sorted(WNID_NAMES)
    with atomic_folder(folder) as tmp:
        for split, n in (("train", train_per_class), ("val", val_per_class)):
            for wnid, shape in zip(wnids, STANDIN_SHAPES, strict=True):
                class_dir = tmp / split / wnid
                class_dir.mkdir(parents=True)
                for k in range(n):
                    img = _standin_image(shape, rng)
                    draw = rng.random()
                    if draw < 0.04:
                        img.save(class_dir / f"{wnid}_{k:05d}.png", optimize=False)
                    elif draw < 0.09:
                        img.convert("L").save(class_dir / f"{wnid}_{k:05d}.JPEG", quality=85)
                    else:
                        img.save(class_dir / f"{wnid}_{k:05d}.JPEG", quality=85)
        lines = [f"{w}\tsynthetic-{s}" for w, s in zip(wnids, STANDIN_SHAPES, strict=True)]
        (tmp / STANDIN_NOTE).write_text(
            "Synthetic stand-in for imagenette2-160 written by "
            f"helpers.imagenette.write_imagenette_like (seed={seed}): same layout and file "
            "formats, drawn shapes instead of photographs.\n" + "\n".join(lines) + "\n",
            encoding="utf-8")
    return folder


# ---------------------------------------------------------------------------------------
# One call for notebooks


@dataclass(frozen=True)
class ImagenetteData:
    """What ``get_imagenette`` found: the folder, whether it is real, readable class names."""

    folder: Path
    is_real: bool
    class_names: tuple[str, ...]
    """Human-readable names in class-index order (sorted WordNet IDs)."""

    @property
    def kind(self) -> str:
        return "real Imagenette" if self.is_real else "synthetic stand-in"

    @property
    def train_dir(self) -> Path:
        return self.folder / "train"

    @property
    def val_dir(self) -> Path:
        return self.folder / "val"


def readable_class_names(folder: str | Path) -> tuple[str, ...]:
    """Names for the classes of an Imagenette-like ``folder``, in class-index order.

    A stand-in's names come from its ``SYNTHETIC.txt``; real WordNet IDs get their English
    names; any other folder name is kept as it is.
    """
    folder = Path(folder)
    names = dict(WNID_NAMES)
    note = folder / STANDIN_NOTE
    if note.is_file():
        text = note.read_text(encoding="utf-8")
        names = dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)
    wnids = sorted(e.name for e in os.scandir(folder / "train")
                   if e.is_dir() and not e.name.startswith("."))
    return tuple(names.get(w, w) for w in wnids)


def get_imagenette(
    data_dir: str | Path,
    prefer: str | None = None,
    standin_train_per_class: int = 40,
    standin_val_per_class: int = 15,
    url: str = IMAGENETTE_URL,
    md5: str = IMAGENETTE_MD5,
) -> ImagenetteData:
    """Imagenette for a notebook: the real data if present or downloadable, else a stand-in.

    Args:
        data_dir: the folder this dataset lives in (notebooks pass
            ``data_root() / "imagenette"``). Real data lives in
            ``<data_dir>/imagenette2-160``; the stand-in in
            ``<data_dir>/standin-<train>-<val>/imagenette2-160``.
        prefer: ``"real"``, ``"standin"`` or ``"auto"``; ``None`` reads the environment
            variable ``COURSE_IMAGENETTE`` (default ``"auto"``). ``"real"`` raises rather than
            fall back.
        standin_train_per_class, standin_val_per_class: stand-in images per class.
        url, md5: where to download the archive from, and its expected MD5.

    When the ``CI`` environment variable is set, nothing is downloaded. Prints which data is
    in use and why.
    """
    root = Path(data_dir)
    choice = source_choice(prefer, "COURSE_IMAGENETTE")
    reason = "the stand-in was asked for (prefer / COURSE_IMAGENETTE)"
    if choice != "standin":
        present = _is_complete(root / FOLDER_NAME) or (root / ARCHIVE_NAME).exists()
        folder, reason = real_or_reason(lambda: download_imagenette(root, url, md5), present, url)
        if folder is not None:
            return _found(folder, True)
        if choice == "real":
            raise RuntimeError(f"real Imagenette was asked for, but {reason}")
    folder = root / f"standin-{standin_train_per_class}-{standin_val_per_class}" / FOLDER_NAME
    if not _is_complete(folder):
        n = 10 * (standin_train_per_class + standin_val_per_class)
        print(f"Writing the synthetic stand-in ({n:,} images) ...")
        with contextlib.suppress(FileExistsError):  # another process just wrote it
            write_imagenette_like(folder, standin_train_per_class, standin_val_per_class)
    data = _found(folder, False)
    print(f"  (real Imagenette not used: {reason}; accuracies on this stand-in say nothing "
          "about real photographs)")
    return data


def _found(folder: Path, is_real: bool) -> ImagenetteData:
    data = ImagenetteData(folder=folder, is_real=is_real,
                          class_names=readable_class_names(folder))
    shown = folder.name if is_real else f"{folder.parent.name}/{folder.name}"  # standin-N-M/...
    print(f"Using the {data.kind.upper()} ({shown}/train and {shown}/val)")
    return data

