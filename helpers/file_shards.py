"""Sharding by file across processes: which files each process reads, how many steps that
gives it, and what a synchronous job does when those step counts differ.

Datasets that outgrow one disk come as shard files (TFRecord, tar, ArrayRecord, …), and the
simplest split between P processes is by file: process ``i`` reads files ``i, i + P, …``,
which is what ``tf.data``'s ``FILE`` auto-shard policy does (it inserts
``shard(num_workers, index)`` on the list of files). Files rarely hold equal numbers of
records, so the processes get unequal numbers of steps, and in synchronous data parallelism
every step is a collective that every process must join.

- ``write_record_files(folder, rows)``: a stand-in dataset of fixed-length records, each
  the pair ``(file, row)`` as two little-endian int32, one file per entry of ``rows``
  (``tf.data.FixedLengthRecordDataset(paths, RECORD_BYTES)`` reads them);
- ``record_counts(paths)``: the records in each file, from its size (an error names a file
  whose size is not a whole number of records: a truncated shard);
- ``files_of(process, processes, n_files)`` and ``steps_per_process``: the split by file;
- ``lockstep(steps, timeout)``: one process per entry of ``steps``, each taking that many
  steps, where a step is a wait on a ``multiprocessing.Barrier`` shared by all of them. The
  barrier stands in for the all-reduce of a real job (no gradients, no framework); its
  timeout stands in for waiting forever. Each process reports what happened to it.

Only the standard library is imported at the top: ``lockstep``'s processes are started with
``spawn`` (fresh interpreters, as on macOS and Windows) and import this module alone.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import queue
import threading
import time
from pathlib import Path

__all__ = ["RECORD_BYTES", "files_of", "lockstep", "record_counts", "steps_per_process",
           "write_record_files"]

RECORD_BYTES = 8  # one record: (file index, row index) as two little-endian int32


def write_record_files(folder: str | Path, rows: list[int], prefix: str = "shard") -> list[Path]:
    """Write ``len(rows)`` files of fixed-length records into ``folder``; return their paths.

    File ``f`` holds ``rows[f]`` records ``(f, 0), (f, 1), …``, so every record says where it
    came from. Each file is written whole or not at all (``helpers.atomic``); a file that
    already exists is never overwritten (FileExistsError names it).
    """
    import numpy as np

    from .atomic import atomic_file

    folder = Path(folder)
    paths = [folder / f"{prefix}-{f:03d}-of-{len(rows):03d}.bin" for f in range(len(rows))]
    for path in paths:
        if path.exists():
            raise FileExistsError(f"{path.name} already exists in {folder}: not overwritten")
    for f, (path, n) in enumerate(zip(paths, rows, strict=True)):
        records = np.stack([np.full(int(n), f), np.arange(int(n))], axis=1).astype("<i4")
        with atomic_file(path) as out:
            out.write(records.tobytes())
    return paths


def record_counts(paths: list[str | Path], record_bytes: int = RECORD_BYTES) -> list[int]:
    """The number of records in each file, from its size alone (nothing is read).

    A size that is not a whole number of records means a truncated or foreign file:
    ValueError names it, rather than a reader failing later somewhere in an epoch.
    """
    counts = []
    for path in map(Path, paths):
        size = path.stat().st_size
        if size % record_bytes:
            raise ValueError(f"{path.name}: {size} bytes is not a whole number of "
                             f"{record_bytes}-byte records (truncated?)")
        counts.append(size // record_bytes)
    return counts


def files_of(process: int, processes: int, n_files: int) -> list[int]:
    """The files process ``process`` of ``processes`` reads when sharding by file:
    ``process, process + processes, …`` (``tf.data.Dataset.shard`` on the list of files)."""
    if not 0 <= process < processes:
        raise ValueError(f"process must be in [0, {processes}), got {process}")
    return list(range(process, n_files, processes))


def steps_per_process(rows: list[int], processes: int, batch_size: int,
                      drop_remainder: bool = False) -> list[int]:
    """Steps (batches) per process when each reads its files (``files_of``) and batches them
    as one stream: ``ceil`` of its records over ``batch_size``, ``floor`` with
    ``drop_remainder``."""
    step = (lambda n: n // batch_size) if drop_remainder else (
        lambda n: math.ceil(n / batch_size))
    return [step(sum(rows[f] for f in files_of(p, processes, len(rows))))
            for p in range(processes)]


def _take_steps(process: int, steps: int, ready, barrier, timeout: float, out) -> None:
    """A child: wait until all processes are up, then ``steps`` barrier waits (the stand-in
    for one all-reduce each); report how many completed and how long the last wait took."""
    report = {"process": process, "steps": steps, "done": 0, "outcome": "finished",
              "waited_s": 0.0}
    ready.wait(60)  # not the lesson: processes start at different times
    for _ in range(steps):
        t0 = time.perf_counter()
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            report["waited_s"] = time.perf_counter() - t0
            report["outcome"] = f"stuck in step {report['done'] + 1}"
            break
        report["waited_s"] = time.perf_counter() - t0
        report["done"] += 1
    out.put(report)


def lockstep(steps: list[int], timeout: float = 1.0) -> list[dict]:
    """Run one process per entry of ``steps``; each takes that many synchronous steps.

    A step is ``Barrier.wait(timeout)`` on a barrier of ``len(steps)`` parties: it returns
    only when every process has reached it, as an all-reduce does. A process that has run
    out of steps no longer comes, so the others wait; after ``timeout`` seconds the barrier
    breaks for all of them (a real collective would wait on, up to its own timeout if it
    has one). Returns, per process: ``process``, ``steps`` (planned), ``done`` (steps
    completed), ``outcome`` ("finished" or "stuck in step k") and ``waited_s`` (the length
    of its last wait). Every process is joined or killed before this returns.
    """
    ctx = mp.get_context("spawn")
    ready, barrier, out = ctx.Barrier(len(steps)), ctx.Barrier(len(steps)), ctx.Queue()
    procs = [ctx.Process(target=_take_steps, args=(p, n, ready, barrier, timeout, out),
                         daemon=True) for p, n in enumerate(steps)]
    for proc in procs:
        proc.start()
    reports, deadline = [], time.monotonic() + 60 + 2 * timeout
    try:
        while len(reports) < len(procs):
            try:
                reports.append(out.get(timeout=0.05))
            except queue.Empty:
                crashed = [p for p, proc in enumerate(procs) if proc.exitcode]
                if crashed or time.monotonic() > deadline:
                    raise RuntimeError(f"{len(reports)} of {len(procs)} processes reported; "
                                       f"crashed: {crashed}") from None
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return sorted(reports, key=lambda r: r["process"])
