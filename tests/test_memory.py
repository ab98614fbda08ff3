"""PeakMemory sees what a block of code allocates, in this process and, if asked, its children."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from helpers.memory import (
    MB,
    PeakMemory,
    anon_bytes,
    anon_counter,
    rss_bytes,
    total_memory_bytes,
)


def test_a_100_mb_block_shows_up():
    with PeakMemory() as mem:
        block = np.ones(100 * MB, dtype=np.uint8)  # ones, not zeros: pages really touched
        del block
    assert mem.increase_mb >= 80
    assert mem.peak >= mem.start and mem.peak >= mem.end
    assert "RSS +" in repr(mem)


def test_anonymous_memory_counts_arrays_but_not_memory_mapped_pages(tmp_path):
    """Reading a memory-mapped file raises RSS (page cache); only an array copy is held."""
    path = tmp_path / "big.npy"
    np.save(path, np.ones(96 * MB, dtype=np.uint8))
    mapped = np.load(path, mmap_mode="r")
    with PeakMemory() as reading:
        total = int(mapped[:: 4096].sum())  # touches every page of the file
        time.sleep(0.05)
    assert total == 96 * MB // 4096
    with PeakMemory() as copying:
        held = np.array(mapped)  # a private copy: anonymous memory
        time.sleep(0.05)  # long enough for the 5 ms sampler
    assert held.nbytes == 96 * MB
    if anon_counter() == "RssAnon":  # USS would count the mapped pages too
        assert reading.increase_mb >= 64 and reading.anon_increase_mb < 16
    assert copying.anon_increase_mb >= 64


def test_an_empty_block_shows_about_nothing():
    with PeakMemory() as mem:
        pass
    assert abs(mem.increase_mb) < 20


def test_include_children_sees_a_child_process():
    # The child holds 100 MB for a second; only include_children=True may count it.
    code = "import time; b = bytearray(b'x' * (100 * 1024**2)); time.sleep(1.0)"
    with PeakMemory(include_children=True) as with_children:
        subprocess.run([sys.executable, "-c", code], check=True)
    with PeakMemory() as alone:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert with_children.increase_mb >= 80
    assert alone.increase_mb < 40


def test_rss_and_total_memory_are_plausible():
    assert 0 < rss_bytes() < total_memory_bytes()
    assert rss_bytes(include_children=True) >= rss_bytes() * 0.9
    assert 0 < anon_bytes() <= rss_bytes() * 1.1
