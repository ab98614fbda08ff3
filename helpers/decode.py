"""``load_image``: one JPEG or PNG file to a uint8 RGB array of a fixed size, with Pillow or OpenCV.

The per-image work of ``helpers.images.ImageFolderDataset`` and of the Grain and PyTorch
loaders of ``helpers.image_loaders``. It needs numpy, Pillow and the standard library;
``decoder="opencv"`` also needs OpenCV (``pip install opencv-python-headless``), imported only
then. Copy it beside ``images.py`` (and ``generator.py``) into a package of your project.

Why two decoders: both use libjpeg-turbo and libpng, but they differ in what surrounds the
decode. Pillow (the default: installed with the course, and where Keras' own
``load_img`` comes from) parses the file's header in Python and stores RGB as 4 bytes a
pixel, so turning its image into a NumPy array is one more copy, made holding the GIL.
OpenCV decodes straight into a NumPy array and releases the GIL for the whole decode and
resize, which is what thread workers need. Notebook 06 and ``benchmarks/image_loaders.py``
time both on your files; neither is assumed faster here.

The two agree on what they return (RGB, alpha dropped, grayscale / palette / CMYK converted,
EXIF orientation *not* applied, as Keras' ``image_dataset_from_directory`` does not) but not
pixel for pixel: each has its own resize filter and its own CMYK conversion. Pillow's
bilinear filter antialiases whenever it shrinks; with OpenCV, ``load_image`` averages areas
when it shrinks 2x or more and is bilinear otherwise, without antialiasing, as TensorFlow's
default resize (``image_dataset_from_directory``'s) is at every scale: between 1x and 2x
that trades a little aliasing for speed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["DECODERS", "load_image"]

DECODERS = ("pillow", "opencv")
"""The libraries ``load_image`` can decode with."""


def _crop_box(width: int, height: int, crop: tuple[float, float, float, float] | None
              ) -> tuple[float, float, float, float]:
    """The pixel box ``(left, top, right, bottom)`` a fractional crop selects."""
    if crop is None:
        return (0.0, 0.0, float(width), float(height))
    scale_x, scale_y, off_x, off_y = crop
    w, h = scale_x * width, scale_y * height
    left, top = off_x * (width - w), off_y * (height - h)
    return (left, top, left + w, top + h)


class _NotDecoded(ValueError):
    """A file that does not decode (a ValueError, as before; its own class so that it is
    not wrapped twice)."""


def _broken(path: str | Path, error: BaseException | str) -> ValueError:
    """The error for a file that does not decode, naming it."""
    why = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return _NotDecoded(f"{path}: cannot decode this image file ({why}); it is corrupt, "
                      "truncated or not an image")


def _with_pillow(path: str | Path, width: int, height: int,
                 crop: tuple[float, float, float, float] | None, flip: bool,
                 draft: bool) -> np.ndarray:
    with Image.open(path) as img:
        if draft and img.format == "JPEG":
            # Ask for enough pixels that the crop still covers image_size.
            sx, sy = (crop[0], crop[1]) if crop is not None else (1.0, 1.0)
            img.draft("RGB", (math.ceil(width / sx), math.ceil(height / sy)))
        img.load()  # decodes now: a truncated file fails here, not later
        if img.mode != "RGB":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            if img.mode == "RGBA":
                img = img.convert("RGB")
        box = _crop_box(img.width, img.height, crop)
        img = img.resize((width, height), Image.Resampling.BILINEAR, box=box)
        if flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return np.asarray(img, dtype=np.uint8)


def _jpeg_cut_short(raw: bytes) -> bool:
    """Whether a JPEG file ends before its end-of-image marker.

    The header's segments (an EXIF thumbnail, itself a small JPEG, among them) are stepped
    over by their lengths up to the image's first scan. The scans' entropy-coded data cannot
    hold the marker (a 0xFF byte in it is always followed by 0x00 or a restart number), so a
    whole file has it after that point and a file cut short has not; bytes some cameras
    append after the marker do not matter.
    """
    i = 2
    while i + 4 <= len(raw):
        if raw[i] != 0xFF:
            return False  # a malformed header: the decoder will say so
        if raw[i + 1] == 0xFF:  # fill byte before a marker
            i += 1
        elif raw[i + 1] == 0xDA:  # start of the first scan
            return raw.find(b"\xff\xd9", i) == -1
        else:
            i += 2 + int.from_bytes(raw[i + 2:i + 4], "big")
    return True  # the file ends among the header's segments


def _with_opencv(path: str | Path, width: int, height: int,
                 crop: tuple[float, float, float, float] | None, flip: bool) -> np.ndarray:
    try:
        import cv2
    except ImportError:
        raise ImportError("decoder='opencv' needs OpenCV: pip install "
                          "opencv-python-headless (or use decoder='pillow')") from None
    raw = Path(path).read_bytes()
    # OpenCV 4 decodes a JPEG cut short with a gray bottom and only a warning: checked here,
    # it is an error with every version (Pillow raises one itself).
    if raw[:2] == b"\xff\xd8" and _jpeg_cut_short(raw):
        raise _broken(path, "the JPEG data ends before its end-of-image marker")
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION  # BGR, 8 bits, no EXIF turn
    try:
        image = cv2.imdecode(np.frombuffer(raw, np.uint8), flags) if raw else None
    except cv2.error as e:
        raise _broken(path, e) from e
    if image is None:
        raise _broken(path, "OpenCV could not decode it")
    left, top, right, bottom = _crop_box(image.shape[1], image.shape[0], crop)
    left, top = int(left), int(top)  # whole pixels: at least one of each
    image = image[top:max(round(bottom), top + 1), left:max(round(right), left + 1)]
    # Shrinking 2x or more, bilinear would skip whole pixels: average areas instead.
    halved = image.shape[1] >= 2 * width or image.shape[0] >= 2 * height
    image = cv2.resize(image, (width, height),
                       interpolation=cv2.INTER_AREA if halved else cv2.INTER_LINEAR)
    if flip:
        image = cv2.flip(image, 1)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_image(path: str | Path, image_size: tuple[int, int] = (160, 160),
               crop: tuple[float, float, float, float] | None = None,
               flip: bool = False, draft: bool = True, decoder: str = "pillow") -> np.ndarray:
    """Decode one image file to a uint8 RGB array of shape ``(*image_size, 3)``.

    Grayscale, palette, RGBA (alpha dropped) and CMYK files are converted to RGB.
    ``crop = (scale_x, scale_y, offset_x, offset_y)``, all in ``[0, 1]``, keeps that
    fraction of the width and height at that relative position before resizing (Pillow to
    the sub-pixel, OpenCV to whole pixels); ``flip`` mirrors left-right. ``draft`` (Pillow
    only) lets the JPEG decoder skip detail the resize would discard (it only acts on a JPEG
    at least twice the needed size). ``decoder``: ``"pillow"`` or ``"opencv"``. Raises
    ValueError naming ``path`` if the file is not a readable image or is cut short.
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    height, width = int(image_size[0]), int(image_size[1])
    try:
        if decoder == "opencv":
            return _with_opencv(path, width, height, crop, flip)
        return _with_pillow(path, width, height, crop, flip, draft)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image file not found") from None
    except _NotDecoded:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise _broken(path, e) from e
