"""tools/nbval_lanes.py: every notebook is in exactly one lane, and a failing lane fails."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tools import nbval_lanes

pytestmark = pytest.mark.backend_independent
ROOT = Path(__file__).resolve().parents[1]


def test_every_notebook_is_in_one_lane_in_order():
    found = nbval_lanes.lanes(ROOT)
    every = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("notebooks/**/*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
    assert sorted(found["core"] + found["deep-dives"]) == every
    assert found["core"][0].endswith("00_index.ipynb")
    assert all("/deep-dives/" in p for p in found["deep-dives"])
    assert all(lane == sorted(lane) for lane in found.values())


def test_lanes_prefix_their_lines_and_the_first_failure_wins(capsys):
    say = [sys.executable, "-c", "print('hello')"]
    fail = [sys.executable, "-c", "import sys; print('broken'); sys.exit(3)"]
    assert nbval_lanes.run_lanes({"a": say, "b": say}, cwd=ROOT) == 0
    out = capsys.readouterr().out
    assert "[a] hello" in out and "[b] hello" in out
    assert nbval_lanes.run_lanes({"a": say, "b": fail}, serial=True, cwd=ROOT) == 3
    assert "[b] broken" in capsys.readouterr().out


def test_side_by_side_lanes_share_the_cores_between_their_thread_pools(capsys, monkeypatch):
    show = [sys.executable, "-c", "import os; print('omp', os.environ.get('OMP_NUM_THREADS'))"]
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(nbval_lanes.os, "cpu_count", lambda: 4)
    nbval_lanes.run_lanes({"a": show, "b": show}, cwd=ROOT)
    assert capsys.readouterr().out.count("omp 2") == 2
    nbval_lanes.run_lanes({"a": show, "b": show}, serial=True, cwd=ROOT)
    assert capsys.readouterr().out.count("omp None") == 2  # one at a time: left as it was
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    nbval_lanes.run_lanes({"a": show, "b": show}, cwd=ROOT)
    assert capsys.readouterr().out.count("omp 3") == 2  # the caller's value is kept
