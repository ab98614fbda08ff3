"""helpers.imagenette: the stand-in's layout, and the archive path on a .tgz written here."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from PIL import Image

from helpers.archive import md5_of
from helpers.imagenette import (
    FOLDER_NAME,
    STANDIN_SHAPES,
    WNID_NAMES,
    download_imagenette,
    extract_imagenette,
    get_imagenette,
    readable_class_names,
    write_imagenette_like,
)
from helpers.images import ImageFolderDataset


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return write_imagenette_like(tmp_path_factory.mktemp("s") / FOLDER_NAME,
                                 train_per_class=6, val_per_class=2, seed=0)


@pytest.fixture(scope="module")
def archive(tmp_path_factory, standin) -> Path:
    """A .tgz in the real archive's layout: one top folder ``imagenette2-160/``."""
    path = tmp_path_factory.mktemp("a") / "imagenette2-160.tgz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(standin, arcname=FOLDER_NAME)
    return path


def test_standin_has_the_real_layout(standin):
    assert sorted(p.name for p in standin.iterdir()) == ["SYNTHETIC.txt", "train", "val"]
    for split, n in (("train", 6), ("val", 2)):
        folders = sorted(p.name for p in (standin / split).iterdir())
        assert folders == sorted(WNID_NAMES)
        for f in folders:
            assert len(list((standin / split / f).iterdir())) == n
    files = sorted((standin / "train").rglob("*.*")) + sorted((standin / "val").rglob("*.*"))
    suffixes = {p.suffix for p in files}
    assert suffixes == {".JPEG", ".png"}  # mostly .JPEG as in the archive, a few PNG files
    modes = set()
    for p in files:
        with Image.open(p) as img:
            assert min(img.size) == 160, p
            assert 1.0 <= max(img.size) / 160 <= 1.6, p
            assert img.format == ("PNG" if p.suffix == ".png" else "JPEG"), p
            modes.add(img.mode)
    assert modes == {"RGB", "L"}  # a few grayscale files, as real folders have


def test_standin_is_named_synthetic_and_read_by_the_loader(standin):
    names = readable_class_names(standin)
    assert names == tuple(f"synthetic-{s}" for s in STANDIN_SHAPES)
    ds = ImageFolderDataset(standin / "train", image_size=(64, 64), batch_size=16)
    assert ds.class_names == sorted(WNID_NAMES) and len(ds.file_paths) == 60
    X, y = ds[0]
    assert X.shape == (16, 64, 64, 3)


def test_standin_never_overwrites(standin):
    with pytest.raises(FileExistsError):
        write_imagenette_like(standin)
    with pytest.raises(ValueError, match="train_per_class"):
        write_imagenette_like(standin.parent / "other", train_per_class=0)
    assert not (standin.parent / "other").exists()


def test_standin_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    import helpers.imagenette as imagenette

    calls = []

    def failing(shape, rng):
        calls.append(shape)
        if len(calls) == 5:
            raise RuntimeError("interrupted")
        return real(shape, rng)

    real = imagenette._standin_image
    monkeypatch.setattr(imagenette, "_standin_image", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        write_imagenette_like(tmp_path / FOLDER_NAME, train_per_class=2, val_per_class=1)
    assert list(tmp_path.iterdir()) == []  # no half-written folder, no temporary left


def test_extract_verifies_the_checksum_first(archive, tmp_path):
    with pytest.raises(ValueError, match="MD5"):
        extract_imagenette(archive, tmp_path / "d", md5="0" * 32)
    assert not (tmp_path / "d" / FOLDER_NAME).exists()
    folder = extract_imagenette(archive, tmp_path / "d", md5=md5_of(archive))
    assert folder == tmp_path / "d" / FOLDER_NAME
    assert readable_class_names(folder)[0] == "synthetic-disc"
    with pytest.raises(FileExistsError):  # never unpacked over an existing folder
        extract_imagenette(archive, tmp_path / "d", md5=md5_of(archive))


def test_download_goes_through_the_verified_path(archive, tmp_path):
    url = archive.as_uri()  # file:// : the real download code, no network
    folder = download_imagenette(tmp_path, url=url, md5=md5_of(archive))
    assert (folder / "train").is_dir() and (tmp_path / "imagenette2-160.tgz").is_file()
    bad = tmp_path / "bad"
    with pytest.raises(ValueError, match="MD5"):
        download_imagenette(bad, url=url, md5="0" * 32)
    assert not (bad / "imagenette2-160.tgz").exists() and not (bad / FOLDER_NAME).exists()


def test_a_foreign_archive_is_left_alone(archive, tmp_path):
    mine = tmp_path / "imagenette2-160.tgz"
    mine.write_bytes(b"my own file")
    with pytest.raises(ValueError, match="Delete"):
        download_imagenette(tmp_path, url=archive.as_uri(), md5=md5_of(archive))
    assert mine.read_bytes() == b"my own file"


def test_get_imagenette_real_when_present_else_standin(archive, tmp_path, monkeypatch):
    real_root = tmp_path / "real"
    real_root.mkdir()
    (real_root / "imagenette2-160.tgz").write_bytes(archive.read_bytes())
    data = get_imagenette(real_root, prefer="auto", md5=md5_of(archive))
    assert data.is_real and data.train_dir.is_dir() and data.val_dir.is_dir()
    monkeypatch.setenv("CI", "1")
    data = get_imagenette(tmp_path / "off", standin_train_per_class=2, standin_val_per_class=1)
    assert not data.is_real and data.kind == "synthetic stand-in"
    assert data.class_names[0] == "synthetic-disc"
    with pytest.raises(RuntimeError, match="CI"):
        get_imagenette(tmp_path / "off2", prefer="real")
    with pytest.raises(ValueError, match="prefer"):
        get_imagenette(tmp_path, prefer="maybe")

