"""The reference results are complete, and every figure the prose cites from them is theirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.reference_figures import (
    LINK,
    PLACEHOLDER,
    fill,
    format_figure,
    load_results,
    reference_files,
    shown,
)

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted(
    p for p in (ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb")
    if ".ipynb_checkpoints" not in p.parts)]

def _prose(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


@pytest.mark.parametrize("reference", reference_files(), ids=lambda p: p.name)
def test_the_reference_file_says_where_and_how_it_was_measured(reference: Path):
    report = json.loads(reference.read_text(encoding="utf-8"))
    meta = report["provenance"]
    for field in ("cpu", "cores", "memory_gib", "gpus", "backend", "versions", "date",
                  "command", "rounds", "load_average_before", "load_average_after"):
        assert field in meta, f"provenance lacks {field!r}"
    assert meta["rounds"] >= 3
    for key, fig in report["results"].items():
        assert fig["min"] <= fig["median"] <= fig["max"], key
        assert fig["unit"] and fig["what"], key
        # A computed bound (ideal, serial) is one value; a measurement has every round.
        assert fig["rounds"] >= 3 or (fig["rounds"] == 1
                                      and key.endswith((".ideal", ".serial"))), key


def test_reference_files_share_no_key():
    seen: dict[str, str] = {}
    for path in reference_files():
        for key in load_results(path):
            assert key not in seen, f"{key} is in {seen[key]} and {path.name}"
            seen[key] = path.name


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_cited_figures_are_the_reference_medians(path: Path):
    text = _prose(path)
    left = PLACEHOLDER.findall(text)
    assert not left, f"placeholders not filled (run tools/reference_figures.py): {left}"
    files = {p: load_results(p) for p in reference_files()}
    for text_shown, target, key in LINK.findall(text):
        reference = (path.parent / target).resolve()
        assert reference in files, f"{key}: link to {target}, not a reference file"
        results = files[reference]
        name = key.partition("|")[0]
        assert name in results, f"{path.name} cites {name!r}, which the reference run lacks"
        assert text_shown == shown(key, results), (
            f"{path.name} shows {text_shown} for {key}; the reference run gives "
            f"{shown(key, results)}: run tools/reference_figures.py")


def test_a_range_shows_the_spread_of_the_rounds():
    results = {"r": {"median": 5.54, "min": 2.8, "max": 7.24, "rounds": 5, "unit": "x"},
               "s": {"median": 25400.0, "min": 13225.0, "max": 27934.0, "rounds": 5,
                     "unit": "samples/s"}}
    rel = "../benchmarks/results/reference_cpu_2core.json"
    assert fill("⟦r|range⟧", results, rel) == f'[5.5× (2.8–7.2× over 5 rounds)]({rel} "r|range")'
    assert shown("s|range", results) == "25,000 samples/s (13,000–28,000 samples/s over 5 rounds)"
    results["p"] = {"median": 94.3, "min": 94.2, "max": 94.5, "rounds": 3, "unit": "%"}
    assert shown("p|range", results) == "94 % (all 3 rounds)"


def test_fill_turns_placeholders_into_links_and_refreshes_old_figures():
    results = {"a.b": {"median": 3.84, "unit": "x"}, "c": {"median": 0.104, "unit": "s"}}
    text = 'x ⟦a.b⟧ y [9.9 s](../benchmarks/results/reference_cpu_2core.json "c")'
    rel = "../benchmarks/results/reference_cpu_2core.json"
    assert fill(text, results, rel) == (
        f'x [3.8×]({rel} "a.b") y [0.10 s]({rel} "c")')
    with pytest.raises(KeyError, match="nope"):
        fill("⟦nope⟧", results, rel)


@pytest.mark.parametrize(("figure", "shown"), [
    ({"median": 1.96, "unit": "x"}, "2.0×"),
    ({"median": 11234.0, "unit": "samples/s"}, "11,000 samples/s"),
    ({"median": 2.713, "unit": "MiB/MiB"}, "2.71 MiB"),
    ({"median": 0.1043, "unit": "s"}, "0.10 s"),
])
def test_format_figure(figure, shown):
    assert format_figure(figure) == shown
