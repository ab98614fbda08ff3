"""Put the reference results into the prose, and keep them in step (maintainers only).

The notebooks and README cite figures of the committed reference runs
(``benchmarks/results/reference_*.json``: ``reference_cpu_2core.json`` written by
``benchmarks/reference.py``, ``reference_feed_cpu.json`` by ``benchmarks/feed_gpu.py``; their
keys do not overlap) as links whose text is the figure and whose title is its key, for example

    [3.8×](../benchmarks/results/reference_cpu_2core.json "workers.io_wait.speedup_threads_4")

A writer types the placeholder ``⟦workers.io_wait.speedup_threads_4⟧``; this tool turns it
into such a link to the file that holds the key, and after a new reference run it rewrites
every link's figure from its file.
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

__all__ = ["LINK", "PLACEHOLDER", "REFERENCE", "fill", "fill_from_files", "format_figure",
           "format_spread", "load_results", "reference_files", "shown"]

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "benchmarks" / "results" / "reference_cpu_2core.json"
PLACEHOLDER = re.compile(r"⟦([\w.]+(?:\|range)?)⟧")
LINK = re.compile(r"\[([^\]]*)\]\(((?:\.\./)*benchmarks/results/reference_[\w-]+\.json) "
                  r"\"([\w.]+(?:\|range)?)\"\)")


def reference_files() -> list[Path]:
    """Every committed reference file, ``benchmarks/results/reference_*.json``."""
    return sorted(REFERENCE.parent.glob("reference_*.json"))


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
    if unit == "images per CPU-second":
        return f"{float(f'{m:.2g}'):,.0f} images per CPU-second"
    if unit == "ms":
        return f"{m:.2g} ms" if m < 10 else f"{m:.0f} ms"
    if unit == "MiB/MiB":
        return f"{m:.2f} MiB"
    if unit == "MiB":
        return f"{m:,.0f} MiB"
    if unit == "s":
        return f"{m:.2f} s"
    if unit == "%":
        return f"{m:.0f} %"
    if unit == "cores":
        return "< 0.01 cores" if m < 0.01 else f"{m:.2g} cores"
    if unit == "accuracy":
        return f"{m:.2f}"
    return f"{m:.3g} {unit}"


def format_spread(figure: dict) -> str:
    """The median with the range of the rounds: ``5.5× (2.8–7.2× over 5 rounds)``."""
    low = format_figure(figure | {"median": figure["min"]})
    high = format_figure(figure | {"median": figure["max"]})
    if low == high:  # the rounds differ by less than the figure's rounding
        return f"{format_figure(figure)} (all {figure['rounds']} rounds)"
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


def fill_from_files(text: str, document_dir: Path) -> str:
    """``fill`` with every reference file: a placeholder links to the file holding its key,
    a link is refreshed from the file it points to."""
    by_file = {path: load_results(path) for path in reference_files()}

    def holder(key: str) -> Path:
        name = key.partition("|")[0]
        found = [path for path, results in by_file.items() if name in results]
        if len(found) != 1:
            raise KeyError(f"{name!r} is in {len(found)} reference files (needs exactly one): "
                           f"{[p.name for p in found]}")
        return found[0]

    def rel(path: Path) -> str:
        return os.path.relpath(path, document_dir)

    def link(key: str, path: Path) -> str:
        return f'[{shown(key, by_file[path])}]({rel(path)} "{key}")'

    text = PLACEHOLDER.sub(lambda m: link(m.group(1), holder(m.group(1))), text)
    return LINK.sub(lambda m: link(m.group(3), (document_dir / m.group(2)).resolve()), text)


def _documents() -> list[Path]:
    notebooks = sorted(p for p in (ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    return [ROOT / "README.md", *notebooks]


def main(paths: list[Path]) -> None:
    for path in paths or _documents():
        here = path.resolve().parent
        if path.suffix == ".ipynb":
            nb = json.loads(path.read_text(encoding="utf-8"))
            for cell in nb["cells"]:
                if cell["cell_type"] == "markdown":
                    src = "".join(cell["source"])
                    cell["source"] = fill_from_files(src, here).splitlines(keepends=True)
            new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        else:
            new = fill_from_files(path.read_text(encoding="utf-8"), here)
        if new != path.read_text(encoding="utf-8"):
            path.write_text(new, encoding="utf-8")
            print(f"updated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main([Path(p).resolve() for p in sys.argv[1:]])
