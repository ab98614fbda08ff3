"""Writing files whole or not at all.

Every file the course writes goes to a temporary name in the same folder first and is
renamed into place only once complete, so an interrupted run never leaves a half-written
file under the final name (a rename within one folder is atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
from tqdm.auto import tqdm


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; rename it to ``path`` only on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` to ``path``, written whole or not at all."""
    with atomic_write(path) as f:
        np.save(f, array, allow_pickle=False)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, whole or not at all."""
    with atomic_write(path, "w") as f:
        f.write(text)


def progress_bar(iterable=None, enabled: bool = True, **kwargs) -> tqdm:
    """A ``tqdm.auto`` bar (a widget in Jupyter, text elsewhere), or none if not ``enabled``.

    A non-empty ``TQDM_DISABLE`` environment variable also switches bars off: ``make
    outputs`` sets it, so committed notebooks hold no widget that GitHub shows frozen at 0%.
    (tqdm reads that variable too, but its Jupyter bar ignores it.)
    """
    if not enabled or os.environ.get("TQDM_DISABLE"):
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)
