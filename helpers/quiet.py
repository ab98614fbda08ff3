"""Keep the notes frameworks print from C++ out of a notebook's output.

TensorFlow writes start-up notes (absl, oneDNN, CUDA probing such as "failed call to
cuInit") from C++ straight to the process's file descriptor 2, some of them before it reads
``TF_CPP_MIN_LOG_LEVEL``. Python's ``sys.stderr`` and ``warnings`` never see them, so only
pointing descriptor 2 elsewhere for a while hides them. Jupyter shows what reaches that
descriptor under the cell, where these lines look like failures although nothing failed.

Use it around the imports (``import keras``: Keras imports its backend then) and around
anything that starts worker processes which import TensorFlow afresh. Python exceptions
are unaffected: they are raised, not written to descriptor 2. Standard library only, and
importing it imports no framework.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["c_stderr_silenced"]


@contextlib.contextmanager
def c_stderr_silenced() -> Iterator[None]:
    """Send this process's file descriptor 2 (C-level stderr) to the null device for the block.

    Child processes started inside the block inherit the redirection.
    """
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
