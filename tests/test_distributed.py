"""The two-process jobs on localhost (helpers.distributed): each process reads its shard, every
ID is trained on exactly once per epoch, the processes agree, and a crash ends the job. On
TensorFlow (MultiWorkerMirroredStrategy) the shards are checked and fit()'s outcome recorded."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from helpers.distributed import run_children, train_job, train_tf_job
from helpers.tf_multiworker import describe_failure
from helpers.volumes import make_volume_dataset


def _running_with(marker: str) -> list[int]:
    """PIDs of live processes whose command line holds ``marker`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().split(") ")[-1][:1]
            except OSError:
                continue
            if marker.encode() in cmdline and state != "Z":
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def odd_volumes(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("job")
    partition, labels = make_volume_dataset(data_dir, 61, dim=(8, 8, 8), n_classes=3, seed=0,
                                            progress=False)
    assert len(partition["train"]) % 2 == 1  # so that 'drop' has one to skip
    return data_dir, partition["train"]


def test_a_failed_child_stops_the_others_at_once(tmp_path):
    slow = [sys.executable, "-c", f"import time; time.sleep(60)  # {tmp_path}"]
    fails = [sys.executable, "-c", "import sys; print('oops', file=sys.stderr); sys.exit(5)"]
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"process 1 exited with code 5(.|\n)*oops"):
        run_children([slow, fails], [dict(os.environ)] * 2, timeout=30)
    assert time.monotonic() - t0 < 10
    assert not _running_with(str(tmp_path))


def test_children_past_the_timeout_are_stopped(tmp_path):
    slow = [sys.executable, "-c", f"import time; time.sleep(60)  # {tmp_path}"]
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="did not finish within 2 s"):
        run_children([slow, slow], [dict(os.environ)] * 2, timeout=2)
    assert time.monotonic() - t0 < 10
    assert not _running_with(str(tmp_path))


def test_two_processes_share_every_epoch_exactly_once_and_agree(odd_volumes):
    pytest.importorskip("jax")
    data_dir, train = odd_volumes
    reports = train_job(data_dir, num_processes=2, epochs=2, batch_size=8,
                        shard_remainder="drop", timeout=240)
    assert [r["process_id"] for r in reports] == [0, 1]
    assert {r["devices"] for r in reports} == {2}  # one device per process, two in the job
    assert reports[0]["steps"] == reports[1]["steps"] == 2 * reports[0]["batches"]
    for epoch in range(2):
        served = Counter(i for r in reports for i in r["served"][epoch])
        assert set(served.values()) == {1}  # exactly once across the processes
        assert len(train) - len(served) == reports[0]["samples_dropped"] == 1
        assert set(served) <= set(train)
    assert set(reports[0]["served"][0]) != set(reports[0]["served"][1])  # IDs move
    for a, b in zip(reports[0]["weights"], reports[1]["weights"], strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_a_crash_in_one_process_ends_the_job_and_leaves_nothing_running(odd_volumes):
    pytest.importorskip("jax")
    data_dir = odd_volumes[0]
    with pytest.raises(RuntimeError, match="process 1 exited with code 3"):
        train_job(data_dir, num_processes=2, epochs=2, fail_process=1, timeout=240)
    assert not _running_with(str(data_dir))


def test_the_tensorflow_job_shards_trains_in_a_loop_and_reports_what_fit_did(odd_volumes):
    pytest.importorskip("tensorflow")
    data_dir, train = odd_volumes
    reports = train_tf_job(data_dir, num_processes=2, epochs=2, batch_size=8, timeout=240)
    assert [r["process_id"] for r in reports] == [0, 1]
    assert {r["devices"] for r in reports} == {2}  # one replica per worker, two in sync
    shards = Counter(i for r in reports for i in r["shard_ids"])
    assert set(shards.values()) == {1} and len(train) - len(shards) == 1
    assert reports[0]["batches"] == reports[1]["batches"]
    for r in reports:  # with auto-sharding OFF, tf.distribute hands a worker its whole shard
        off = [i for step in r["tf_input"]["OFF"] for i in step]
        auto = [i for step in r["tf_input"]["AUTO"] for i in step]
        assert sorted(off) == sorted(r["shard_ids"]) and set(auto) <= set(r["shard_ids"])
    loops = [r["loop"] for r in reports]  # the same training in a loop of one's own
    assert loops[0]["steps"] == loops[1]["steps"] == 2 * reports[0]["batches"]
    for epoch in range(2):
        served = Counter(i for loop in loops for i in loop["served"][epoch])
        assert set(served.values()) == {1} and len(train) - len(served) == 1
    assert set(loops[0]["served"][0]) != set(loops[0]["served"][1])  # IDs move
    for a, b in zip(loops[0]["weights"], loops[1]["weights"], strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))  # gradients summed over workers
    if "error" in reports[0]:  # Keras 3.15.1: fit() fails before the first step, in both
        assert [r["steps"] for r in reports] == [0, 0]
        assert reports[0]["error"] == reports[1]["error"]
        assert reports[0]["raised_in"].startswith("keras/src/")
        return
    assert reports[0]["steps"] == reports[1]["steps"] == 2 * reports[0]["batches"]
    for epoch in range(2):
        served = Counter(i for r in reports for i in r["served"][epoch])
        assert set(served.values()) == {1} and len(train) - len(served) == 1
    for a, b in zip(reports[0]["weights"], reports[1]["weights"], strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_describe_failure_gives_one_line_and_the_innermost_keras_function():
    code = compile("def build():\n    raise ValueError(\"bad (PerReplica:{\\n 0: [1, 2]\\n}) "
                   "of type (<class 'tf.values.PerReplica'>)\")\n", "/x/keras/src/fake.py", "exec")
    space: dict = {}
    exec(code, space)
    with pytest.raises(ValueError) as info:
        space["build"]()
    report = describe_failure(info.value)
    assert report == {"error": "ValueError: bad (PerReplica:{...}) of type (PerReplica)",
                      "raised_in": "keras/src/fake.py, build()"}
