"""Every notebook opens and ends the same way, and was committed after one clean run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tools.colab_links import colab_badge, colab_bootstrap_source, colab_url

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _src(cell: dict) -> str:
    return "".join(cell["source"])


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/NN_title.ipynb found"


def test_numbering_is_unique():
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert len(numbers) == len(set(numbers)), numbers


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_opening(path: Path):
    cells = _cells(path)
    rel = path.relative_to(ROOT).as_posix()
    first = _src(cells[0])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# "), "no title first"
    assert colab_badge(rel) in first, f"badge must link to {colab_url(rel)}"
    urls = re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", first)
    assert urls == [colab_url(rel)], urls
    headings = [line.strip() for c in cells if c["cell_type"] == "markdown"
                for line in _src(c).splitlines() if line.startswith("#")]
    assert "## What you will learn" in headings
    assert "## Setup" in headings
    assert any(h.startswith("## Summary") for h in headings)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert _src(code[0]) == colab_bootstrap_source(), "first code cell must be the Colab one"
    assert any("setup_notebook(" in _src(c) for c in code[:4]), "Setup must call setup_notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_is_introduced(path: Path):
    cells = _cells(path)
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        before = cells[i - 1]["cell_type"] if i else None
        assert before == "markdown" or _src(cell).lstrip().startswith("#"), (
            f"code cell {i} has no sentence before it:\n{_src(cell)[:200]}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_after_one_clean_run(path: Path):
    code = [c for c in _cells(path) if c["cell_type"] == "code" and _src(c).strip()]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, "some code cells were never run"
    assert counts == list(range(1, len(counts) + 1)), f"not one top-to-bottom run: {counts}"
    for c in code:
        for out in c.get("outputs", []):
            assert out.get("output_type") != "error", f"committed with an error:\n{_src(c)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_keras2_api_or_machine_paths(path: Path):
    for c in _cells(path):
        if c["cell_type"] != "code":
            continue
        src = _src(c)
        assert ".fit_generator(" not in src, "fit_generator is gone in Keras 3"
        assert not re.search(r"['\"]/(work|tmp|root|home|Users)/", src), "absolute path"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_widget_state_in_metadata(path: Path):
    metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    assert "widgets" not in metadata, "run tools/strip_widget_state.py (make outputs does)"
