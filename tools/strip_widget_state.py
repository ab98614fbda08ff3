"""Remove the widget state that Jupyter saves in a notebook's metadata.

Executing a notebook with ipywidgets installed stores every widget's state in
``metadata.widgets``: thousands of lines that GitHub renders as nothing, or as a frozen bar.
``make outputs`` runs this after each notebook.

    python tools/strip_widget_state.py notebooks/NN_name.ipynb [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def strip(path: Path) -> bool:
    """Drop ``metadata.widgets`` from the notebook at ``path``; True if it had one."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    if "widgets" not in nb.get("metadata", {}):
        return False
    del nb["metadata"]["widgets"]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


if __name__ == "__main__":
    for name in sys.argv[1:]:
        if strip(Path(name)):
            print(f"widget state removed from {name}")
