"""The repository's GitHub address, and the Colab links generated from it (maintainers only).

The address lives here and nowhere else: every notebook's "Open in Colab" badge and its
first code cell (on Colab, install ``helpers`` from GitHub) are generated from it, and
tests/test_notebook_shape.py and tests/test_readme.py check that they agree. After a fork
or rename, edit ``GITHUB_REPO`` and run

    python tools/colab_links.py [NOTEBOOK_DIR]

to rewrite every badge and bootstrap cell. This file is not part of the installed
``helpers`` package: learners never need it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["BRANCH", "GITHUB_REPO", "colab_badge", "colab_bootstrap_source", "colab_url",
           "repo_url", "sync"]

GITHUB_REPO = "keras-on-the-fly/keras-data-generators"
"""``owner/name`` of the course on GitHub: the one place badges and Colab installs read."""

BRANCH = "main"

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"


def repo_url() -> str:
    """The repository's web address."""
    return f"https://github.com/{GITHUB_REPO}"


def colab_url(notebook_path: str | Path) -> str:
    """The address that opens ``notebook_path`` (relative to the repository root) in Colab."""
    path = Path(notebook_path).as_posix()
    return f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/{BRANCH}/{path}"


def colab_badge(notebook_path: str | Path) -> str:
    """Markdown for the "Open in Colab" badge of one notebook."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(notebook_path)})"


def colab_bootstrap_source() -> str:
    """Source of every notebook's first code cell: on Colab, install ``helpers``; else nothing."""
    return (
        "# On Colab, install this course's `helpers` package from GitHub; elsewhere do nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install --quiet "git+{repo_url()}.git@{BRANCH}"'
    )


def sync(notebook_dir: Path) -> None:
    """Rewrite every notebook's badge and bootstrap cell (deep dives too) from the settings."""
    root = notebook_dir.resolve().parent
    for path in sorted(notebook_dir.rglob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        rel = path.resolve().relative_to(root)
        for cell in nb["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "markdown" and "colab-badge.svg" in src:
                lines = [
                    colab_badge(rel) if "colab-badge.svg" in line else line
                    for line in src.split("\n")
                ]
                cell["source"] = "\n".join(lines).splitlines(keepends=True)
            elif cell["cell_type"] == "code" and 'if "google.colab" in sys.modules:' in src:
                cell["source"] = colab_bootstrap_source().splitlines(keepends=True)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"synced {rel}")


if __name__ == "__main__":
    sync(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1] / "notebooks"))
