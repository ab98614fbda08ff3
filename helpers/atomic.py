"""Files and folders written whole or not at all: one mechanism for the whole course.

``atomic_path(path)`` hands out a temporary name next to ``path``, in a private hidden
folder of the same parent; whatever the block creates there, a file or a folder, is renamed
to ``path`` only when the block ends without an exception, and removed otherwise. A rename
within one file system is atomic on POSIX and Windows, so an interrupted run never leaves a
half-written file or folder under the final name. ``atomic_file`` (an open file) and
``atomic_folder`` (a fresh folder) are the two everyday forms of it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["atomic_file", "atomic_folder", "atomic_path", "save_npy_atomic",
           "write_text_atomic"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path for ``path``; rename what the block made there to ``path``.

    Nothing exists at the yielded path yet; the block creates a file or a folder there. On
    success a file replaces ``path``; a folder takes the place of a missing or empty folder
    ``path`` (FileExistsError if ``path`` holds anything: it is never overwritten). On any
    exception, or if the block made nothing, the temporary path is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        tmp = private / path.name
        yield tmp
        if tmp.is_dir() and not tmp.is_symlink():
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()  # an empty folder is a placeholder, not content
            if path.exists():
                raise FileExistsError(f"{path} already exists; it is never overwritten")
            os.rename(tmp, path)
        elif tmp.exists():
            os.replace(tmp, path)
        else:
            raise FileNotFoundError(f"nothing was written for {path}")
    finally:
        shutil.rmtree(private, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file for ``path`` (``mode`` ``"wb"`` or ``"w"``); rename it to
    ``path`` only on success. On any exception ``path`` is left untouched."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a fresh empty folder that becomes ``path`` when the block succeeds.

    ``path`` must not exist, or be an empty folder (FileExistsError otherwise, raised
    before the block runs). On any exception the folder and its content are removed.
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() and not any(path.iterdir())):
        raise FileExistsError(f"{path} already exists; it is never overwritten")
    with atomic_path(path) as tmp:
        tmp.mkdir()
        yield tmp


def save_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` to ``path``, written whole or not at all."""
    with atomic_file(path) as f:
        np.save(f, array, allow_pickle=False)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, whole or not at all."""
    with atomic_file(path, "w") as f:
        f.write(text)
