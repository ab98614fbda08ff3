"""LocalS3 counts, delays and fails requests on a real (emulated) S3 server; read_object and
ObjectBatches name the object that failed; download_atomic leaves nothing on a failed transfer;
ObjectBatches pickles without its client and serves the right samples from worker processes."""

from __future__ import annotations

import io
import os
import pickle
import time

import numpy as np
import pytest

pytest.importorskip("moto")
pytest.importorskip("s3fs")

from helpers.image_loaders import epoch_batches  # noqa: E402
from helpers.object_store import (  # noqa: E402
    LocalS3,
    ObjectBatches,
    download_atomic,
    read_object,
    read_objects,
)

pytestmark = pytest.mark.backend_independent
BUCKET, N = "test-object-store", 12


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def s3():
    """A running server holding N objects: sample k is a 2×2 array filled with k."""
    with LocalS3() as server:
        fs = server.filesystem()
        fs.mkdir(BUCKET)
        fs.pipe({f"{BUCKET}/s/{k:03d}.npy": _npy(np.full((2, 2), k, np.uint8)) for k in range(N)})
        yield server


@pytest.fixture
def paths():
    return [f"{BUCKET}/s/{k:03d}.npy" for k in range(N)]


def test_counts_requests_and_bytes(s3, paths):
    fs = s3.filesystem(max_concurrency=1)
    s3.reset_counts()
    whole = read_object(fs, paths[0])
    part = read_object(fs, paths[0], start=0, end=10)
    assert part == whole[:10]
    assert s3.counts() == {"GET": 1, "GET-range": 1, "bytes": len(whole) + 10}


def test_a_request_in_flight_at_a_reset_counts_in_neither_window(s3, paths):
    """A straggler from before reset_counts() (e.g. one a client gave up on) adds no bytes."""
    import threading

    fs = s3.filesystem(max_concurrency=1)
    s3.delay = 0.5
    try:
        s3.reset_counts()
        reader = threading.Thread(target=read_object, args=(fs, paths[1]))
        reader.start()
        deadline = time.monotonic() + 30
        while s3.peak_in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        s3.reset_counts()  # the read is in flight, held by the delay
        reader.join()
    finally:
        s3.delay = 0.0
    assert s3.counts() == {"bytes": 0}


def test_missing_key_is_named(s3):
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/s/nothing.npy"):
        read_object(s3.filesystem(), f"{BUCKET}/s/nothing.npy")


def test_failed_request_is_named_and_not_retried_by_default(s3, paths, tmp_path):
    fs = s3.filesystem(max_concurrency=1)
    s3.fail_keys.add(paths[5])
    try:
        s3.reset_counts()
        with pytest.raises(OSError, match=f"s3://{paths[5]}"):
            read_object(fs, paths[5])
        assert s3.counts()["GET"] == 1
        ds = ObjectBatches(paths, np.arange(N), s3.storage_options(max_concurrency=1),
                           batch_size=N, shuffle=False)
        with pytest.raises(OSError, match=f"s3://{paths[5]}"):
            ds[0]
        cached = ObjectBatches(paths, np.arange(N), s3.storage_options(), cache_dir=tmp_path,
                               batch_size=N, shuffle=False)
        with pytest.raises(OSError, match=f"s3://{paths[5]}"):
            cached[0]
    finally:
        s3.fail_keys.clear()


def test_interrupted_download_leaves_nothing(s3, paths, tmp_path):
    fs = s3.filesystem()
    mine = tmp_path / "mine.npy"
    mine.write_bytes(b"the user's file")
    s3.fail_keys.add(paths[2])
    try:
        with pytest.raises(OSError, match=f"s3://{paths[2]}"):
            download_atomic(fs, paths[2], tmp_path / "new.npy")
        with pytest.raises(OSError):
            download_atomic(fs, paths[2], mine)
    finally:
        s3.fail_keys.clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.npy"]
    assert mine.read_bytes() == b"the user's file"
    assert np.load(download_atomic(fs, paths[2], tmp_path / "new.npy"))[0, 0] == 2


def _under_delay(s3, read, delay: float = 0.2):
    """Run ``read()`` with every request delayed by ``delay`` s: (its result, seconds taken)."""
    s3.delay = delay
    try:
        s3.reset_counts()
        start = time.perf_counter()
        out = read()
        return out, time.perf_counter() - start
    finally:
        s3.delay = 0.0


def test_delay_is_per_request_and_threads_overlap(s3, paths):
    from concurrent.futures import ThreadPoolExecutor

    fs = s3.filesystem(max_concurrency=1)
    with ThreadPoolExecutor(4) as pool:
        _, elapsed = _under_delay(s3, lambda: list(pool.map(lambda p: read_object(fs, p),
                                                            paths[:4])))
    assert s3.counts()["GET"] == 4
    assert elapsed >= 0.2  # the delay was applied
    assert s3.peak_in_flight == 4  # overlapped: all four requests were in flight at once


def test_read_objects_overlaps_in_one_call_and_names_a_missing_key(s3, paths):
    fs = s3.filesystem(max_concurrency=1)
    out, elapsed = _under_delay(s3, lambda: read_objects(fs, paths[:4]))
    assert [np.load(io.BytesIO(out[p]))[0, 0] for p in paths[:4]] == [0, 1, 2, 3]
    assert elapsed >= 0.2
    # one call, overlapped: all four requests in flight at once (a count, not a timing)
    assert s3.counts()["GET"] == 4 and s3.peak_in_flight == 4
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/s/nothing.npy"):
        read_objects(fs, [paths[0], f"{BUCKET}/s/nothing.npy"])


def test_batches_pickle_without_client_and_serve_each_sample_once(s3, paths):
    ds = ObjectBatches(paths, np.arange(N), s3.storage_options(), batch_size=5, seed=3)
    x, y = ds[0]
    assert ds._filesystems  # opened by the read above
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._filesystems == {}
    x2, y2 = copy[0]
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(x[:, 0, 0], y)  # the label of sample k is k
    served = np.concatenate([ds[i][1] for i in range(len(ds))])
    assert sorted(served) == list(range(N))


def test_cache_serves_second_epoch_without_requests(s3, paths, tmp_path):
    ds = ObjectBatches(paths, np.arange(N), s3.storage_options(), cache_dir=tmp_path,
                       batch_size=4, shuffle=False)
    first = [ds[i][0] for i in range(len(ds))]
    s3.reset_counts()
    second = [ds[i][0] for i in range(len(ds))]
    assert s3.counts() == {"bytes": 0}
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(os.name != "posix", reason="fork start method")
def test_worker_processes_open_their_own(s3, paths):
    ds = ObjectBatches(paths, np.arange(N), s3.storage_options(), batch_size=4, seed=1,
                       workers=2, use_multiprocessing=True)
    labels = np.concatenate([y for _, y in epoch_batches(ds)])
    assert sorted(labels) == list(range(N))
