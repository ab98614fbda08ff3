"""How much memory a block of code really takes: the process's resident set (RSS).

``array.nbytes`` tells what one array needs; the operating system's resident set tells
what the whole process holds, copies and framework buffers included. ``PeakMemory``
records the highest RSS seen while its block runs, by sampling in a background thread and,
on Linux, also by reading the kernel's own high-water mark (``VmHWM``), reset on entry.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psutil

__all__ = ["MB", "PeakMemory", "rss_bytes", "total_memory_bytes"]

MB = 1024**2


def rss_bytes(include_children: bool = False) -> int:
    """Resident memory of this process now (plus its child processes, if asked)."""
    proc = psutil.Process()
    total = proc.memory_info().rss
    if include_children:
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:  # a worker that just exited
                pass
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
    """Context manager measuring the peak resident memory while its block runs.

    >>> with PeakMemory() as mem:
    ...     big = bytearray(200 * MB)
    >>> mem.increase_mb > 150
    True

    Attributes (bytes): ``start``, ``end``, ``peak``; ``*_mb`` properties in MiB.
    ``include_children=True`` adds the RSS of child processes (e.g. process workers);
    those are seen by sampling only, every ``interval`` seconds.
    """

    def __init__(self, include_children: bool = False, interval: float = 0.005) -> None:
        self.include_children = include_children
        self.interval = interval
        self.start = self.end = self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._kernel_peak = False

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes(self.include_children))

    def __enter__(self) -> PeakMemory:
        self._kernel_peak = _reset_linux_peak()
        self.start = self.peak = rss_bytes(self.include_children)
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.end = rss_bytes(self.include_children)
        self.peak = max(self.peak, self.end)
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
        """Peak minus the RSS at entry: what the block added at its highest."""
        return (self.peak - self.start) / MB

    def __repr__(self) -> str:
        return (f"PeakMemory(start={self.start_mb:.0f} MiB, peak={self.peak_mb:.0f} MiB, "
                f"increase={self.increase_mb:.0f} MiB)")
