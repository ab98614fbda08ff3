"""Sharding by file (helpers.file_shards): the stand-in record files, the split by file and
its step counts, and lockstep's processes, which report a stuck step when the counts differ
and finish together when they are equal. No Keras backend can change these outcomes."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

from helpers.file_shards import (
    RECORD_BYTES,
    files_of,
    lockstep,
    record_counts,
    steps_per_process,
    write_record_files,
)

pytestmark = pytest.mark.backend_independent


def test_record_files_hold_their_file_and_row(tmp_path):
    paths = write_record_files(tmp_path, [3, 0, 5])
    assert [p.name for p in paths] == [f"shard-{f:03d}-of-003.bin" for f in range(3)]
    assert record_counts(paths) == [3, 0, 5]
    records = np.fromfile(paths[2], dtype="<i4").reshape(-1, 2)
    assert records.tolist() == [[2, r] for r in range(5)]
    assert sorted(os.listdir(tmp_path)) == [p.name for p in paths]  # no temporary left


def test_an_existing_file_is_never_overwritten(tmp_path):
    mine = tmp_path / "shard-001-of-002.bin"
    mine.write_bytes(b"a user's file")
    with pytest.raises(FileExistsError, match="shard-001-of-002.bin"):
        write_record_files(tmp_path, [1, 1])
    assert mine.read_bytes() == b"a user's file"
    assert sorted(os.listdir(tmp_path)) == ["shard-001-of-002.bin"]  # nothing else written


def test_an_interrupted_write_leaves_whole_files_only(tmp_path, monkeypatch):
    import helpers.atomic

    real, calls = helpers.atomic.atomic_file, []

    @contextlib.contextmanager
    def failing_second(path, *args, **kwargs):  # the second file fails once its bytes are out
        calls.append(path)
        with real(path, *args, **kwargs) as out:
            yield out
            if len(calls) == 2:
                out.flush()
                raise OSError("disk full (simulated)")

    monkeypatch.setattr(helpers.atomic, "atomic_file", failing_second)
    with pytest.raises(OSError, match="simulated"):
        write_record_files(tmp_path, [2, 2, 2])
    assert sorted(os.listdir(tmp_path)) == ["shard-000-of-003.bin"]
    assert record_counts([tmp_path / "shard-000-of-003.bin"]) == [2]


def test_a_truncated_file_is_named(tmp_path):
    paths = write_record_files(tmp_path, [4, 4])
    with open(paths[1], "r+b") as f:
        f.truncate(4 * RECORD_BYTES - 3)
    with pytest.raises(ValueError, match="shard-001-of-002.bin.*truncated"):
        record_counts(paths)


def test_split_by_file_and_its_steps():
    assert [files_of(p, 4, 10) for p in range(4)] == [[0, 4, 8], [1, 5, 9], [2, 6], [3, 7]]
    assert files_of(3, 4, 3) == []  # fewer files than processes: nothing for the last one
    with pytest.raises(ValueError):
        files_of(4, 4, 10)
    rows = [54, 46, 40, 31, 32, 21, 23, 20, 27, 53]
    assert steps_per_process(rows, 4, 8) == [15, 15, 8, 7]  # 113, 120, 63, 51 records
    assert steps_per_process(rows, 4, 8, drop_remainder=True) == [14, 15, 7, 6]


def test_lockstep_sticks_where_the_shortest_process_stops_and_finishes_when_equal():
    uneven = lockstep([3, 1, 2], timeout=0.5)
    assert [r["done"] for r in uneven] == [1, 1, 1]
    assert [r["outcome"] for r in uneven] == ["stuck in step 2", "finished", "stuck in step 2"]
    stuck = [r["waited_s"] for r in uneven if r["outcome"] != "finished"]
    assert max(stuck) >= 0.45 and max(stuck) < 5  # the timeout, not a crash or a hang
    equal = lockstep([2, 2, 2], timeout=5)
    assert [(r["done"], r["outcome"]) for r in equal] == [(2, "finished")] * 3
