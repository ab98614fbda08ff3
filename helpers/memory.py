"""How much memory a block of code holds: anonymous memory beside the resident set (RSS).

``array.nbytes`` tells what one array needs; the operating system tells what the whole
process holds. It offers two figures, and the difference matters for this course:

- **RSS** counts every page of the process that is in RAM, including pages of files it has
  read through a memory map. Those are clean page cache: the kernel drops them when memory
  runs short and reads them again on the next access. An epoch over a memory-mapped cache
  raises RSS by the size of the file, yet holds nothing.
- **Anonymous memory** (Linux ``RssAnon``: heap, NumPy arrays, copies) cannot be dropped,
  only swapped. It is what runs a machine out of memory, so it is what "held" means here.
  Where ``/proc`` is missing (macOS, Windows), the process's USS stands in: the pages only
  it maps, which also counts file pages only it has mapped. ``anon_counter()`` says which.

``PeakMemory`` records both, at entry, at their highest while its block runs (sampled in a
background thread; on Linux RSS also from the kernel's own high-water mark) and at exit.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import psutil

__all__ = ["MB", "PeakMemory", "anon_bytes", "anon_counter", "rss_bytes",
           "total_memory_bytes"]

MB = 1024**2


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def rss_bytes(include_children: bool = False) -> int:
    """Resident memory of this process now (plus its child processes, if asked)."""
    proc = psutil.Process()
    total = proc.memory_info().rss
    if include_children:
        for child in _children(proc):
            with contextlib.suppress(psutil.Error):  # a worker that just exited
                total += child.memory_info().rss
    return total


def _rss_anon(pid: int | str = "self") -> int | None:
    """``RssAnon`` of a process from ``/proc/<pid>/status`` (Linux), else None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def anon_counter() -> str:
    """The name of what ``anon_bytes`` reads on this platform: "RssAnon" or "USS"."""
    return "RssAnon" if _rss_anon() is not None else "USS"


def anon_bytes(include_children: bool = False) -> int:
    """Anonymous memory of this process now (plus its child processes' USS, if asked).

    Children forked from this process share its pages until they write to them; their USS
    (pages only they map) adds what they hold of their own without counting a shared page
    twice.
    """
    proc = psutil.Process()
    total = _rss_anon()
    if total is None:
        total = proc.memory_full_info().uss
    if include_children:
        for child in _children(proc):
            with contextlib.suppress(psutil.Error):
                total += child.memory_full_info().uss
    return total


def total_memory_bytes() -> int:
    """Physical memory of this machine."""
    return psutil.virtual_memory().total


def _reset_linux_peak() -> bool:
    """Reset the kernel's peak-RSS counter of this process; False where not supported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _linux_peak() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class PeakMemory:
    """Context manager: the anonymous memory and the RSS a block of code takes at its peak.

    >>> with PeakMemory() as mem:
    ...     big = bytearray(200 * MB)
    >>> mem.anon_increase_mb > 150 and mem.increase_mb > 150
    True

    Attributes (bytes): ``start``, ``peak``, ``end`` (RSS) and ``anon_start``,
    ``anon_peak``, ``anon_end`` (anonymous memory); ``*_mb`` properties in MiB.
    ``include_children=True`` adds child processes (e.g. process workers); those are seen
    by sampling only, every ``interval`` seconds.
    """

    def __init__(self, include_children: bool = False, interval: float = 0.005) -> None:
        self.include_children = include_children
        self.interval = interval
        self.start = self.end = self.peak = 0
        self.anon_start = self.anon_end = self.anon_peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._kernel_peak = False

    def _read(self) -> tuple[int, int]:
        return rss_bytes(self.include_children), anon_bytes(self.include_children)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss, anon = self._read()
            self.peak, self.anon_peak = max(self.peak, rss), max(self.anon_peak, anon)

    def __enter__(self) -> PeakMemory:
        self._kernel_peak = _reset_linux_peak()
        self.start, self.anon_start = self._read()
        self.peak, self.anon_peak = self.start, self.anon_start
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.end, self.anon_end = self._read()
        self.peak, self.anon_peak = max(self.peak, self.end), max(self.anon_peak, self.anon_end)
        if self._kernel_peak:
            self.peak = max(self.peak, _linux_peak() or 0)

    @property
    def start_mb(self) -> float:
        return self.start / MB

    @property
    def peak_mb(self) -> float:
        return self.peak / MB

    @property
    def end_mb(self) -> float:
        return self.end / MB

    @property
    def increase_mb(self) -> float:
        """RSS: peak minus the value at entry, what the block added at its highest."""
        return (self.peak - self.start) / MB

    @property
    def anon_peak_mb(self) -> float:
        return self.anon_peak / MB

    @property
    def anon_increase_mb(self) -> float:
        """Anonymous memory: peak minus the value at entry (what the block really held)."""
        return (self.anon_peak - self.anon_start) / MB

    def __repr__(self) -> str:
        return (f"PeakMemory(anonymous +{self.anon_increase_mb:.0f} MiB at peak, "
                f"RSS +{self.increase_mb:.0f} MiB at peak)")
