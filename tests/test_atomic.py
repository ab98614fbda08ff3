"""helpers.atomic: files and folders written whole or not at all."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.atomic import (
    atomic_file,
    atomic_folder,
    atomic_path,
    save_npy_atomic,
    write_text_atomic,
)


def test_writes_whole(tmp_path):
    save_npy_atomic(tmp_path / "a.npy", np.arange(5))
    write_text_atomic(tmp_path / "sub" / "t.txt", "hello")
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2, 3, 4]
    assert (tmp_path / "sub" / "t.txt").read_text() == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "sub"]


def test_failure_leaves_nothing_and_keeps_old(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(target) as f:
        f.write(b"half of the new")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_nothing_under_the_final_name_until_the_end(tmp_path):
    target = tmp_path / "f.txt"
    with atomic_file(target, "w") as f:
        f.write("x")
        assert not target.exists()
    assert target.read_text() == "x"


def test_folder_appears_whole(tmp_path):
    target = tmp_path / "out"
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("a")
        (tmp / "sub").mkdir()
        assert not target.exists() and tmp.parent.parent == tmp_path
    assert sorted(p.name for p in target.rglob("*")) == ["a.txt", "sub"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failed_folder_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("a")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_folder_never_overwrites_but_fills_an_empty_one(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="full"), atomic_folder(full):
        pass
    assert (full / "mine.txt").read_text() == "keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_folder(empty) as tmp:
        (tmp / "new.txt").write_text("new")
    assert (empty / "new.txt").read_text() == "new"


def test_a_block_that_writes_nothing_fails(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing was written"), \
            atomic_path(tmp_path / "x"):
        pass
    assert list(tmp_path.iterdir()) == []
