"""Put the reference results into the prose, and keep them in step (maintainers only).

The notebooks and README cite figures of the committed reference run
(``benchmarks/results/reference_cpu_2core.json``, written by ``benchmarks/reference.py``) as
links whose text is the figure and whose title is its key, for example

    [3.8×](../benchmarks/results/reference_cpu_2core.json "workers.io_wait.speedup_threads_4")

A writer types the placeholder ``⟦workers.io_wait.speedup_threads_4⟧``; this tool turns it
into such a link, and after a new reference run it rewrites every link's figure from the file.
``⟦key|range⟧`` shows the spread too: ``5.5× (2.8–7.2× over 5 rounds)``.
tests/test_reference_figures.py checks that no placeholder is left and that every cited
figure is the file's median.

    python tools/reference_figures.py [FILE ...]      # default: README.md and every notebook
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

__all__ = ["LINK", "PLACEHOLDER", "REFERENCE", "fill", "format_figure", "format_spread",
           "load_results", "shown"]

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "benchmarks" / "results" / "reference_cpu_2core.json"
PLACEHOLDER = re.compile(r"⟦([\w.]+(?:\|range)?)⟧")
LINK = re.compile(r"\[([^\]]*)\]\(((?:\.\./)*benchmarks/results/reference_[\w-]+\.json) "
                  r"\"([\w.]+(?:\|range)?)\"\)")


def load_results(path: Path = REFERENCE) -> dict[str, dict]:
    """The ``results`` of a reference file: ``{key: {"median": ..., "unit": ...}}``."""
    return json.loads(path.read_text(encoding="utf-8"))["results"]


def format_figure(figure: dict) -> str:
    """How the prose shows a figure: its median, rounded to what the spread supports."""
    m, unit = figure["median"], figure["unit"]
    if unit == "x":
        return f"{m:.1f}×"
    if unit == "samples/s":
        return f"{float(f'{m:.2g}'):,.0f} samples/s"
    if unit == "MiB/MiB":
        return f"{m:.2f} MiB"
    if unit == "MiB":
        return f"{m:,.0f} MiB"
    if unit == "s":
        return f"{m:.2f} s"
    return f"{m:.3g} {unit}"


def format_spread(figure: dict) -> str:
    """The median with the range of the rounds: ``5.5× (2.8–7.2× over 5 rounds)``."""
    low = format_figure(figure | {"median": figure["min"]})
    high = format_figure(figure | {"median": figure["max"]})
    unit = re.search(r"[^\d,.]*$", high).group(0)  # "×", " s": the unit once, after the range
    return (f"{format_figure(figure)} ({low[:len(low) - len(unit)]}–{high} "
            f"over {figure['rounds']} rounds)")


def shown(key: str, results: dict[str, dict]) -> str:
    """What the prose shows for ``key`` (``name`` or ``name|range``)."""
    name, _, style = key.partition("|")
    if name not in results:
        raise KeyError(f"{name!r} is not in the reference results (keys: {sorted(results)})")
    return format_spread(results[name]) if style else format_figure(results[name])


def fill(text: str, results: dict[str, dict], relative: str) -> str:
    """``text`` with placeholders turned into links and every link's figure refreshed.

    ``relative``: the reference file's path as seen from the document (``../benchmarks/...``).
    """

    def link(key: str) -> str:
        return f'[{shown(key, results)}]({relative} "{key}")'

    text = PLACEHOLDER.sub(lambda m: link(m.group(1)), text)
    return LINK.sub(lambda m: link(m.group(3)), text)


def _documents() -> list[Path]:
    notebooks = sorted(p for p in (ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    return [ROOT / "README.md", *notebooks]


def main(paths: list[Path]) -> None:
    results = load_results()
    for path in paths or _documents():
        relative = os.path.relpath(REFERENCE, path.resolve().parent)
        if path.suffix == ".ipynb":
            nb = json.loads(path.read_text(encoding="utf-8"))
            for cell in nb["cells"]:
                if cell["cell_type"] == "markdown":
                    src = "".join(cell["source"])
                    cell["source"] = fill(src, results, relative).splitlines(keepends=True)
            new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        else:
            new = fill(path.read_text(encoding="utf-8"), results, relative)
        if new != path.read_text(encoding="utf-8"):
            path.write_text(new, encoding="utf-8")
            print(f"updated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main([Path(p).resolve() for p in sys.argv[1:]])
