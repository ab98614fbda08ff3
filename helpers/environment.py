"""Where the course runs: its data folder, and the Setup step every notebook starts with.

``data_root()`` says where datasets go; ``setup_notebook()`` prints the versions in use,
seeds every random generator and looks for a GPU.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from .quiet import c_stderr_silenced

__all__ = ["SetupInfo", "data_root", "in_colab", "setup_notebook"]


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

        with c_stderr_silenced():  # on a machine without CUDA: "failed call to cuInit"
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
