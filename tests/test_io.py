"""Atomic writes: whole or not at all."""

from __future__ import annotations

import os

import numpy as np
import pytest

from helpers.io import atomic_write, save_npy_atomic, write_text_atomic


def test_writes_whole(tmp_path):
    save_npy_atomic(tmp_path / "a.npy", np.arange(5))
    write_text_atomic(tmp_path / "sub" / "t.txt", "hello")
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2, 3, 4]
    assert (tmp_path / "sub" / "t.txt").read_text() == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "sub"]


def test_failure_leaves_nothing_and_keeps_old(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write(b"half of the new")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_progress_bar_can_be_switched_off(monkeypatch):
    from helpers.io import progress_bar

    assert progress_bar(range(3), enabled=False).disable
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not progress_bar(range(3), enabled=True, file=open(os.devnull, "w")).disable
    monkeypatch.setenv("TQDM_DISABLE", "1")  # what `make outputs` sets
    assert progress_bar(range(3), enabled=True).disable
