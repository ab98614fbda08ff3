"""Tidy a notebook's saved outputs after a run, so GitHub shows what a reader should see.

``make outputs`` runs this after executing each notebook. It changes no result, only how
the outputs are stored:

- drops ``metadata.widgets``: the state of every progress-bar widget, thousands of lines
  that GitHub renders as nothing, or as a bar frozen at 0%;
- merges consecutive pieces of the same stream (``stdout``/``stderr``) of a cell into one
  output, as Jupyter shows them live: saved apart, a line printed in two writes shows on
  GitHub broken in two;
- removes ANSI colour codes (``ESC[1m`` …) from plain text that has an HTML version beside it
  (``model.summary()``'s table): plain-text viewers print the codes as characters.

    python tools/tidy_outputs.py notebooks/NN_name.ipynb [...]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _merge_streams(outputs: list[dict]) -> list[dict]:
    merged: list[dict] = []
    for out in outputs:
        last = merged[-1] if merged else None
        if (last is not None and out.get("output_type") == "stream"
                and last.get("output_type") == "stream" and last["name"] == out["name"]):
            text = "".join(last["text"]) + "".join(out["text"])
            last["text"] = text.splitlines(keepends=True)
        else:
            merged.append(out)
    return merged


def _strip_ansi(out: dict) -> None:
    data = out.get("data", {})
    if "text/plain" in data and "text/html" in data:
        text = "".join(data["text/plain"])
        data["text/plain"] = ANSI.sub("", text).splitlines(keepends=True)


def tidy(nb: dict) -> dict:
    """The notebook ``nb`` (parsed JSON), tidied as the module docstring says, in place."""
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = _merge_streams(cell.get("outputs", []))
            for out in cell["outputs"]:
                _strip_ansi(out)
    return nb


def tidy_file(path: Path) -> bool:
    """Tidy the notebook at ``path`` in place; True if anything changed."""
    before = path.read_text(encoding="utf-8")
    after = json.dumps(tidy(json.loads(before)), indent=1, ensure_ascii=False) + "\n"
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before


if __name__ == "__main__":
    for name in sys.argv[1:]:
        if tidy_file(Path(name)):
            print(f"outputs tidied: {name}")
