"""Safe download and unpacking: checksums, refused members, nothing half-written."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import keras
import pytest

from helpers import archive as archive_mod
from helpers.archive import check_md5, download_verified, extract_tar_checked, md5_of

TOP = "top"


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def _write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _good_members() -> list[tuple[tarfile.TarInfo, bytes]]:
    top = tarfile.TarInfo(TOP)
    top.type = tarfile.DIRTYPE
    return [(top, b""), _file(f"{TOP}/a", b"alpha"), _file(f"{TOP}/b", b"beta" * 1000)]


def test_extract_good_archive(tmp_path):
    arc = _write_tar(tmp_path / "good.tar.gz", _good_members())
    out = extract_tar_checked(arc, tmp_path / "data", TOP, md5_of(arc), required=["a", "b"])
    assert out == tmp_path / "data" / TOP
    assert (out / "a").read_bytes() == b"alpha"
    assert (out / "b").read_bytes() == b"beta" * 1000
    assert sorted(os.listdir(tmp_path / "data")) == [TOP]  # no temporary folder left


def test_checksum_mismatch_extracts_nothing(tmp_path):
    arc = _write_tar(tmp_path / "good.tar.gz", _good_members())
    with pytest.raises(ValueError, match="MD5 checksum"):
        extract_tar_checked(arc, tmp_path / "data", TOP, "0" * 32)
    assert not (tmp_path / "data").exists() or os.listdir(tmp_path / "data") == []


@pytest.mark.parametrize("member", [
    _file("../evil", b"x"),
    _file(f"{TOP}/../../evil", b"x"),
    _file("/tmp/evil-absolute", b"x"),
    _file("elsewhere/evil", b"x"),
    _link(f"{TOP}/sym", "/etc/passwd", tarfile.SYMTYPE),
    _link(f"{TOP}/sym-inside", "a", tarfile.SYMTYPE),
    _link(f"{TOP}/hard", f"{TOP}/a", tarfile.LNKTYPE),
    _link(f"{TOP}/dev", "", tarfile.CHRTYPE),
    _link(f"{TOP}/fifo", "", tarfile.FIFOTYPE),
], ids=["dotdot", "dotdot-inside", "absolute", "outside-top", "symlink-out", "symlink-in",
        "hardlink", "char-device", "fifo"])
def test_refused_member_leaves_nothing(tmp_path, member):
    # The bad member comes after good ones: the failure is halfway through unpacking.
    arc = _write_tar(tmp_path / "bad.tar.gz", [*_good_members(), member])
    data = tmp_path / "data"
    with pytest.raises(ValueError, match=repr(member[0].name).replace("\\", "\\\\")) as e:
        extract_tar_checked(arc, data, TOP, md5_of(arc))
    assert "refused" in str(e.value)
    assert os.listdir(data) == []
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil-absolute").exists()


def test_truncated_archive_refused(tmp_path):
    arc = _write_tar(tmp_path / "good.tar.gz", _good_members())
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(arc.read_bytes()[: arc.stat().st_size // 2])
    with pytest.raises(ValueError, match="MD5 checksum"):
        extract_tar_checked(cut, tmp_path / "data", TOP, md5_of(arc))
    with pytest.raises(ValueError, match="damaged or truncated"):
        extract_tar_checked(cut, tmp_path / "data", TOP, None)
    assert os.listdir(tmp_path / "data") == []


def test_missing_required_file_refused(tmp_path):
    arc = _write_tar(tmp_path / "good.tar.gz", _good_members())
    with pytest.raises(ValueError, match="lacks"):
        extract_tar_checked(arc, tmp_path / "data", TOP, None, required=["a", "zzz"])
    assert os.listdir(tmp_path / "data") == []


def test_existing_target_never_overwritten(tmp_path):
    arc = _write_tar(tmp_path / "good.tar.gz", _good_members())
    (tmp_path / "data" / TOP).mkdir(parents=True)
    (tmp_path / "data" / TOP / "mine").write_text("user file")
    with pytest.raises(FileExistsError):
        extract_tar_checked(arc, tmp_path / "data", TOP, None)
    assert (tmp_path / "data" / TOP / "mine").read_text() == "user file"


def test_check_md5(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"hello")
    check_md5(f, "5d41402abc4b2a76b9719d911017c592")
    with pytest.raises(ValueError, match=str(f)):
        check_md5(f, "5d41402abc4b2a76b9719d911017c593")


def test_download_verified_from_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(50_000))
    target = tmp_path / "dl" / "file.bin"
    assert download_verified(src.as_uri(), target, md5_of(src)) == target
    assert target.read_bytes() == src.read_bytes()
    assert os.listdir(target.parent) == ["file.bin"]


def test_download_bad_checksum_leaves_nothing(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"not what was published")
    target = tmp_path / "dl" / "file.bin"
    with pytest.raises(ValueError):
        download_verified(src.as_uri(), target, "0" * 32)
    assert os.listdir(target.parent) == []


def test_download_interrupted_leaves_nothing(tmp_path, monkeypatch):
    def broken_get_file(fname, origin, cache_dir, cache_subdir, **kwargs):
        (Path(cache_subdir) / fname).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.utils, "get_file", broken_get_file)
    assert archive_mod.keras.utils.get_file is broken_get_file
    target = tmp_path / "dl" / "file.bin"
    with pytest.raises(KeyboardInterrupt):
        download_verified("https://example.invalid/file.bin", target, "0" * 32)
    assert os.listdir(target.parent) == []
