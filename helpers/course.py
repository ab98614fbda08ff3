"""Course-wide settings and the Setup step every notebook runs.

The repository's GitHub address lives here and nowhere else: the Colab badges and the
Colab bootstrap cell of every notebook are generated from it (``python -m helpers.course
sync`` rewrites them after a fork or rename, and a test checks they agree).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

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


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def data_root() -> Path:
    """Folder where the course writes and reads its datasets.

    ``$COURSE_DATA_DIR`` wins; then the ``data/`` folder of a repository checkout (when
    ``helpers`` was installed with ``pip install -e .``); else ``./data``.
    """
    if os.environ.get("COURSE_DATA_DIR"):
        return Path(os.environ["COURSE_DATA_DIR"]).expanduser()
    checkout_data = Path(__file__).resolve().parents[1] / "data"
    if checkout_data.is_dir():
        return checkout_data
    return Path.cwd() / "data"


@dataclass(frozen=True)
class SetupInfo:
    """What ``setup_notebook`` found: the backend and whether a GPU is there."""

    backend: str
    gpus: tuple[str, ...]
    seed: int

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)


def _list_gpus(backend: str) -> tuple[str, ...]:
    if backend == "tensorflow":
        import tensorflow as tf

        return tuple(d.name for d in tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return tuple(str(d) for d in jax.devices() if d.platform == "gpu")
    if backend == "torch":
        import torch

        return tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return ()


def setup_notebook(seed: int = 42) -> SetupInfo:
    """Print the versions in use, seed every random generator, and look for a GPU.

    Seeding goes through ``keras.utils.set_random_seed``, which seeds Python, NumPy and the
    backend at once. When no GPU is found on Colab, the hint says how to switch runtime.
    """
    import keras
    import numpy as np

    backend = keras.backend.backend()
    print(f"Python {platform.python_version()} | Keras {keras.__version__} "
          f"(backend: {backend}) | NumPy {np.__version__}")
    if backend == "tensorflow":
        import tensorflow as tf

        print(f"TensorFlow {tf.__version__}")
    keras.utils.set_random_seed(seed)
    print(f"Random seed: {seed}")
    gpus = _list_gpus(backend)
    if gpus:
        print(f"GPU: {', '.join(gpus)}")
    elif in_colab():
        print("No GPU found. In Colab: Runtime > Change runtime type > GPU, then run again.")
    else:
        print("No GPU found: this notebook runs on the CPU with CPU-sized settings.")
    return SetupInfo(backend=backend, gpus=gpus, seed=seed)


def _sync(notebook_dir: Path) -> None:
    """Rewrite the badge and bootstrap cell of every notebook from the settings above."""
    root = notebook_dir.resolve().parent
    for path in sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        rel = path.resolve().relative_to(root)
        for cell in nb["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "markdown" and "colab-badge.svg" in src:
                lines = [
                    colab_badge(rel) if "colab-badge.svg" in line else line
                    for line in src.split("\n")
                ]
                cell["source"] = "\n".join(lines)
            elif cell["cell_type"] == "code" and 'if "google.colab" in sys.modules:' in src:
                cell["source"] = colab_bootstrap_source()
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"synced {rel}")


if __name__ == "__main__":
    if sys.argv[1:2] != ["sync"]:
        sys.exit("usage: python -m helpers.course sync [NOTEBOOK_DIR]")
    _sync(Path(sys.argv[2] if len(sys.argv) > 2 else "notebooks"))
