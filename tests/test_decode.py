"""helpers.decode: Pillow and OpenCV give the same kind of array from the same real files,
and both name a file that does not decode."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from helpers.decode import DECODERS, _jpeg_cut_short, load_image
from helpers.images import ImageFolderDataset

pytest.importorskip("cv2")  # requirements.txt installs opencv-python-headless

S = 24


def _picture(seed: int, size: tuple[int, int] = (S, S)) -> Image.Image:
    """A smooth RGB picture (JPEG keeps it close)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    c = rng.uniform(0, 255, (3, 3))
    img = c[0] + (yy / h)[..., None] * c[1] + (xx / w)[..., None] * c[2] * 0.5
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One file per kind users have: every mode, PNG and JPEG, progressive, EXIF-rotated."""
    root = tmp_path_factory.mktemp("kinds")
    _picture(1).save(root / "rgb.png")
    _picture(2).convert("L").save(root / "gray.png")
    rgba = _picture(3).convert("RGBA")
    rgba.putalpha(77)
    rgba.save(root / "rgba.png")
    _picture(4).quantize(16).save(root / "palette.png")
    _picture(5).save(root / "rgb.jpg", quality=95)
    _picture(6).convert("CMYK").save(root / "cmyk.jpg", quality=95)
    _picture(7, (64, 48)).save(root / "progressive.jpg", quality=95, progressive=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° to display": neither decoder may turn the pixels
    _picture(8, (40, 30)).save(root / "rotated.jpg", quality=95, exif=exif)
    return root


@pytest.mark.parametrize("name", ["rgb.png", "gray.png", "rgba.png", "palette.png"])
def test_png_files_decode_to_the_same_pixels(files, name):
    pillow = load_image(files / name, (S, S), decoder="pillow")
    opencv = load_image(files / name, (S, S), decoder="opencv")
    assert opencv.shape == (S, S, 3) and opencv.dtype == np.uint8
    np.testing.assert_array_equal(opencv, pillow)  # lossless, no resize: exactly equal


@pytest.mark.parametrize("name", ["rgb.jpg", "cmyk.jpg", "progressive.jpg", "rotated.jpg"])
def test_jpeg_files_decode_close_and_unrotated(files, name):
    with Image.open(files / name) as img:
        height, width = img.height, img.width  # the stored size, before any EXIF turn
    pillow = load_image(files / name, (height, width), decoder="pillow").astype(int)
    opencv = load_image(files / name, (height, width), decoder="opencv").astype(int)
    assert opencv.shape == (height, width, 3)
    assert np.abs(opencv - pillow).mean() < 3  # two builds of libjpeg: rounding apart


def test_resize_crop_and_flip_agree_between_decoders(files):
    for crop, flip in ((None, False), ((0.5, 0.75, 1.0, 0.0), True)):
        a, b = (load_image(files / "progressive.jpg", (20, 30), crop, flip,
                           decoder=d).astype(int) for d in DECODERS)
        assert a.shape == b.shape == (20, 30, 3)
        assert np.abs(a - b).mean() < 6, (crop, flip)  # different filters, same picture
    right = load_image(files / "rgb.png", (S, S), crop=(0.5, 1.0, 1.0, 0.0), decoder="opencv")
    np.testing.assert_array_equal(right[:, :1], np.asarray(_picture(1))[:, S // 2:S // 2 + 1])
    flipped = load_image(files / "rgb.png", (S, S), flip=True, decoder="opencv")
    np.testing.assert_array_equal(flipped, np.asarray(_picture(1))[:, ::-1])


def _jpeg_bytes(**kw) -> bytes:
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(noisy).save(out, "JPEG", **kw)
    return out.getvalue()


@pytest.mark.parametrize("cut", [2, 50, 0.5])
@pytest.mark.parametrize("progressive", [False, True])
def test_a_jpeg_cut_short_anywhere_is_named(tmp_path, cut, progressive):
    raw = _jpeg_bytes(progressive=progressive)
    n = int(len(raw) * cut) if isinstance(cut, float) else len(raw) - cut
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(raw[:n])
    for decoder in DECODERS:
        with pytest.raises(ValueError, match="cut.jpg"):
            load_image(bad, (S, S), decoder=decoder)


def test_bytes_after_the_end_marker_are_not_an_error(tmp_path):
    """Some cameras append data after a JPEG's end-of-image marker: still a whole image."""
    path = tmp_path / "trailer.jpg"
    path.write_bytes(_jpeg_bytes() + b"vendor trailer \xff\xda\x00")
    whole = tmp_path / "whole.jpg"
    whole.write_bytes(_jpeg_bytes())
    np.testing.assert_array_equal(load_image(path, (S, S), decoder="opencv"),
                                  load_image(whole, (S, S), decoder="opencv"))


def test_the_cut_short_check_itself():
    """OpenCV 5 refuses a cut JPEG itself, OpenCV 4 does not: the check must stand alone.
    A header segment holding a whole small JPEG (as an EXIF thumbnail does, here in the ICC
    profile's segment) must not make a cut file look whole."""
    thumb = _jpeg_bytes(quality=50)
    for raw in (_jpeg_bytes(), _jpeg_bytes(progressive=True), _jpeg_bytes(icc_profile=thumb)):
        assert not _jpeg_cut_short(raw)
        assert not _jpeg_cut_short(raw + b"trailer \xff\xda\x00\x04")
        for n in (len(raw) - 2, len(raw) - 40, len(raw) // 2, 40, 3):
            assert _jpeg_cut_short(raw[:n]), n


@pytest.mark.parametrize("content", [b"", b"not an image at all" * 5, b"\x89PNG\r\n\x1a\n"])
def test_garbage_and_empty_files_are_named(tmp_path, content):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    for decoder in DECODERS:
        with pytest.raises(ValueError, match="bad.png"):
            load_image(bad, (S, S), decoder=decoder)
    with pytest.raises(FileNotFoundError, match="gone.jpg"):
        load_image(tmp_path / "gone.jpg", decoder="opencv")


def test_the_dataset_serves_opencv_batches(files, tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(5):
        _picture(i, (40, 30)).save(tmp_path / "a" / f"{i}.jpg", quality=95)
    ds = ImageFolderDataset(tmp_path, (S, S), batch_size=2, shuffle=False, decoder="opencv")
    X, y = ds[1]
    assert X.dtype == np.float32 and X.shape == (2, S, S, 3) and ds.decoder == "opencv"
    for j, k in enumerate(ds.batch_rows(1)):
        np.testing.assert_array_equal(X[j], load_image(ds.file_paths[k], (S, S),
                                                       decoder="opencv"))
    aug = ImageFolderDataset(tmp_path, (S, S), batch_size=2, seed=1, augment=True,
                             decoder="opencv")
    np.testing.assert_array_equal(aug[0][0], ImageFolderDataset(
        tmp_path, (S, S), batch_size=2, seed=1, augment=True, decoder="opencv")[0][0])
    assert not np.array_equal(aug[0][0], ImageFolderDataset(
        tmp_path, (S, S), batch_size=2, seed=1, decoder="opencv")[0][0])


def test_unknown_decoder_and_missing_opencv_are_named(files, monkeypatch):
    with pytest.raises(ValueError, match="decoder"):
        load_image(files / "rgb.png", decoder="cv2")
    with pytest.raises(ValueError, match="decoder"):
        ImageFolderDataset(files.parent, decoder="turbo")
    monkeypatch.setitem(sys.modules, "cv2", None)  # as if OpenCV were not installed
    with pytest.raises(ImportError, match="opencv-python-headless"):
        load_image(files / "rgb.png", decoder="opencv")
