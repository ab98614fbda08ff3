"""Object storage without the cloud: a local S3 emulator, and batches read from it (notebook 15).

- ``LocalS3`` starts moto's S3 emulator on 127.0.0.1 (a free port) in a thread of this process,
  behind a small WSGI layer that counts every request and the bytes it returns, can delay each
  request by a stated time (an assumption standing in for network latency, not a measurement
  of S3) and can fail the requests for chosen keys. moto's own ``ThreadedMotoServer`` serves the
  same app (``moto/moto_server/threaded_moto_server.py``) but takes no such layer, so this class
  puts moto's pieces together the same way with it.
- ``read_object`` reads an object (or a byte range of it) through fsspec and re-raises a
  failure with the bucket and key in its message.
- ``read_objects`` reads many objects in one ``fs.cat`` call: fsspec sends their requests
  concurrently on its event loop, from the one calling thread; errors name the key.
- ``ObjectBatches`` is a ``PyDataset`` of ``.npy`` objects, a batch read with ``read_objects``:
  it keeps the fsspec *options*, not a client, opens its file system on the first read in each
  process (keyed by ``os.getpid()``) and leaves it out of pickling, because s3fs' file systems
  refuse to run in a forked child (``fsspec/asyn.py``: ``AsyncFileSystem.loop`` raises "This
  class is not fork-safe").
- ``download_atomic`` copies an object to a local file whole or not at all.

s3fs, fsspec and moto are imported inside the functions that need them, so that
``import helpers`` stays light.
"""

from __future__ import annotations

import collections
import io
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from .atomic import atomic_file
from .generator import epoch_order, resolve_seed

__all__ = ["LocalS3", "ObjectBatches", "download_atomic", "read_object", "read_objects"]


def _kind(environ: dict) -> str:
    """What an S3 request does: PUT, HEAD, LIST, GET (whole object) or GET-range."""
    method = environ["REQUEST_METHOD"]
    if method == "GET":
        if "list-type" in environ.get("QUERY_STRING", ""):
            return "LIST"
        return "GET-range" if environ.get("HTTP_RANGE") else "GET"
    return method


_FAILURE = (b"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>InternalError</Code>"
            b"<Message>injected failure (LocalS3.fail_keys)</Message></Error>")


class _Counting:
    """WSGI middleware around moto's app: counts, delays and fails requests."""

    def __init__(self, app) -> None:
        self.app = app
        self.delay = 0.0
        self.fail_keys: set[str] = set()
        self._lock = threading.Lock()
        self.requests: collections.Counter = collections.Counter()
        self.bytes_out = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        # bumped by reset: a request that started before a reset adds no bytes after it
        self.generation = 0

    def __call__(self, environ: dict, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        kind = _kind(environ)
        with self._lock:
            self.requests[kind] += 1
            generation = self.generation
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)  # the injected latency, per request
            if path.lstrip("/") in self.fail_keys:  # "bucket/key"
                body = b"" if kind == "HEAD" else _FAILURE
                start_response("500 Internal Server Error", [
                    ("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
                return [body]
            body = b"".join(self.app(environ, start_response))
            with self._lock:
                if kind != "HEAD" and generation == self.generation:
                    self.bytes_out += len(body)
            return [body]
        finally:
            with self._lock:
                self.in_flight -= 1


class LocalS3:
    """moto's S3 emulator on 127.0.0.1, counted; a context manager (``with LocalS3() as s3:``).

    It is an emulator of S3's API in this process: what it shows are requests, bytes and the
    behaviour of the clients; its speed says nothing about S3's. ``delay`` (seconds, per
    request) and ``fail_keys`` (``"bucket/key"`` strings answered with HTTP 500) can be changed
    while it runs. moto keeps its buckets in this process, shared by every ``LocalS3`` in it;
    ``stop()`` empties them.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self._server = None
        self._thread: threading.Thread | None = None
        self._app: _Counting | None = None
        self._initial_delay = float(delay)

    def start(self) -> LocalS3:
        """Start the server on a free port of 127.0.0.1 and return ``self``."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class _Quiet(MotoRequestHandler):
            def log_request(self, *args, **kwargs) -> None:  # no line per request
                pass

        self._app = _Counting(DomainDispatcherApplication(create_backend_app))
        self._app.delay = self._initial_delay
        # threaded=True: one thread per request, as ThreadedMotoServer serves; port 0: a free one
        self._server = make_server("127.0.0.1", 0, self._app, True, request_handler=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Empty moto's buckets and stop the server."""
        if self._server is None:
            return
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset", method="POST"), timeout=10).close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalS3 is not running: call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def delay(self) -> float:
        return self._app.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._app.delay = float(seconds)

    @property
    def fail_keys(self) -> set[str]:
        return self._app.fail_keys

    def counts(self) -> dict[str, int]:
        """Requests by kind since the last ``reset_counts()``, plus ``"bytes"`` returned."""
        with self._app._lock:
            return {**dict(sorted(self._app.requests.items())), "bytes": self._app.bytes_out}

    @property
    def peak_in_flight(self) -> int:
        """The most requests the server held at once since the last ``reset_counts()``."""
        return self._app.peak_in_flight

    def reset_counts(self) -> None:
        """Start counting afresh. A request still in flight (one a client gave up on, say) counts
        in neither window, so ``counts()`` holds only requests that started after the reset."""
        with self._app._lock:
            self._app.requests.clear()
            self._app.bytes_out = self._app.peak_in_flight = 0
            self._app.generation += 1

    def storage_options(self, retries: int = 0, **extra: Any) -> dict[str, Any]:
        """Keyword arguments of ``s3fs.S3FileSystem`` for this server (plain, picklable values).

        ``retries``: how many times botocore retries a failed request (0 by default, so that a
        failure shows at once; S3 clients usually retry). ``extra`` is passed on to s3fs
        (``max_concurrency=1`` saves the HEAD s3fs sends before reading a whole object).
        """
        return {"key": "local", "secret": "local", "endpoint_url": self.endpoint_url,
                "client_kwargs": {"region_name": "eu-west-1"},
                "config_kwargs": {"retries": {"mode": "standard",
                                              "total_max_attempts": 1 + int(retries)}},
                **extra}

    def filesystem(self, retries: int = 0, **extra: Any):
        """An ``s3fs.S3FileSystem`` for this server (see ``storage_options``)."""
        import s3fs

        return s3fs.S3FileSystem(**self.storage_options(retries, **extra))


def read_object(fs, path: str, start: int | None = None, end: int | None = None) -> bytes:
    """The bytes of object ``path`` (``"bucket/key"``), or ``[start, end)`` of them.

    Raises FileNotFoundError or OSError whose message names ``s3://bucket/key``.
    """
    try:
        return fs.cat_file(path, start=start, end=end)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"s3://{path} does not exist") from e
    except Exception as e:
        raise OSError(f"reading s3://{path} failed: {type(e).__name__}: {e}") from e


def read_objects(fs, paths: list[str]) -> dict[str, bytes]:
    """The bytes of each object in ``paths`` (``"bucket/key"``), fetched by one ``fs.cat`` call.

    fsspec runs the requests concurrently on its event loop (``AsyncFileSystem._cat``), so a
    list costs about one request's wait, not one per object. Raises FileNotFoundError or
    OSError naming ``s3://bucket/key`` of an object that failed.
    """
    try:
        out = fs.cat(list(paths), on_error="return")
    except Exception:  # a file system that fails the call as a whole: find the key one by one
        return {p: read_object(fs, p) for p in paths}
    for p in paths:
        value = out.get(p, FileNotFoundError(p))
        if isinstance(value, FileNotFoundError):
            raise FileNotFoundError(f"s3://{p} does not exist") from value
        if isinstance(value, Exception):
            raise OSError(f"reading s3://{p} failed: {type(value).__name__}: {value}") from value
    return out


def download_atomic(fs, path: str, target: str | os.PathLike) -> Path:
    """Copy object ``path`` to the local file ``target``, whole or not at all.

    The bytes go to a temporary name in ``target``'s folder and are renamed at the end
    (``helpers.atomic``); a failed transfer leaves ``target`` as it was. Returns ``target``.
    """
    target = Path(target)
    with atomic_file(target) as f:
        f.write(read_object(fs, path))
    return target


def _npy(data: bytes, path: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as e:
        raise ValueError(f"s3://{path} is not a readable .npy object: {e}") from e


class ObjectBatches(keras.utils.PyDataset):
    """Batches of ``.npy`` objects read through fsspec, one object per sample.

    Args:
        paths: the objects, ``"bucket/key"`` (or with a ``protocol://`` prefix).
        labels: one label per object.
        storage_options: keyword arguments of the file system (``LocalS3.storage_options()``);
            plain values, so the dataset pickles; the file system itself is opened on the first
            read in each process and never pickled.
        protocol: ``"s3"``; with ``cache_dir``, reads go through fsspec's ``simplecache::``,
            which keeps a local copy of each object it reads there and serves later reads
            from it.
        batch_size, shuffle, seed: as the course's other generators (``epoch_order``).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``PyDataset``.

    Raises FileNotFoundError/OSError naming ``s3://bucket/key`` when an object cannot be read.
    """

    def __init__(self, paths, labels, storage_options: dict[str, Any] | None = None,
                 protocol: str = "s3", cache_dir: str | os.PathLike | None = None,
                 batch_size: int = 32, shuffle: bool = True, seed: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.paths = [str(p).split("://", 1)[-1] for p in paths]
        self.labels = np.asarray(labels)
        if len(self.paths) != len(self.labels) or not self.paths:
            raise ValueError(f"{len(self.paths)} paths and {len(self.labels)} labels: "
                             "they must match and not be empty")
        self.storage_options = dict(storage_options or {})
        self.protocol = protocol
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self.batch_size = int(batch_size)
        self.shuffle, self.seed, self.epoch = bool(shuffle), resolve_seed(seed), 0
        self.indexes = epoch_order(len(self.paths), self.seed, 0, self.shuffle)
        self._filesystems: dict[int, Any] = {}  # process id -> file system

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_filesystems"] = {}  # a client never travels: each process opens its own
        return state

    def filesystem(self):
        """This process's file system, opened on the first call in the process (by pid)."""
        pid = os.getpid()
        fs = self._filesystems.get(pid)
        if fs is None:
            import fsspec

            if self.cache_dir is None:
                fs = fsspec.filesystem(self.protocol, **self.storage_options)
            else:
                fs = fsspec.filesystem("simplecache", target_protocol=self.protocol,
                                       target_options=self.storage_options,
                                       cache_storage=self.cache_dir)
            fs = self._filesystems.setdefault(pid, fs)  # another thread may have won
        return fs

    def __len__(self) -> int:
        return math.ceil(len(self.paths) / self.batch_size)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.indexes = epoch_order(len(self.paths), self.seed, self.epoch, self.shuffle)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        rows = self.indexes[index * self.batch_size:(index + 1) * self.batch_size]
        paths = [self.paths[i] for i in rows]
        data = read_objects(self.filesystem(), paths)  # one call: the requests overlap
        x = np.stack([_npy(data[p], p) for p in paths])
        return x, self.labels[rows]
