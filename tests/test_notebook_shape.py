"""Every notebook opens and ends the same way, and was committed after one clean run."""

from __future__ import annotations

import functools
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.colab_links import colab_badge, colab_bootstrap_source, colab_url

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _src(cell: dict) -> str:
    return "".join(cell["source"])


def _output_text(cell: dict) -> str:
    """What a reader sees under a code cell: streams, results and error tracebacks."""
    parts = []
    for out in cell.get("outputs", []):
        parts.append("".join(out.get("text", "")))
        parts.append("".join(out.get("data", {}).get("text/plain", "")))
        parts.append("\n".join(out.get("traceback", [])))
    return "\n".join(parts)


# Lines frameworks print from C++ or absl: in a committed output they look like failures.
FRAMEWORK_LOG = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]"  # absl: I0000 00:00:17… 123 file.cc:1]
    r"|absl::InitializeLog|oneDNN custom operations|cuInit|cudart_stub|cuda_(?:dnn|fft|blas)"
    r"|Unable to register cu|TensorFlow binary is optimized|computation placer already"
    r"|An NVIDIA GPU may be present|XLA service 0x|StreamExecutor device", re.MULTILINE)
MACHINE_PATH = re.compile(r"(?<![\w.])(/work|/tmp|/root|/home|/Users|/private|/opt|/usr|/var)/"
                          r"|[A-Z]:\\|site-packages")


def test_the_log_and_path_patterns_catch_what_they_are_for():
    logs = ("I0000 00:00:1795265405.218643   32659 port.cc:153] oneDNN custom operations are on",
            "E0000 00:00:1795265407.906337   32659 cuda_platform.cc:52] failed call to cuInit",
            "WARNING: All log messages before absl::InitializeLog() is called are written")
    assert all(FRAMEWORK_LOG.search(line) for line in logs)
    assert not FRAMEWORK_LOG.search("Epoch 1/3\n32/32 - 1s - loss: 0.69 - accuracy: 0.51")
    assert all(MACHINE_PATH.search(p) for p in ("/tmp/tmpab12/data", "in /home/me/data",
                                                "C:\\Users\\me", "lib/site-packages/keras"))
    assert not MACHINE_PATH.search("data/volumes/id-1.npy; 12 MiB/s; and/or 3/4")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_hold_no_framework_logs_or_machine_paths(path: Path):
    for i, cell in enumerate(_cells(path)):
        text = _output_text(cell)
        if found := FRAMEWORK_LOG.search(text):
            pytest.fail(f"cell {i}: framework log line in the output: {found.group(0)!r}; "
                        "silence it (helpers.quiet.c_stderr_silenced) and re-run")
        if found := MACHINE_PATH.search(text):
            pytest.fail(f"cell {i}: a machine path in the output near {found.group(0)!r}: "
                        "print paths relative to data_root()")


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
    assert re.match(rf"# {path.name[:2]} · \S", first), "title must read '# NN · …' (NN = file)"
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
def test_every_cell_has_a_unique_id(path: Path):
    """nbformat 4.5 requires cell IDs; without them nbformat warns now and will refuse later."""
    ids = [c.get("id") for c in _cells(path)]
    assert None not in ids, f"cells {[i for i, x in enumerate(ids) if x is None]} have no id"
    assert len(set(ids)) == len(ids), "two cells share an id"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_keras2_api_or_machine_paths(path: Path):
    for c in _cells(path):
        if c["cell_type"] != "code":
            continue
        src = _src(c)
        assert ".fit_generator(" not in src, "fit_generator is gone in Keras 3"
        assert not re.search(r"['\"]/(work|tmp|root|home|Users)/", src), "absolute path"


MAX_CELL_LINES = 30


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_cells_read_in_one_glance(path: Path):
    """At most 30 lines a cell; the Setup cells (backend, import list) are the exception."""
    for i, cell in enumerate(_cells(path)):
        lines = _src(cell).splitlines()
        setup = "setup_notebook(" in _src(cell) or 'setdefault("KERAS_BACKEND"' in _src(cell)
        if cell["cell_type"] == "code" and not setup:
            assert len(lines) <= MAX_CELL_LINES, (
                f"code cell {i} has {len(lines)} lines (at most {MAX_CELL_LINES}): split it, "
                f"with a sentence before each part:\n{_src(cell)[:200]}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_tidy(path: Path):
    """No line split over two saved stream pieces, no ANSI colour codes in plain text."""
    for i, cell in enumerate(_cells(path)):
        outputs = cell.get("outputs", [])
        for a, b in itertools.pairwise(outputs):
            assert not (a.get("output_type") == b.get("output_type") == "stream"
                        and a["name"] == b["name"]), (
                f"cell {i}: split stream output; run tools/tidy_outputs.py (make outputs does)")
        assert "\x1b[" not in _output_text(cell), f"cell {i}: ANSI codes; run tools/tidy_outputs.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_widget_state_in_metadata(path: Path):
    metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    assert "widgets" not in metadata, "run tools/tidy_outputs.py (make outputs does)"


# A repository file the prose points a reader to: a relative link, or a path in backticks.
REPO_FILE = re.compile(r"\]\((?!https?:|#|mailto:)([^)\s#]+)[^)]*\)"
                       r"|`((?:helpers|tests|benchmarks|tools|notebooks|data)/[\w./-]+\.\w+)`")


@functools.cache
def _tracked_files() -> frozenset[str] | None:
    """The files git tracks here, or None where this is not a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return frozenset(out.splitlines())


@pytest.mark.parametrize("path", [*NOTEBOOKS, ROOT / "README.md"], ids=lambda p: p.name)
def test_files_the_prose_names_are_in_the_repository(path: Path):
    """A cited file must reach a clean clone: it exists and git tracks it (not ignored)."""
    text = (path.read_text(encoding="utf-8") if path.suffix == ".md" else
            "\n".join(_src(c) for c in _cells(path) if c["cell_type"] == "markdown"))
    tracked = _tracked_files()
    for link, quoted in REPO_FILE.findall(text):
        target = (path.parent / link) if link else ROOT / quoted
        rel = target.resolve().relative_to(ROOT).as_posix()
        assert target.exists(), f"{path.name} names {link or quoted}, which does not exist"
        if tracked is not None and target.is_file():
            assert rel in tracked, f"{path.name} names {rel}, which git does not track"


def _is_deep_dive_notebook(path: Path) -> bool:
    return "deep-dives" in path.parts


def _deep(cell: dict) -> bool:
    return "deep-dive" in cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_tldr_states_the_lesson_in_at_most_five_lines(path: Path):
    first = _src(_cells(path)[0])
    quoted = [line for line in first.splitlines() if line.startswith(">")]
    tldr = [i for i, line in enumerate(quoted) if line.startswith("> **TL;DR**")]
    assert tldr, "the first cell needs a '> **TL;DR** …' blockquote under the title"
    lines = list(itertools.takewhile(lambda line: line.startswith(">"), quoted[tldr[0]:]))
    assert len(lines) <= 5, f"TL;DR of {len(lines)} lines (at most 5)"
    if _is_deep_dive_notebook(path):
        assert any(line.startswith("> **Deep dive.**") for line in quoted), (
            "a deep-dive notebook says so under its title: '> **Deep dive.** …'")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_summary_states_results_and_exercises_have_solutions(path: Path):
    cells = _cells(path)
    core = [c for c in cells if not _deep(c)]
    summary = [_src(c) for c in core if c["cell_type"] == "markdown"
               and _src(c).lstrip().startswith("## Summary")]
    assert summary, "no '## Summary' in the core part"
    assert not re.search(r"printed (just )?above", summary[0], re.IGNORECASE), (
        "a Summary states results; it does not send the reader back to the outputs")
    exercises = [_src(c) for c in core if c["cell_type"] == "markdown"
                 and _src(c).lstrip().startswith("## Exercises")]
    assert exercises, "no '## Exercises' in the core part"
    assert "<details>" in exercises[0], "exercises keep their solutions behind <details>"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_deep_dive_sections_close_the_notebook_behind_a_banner(path: Path):
    cells = _cells(path)
    flags = [_deep(c) for c in cells]
    if not any(flags):
        return
    start = flags.index(True)
    assert all(flags[start:]), "deep-dive cells form one block at the end of the notebook"
    banner = cells[start]
    assert banner["cell_type"] == "markdown" and _src(banner).startswith(
        "## Deep dives (optional)"), "the deep-dive block opens with '## Deep dives (optional)'"
    assert any(_src(c).lstrip().startswith("## Exercises") for c in cells[:start]), (
        "the core part ends with its Exercises, before the deep dives")


READING_TIME = ROOT.parent / "shared" / "tools" / "reading_time.py"


@pytest.mark.skipif(not READING_TIME.is_file(), reason="../shared/tools/ is not beside this clone")
def test_core_path_reads_within_its_limits():
    """Each core notebook <= 20 min, the core <= 150 min, short cells (the tool's --check)."""
    done = subprocess.run([sys.executable, str(READING_TIME), "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
