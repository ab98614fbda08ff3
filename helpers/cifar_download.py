"""Getting CIFAR-10's files: the official archive, verified, or an offline stand-in.

- ``download_cifar10`` / ``extract_cifar10``: the official ``cifar-10-python.tar.gz``,
  MD5-verified before anything is unpacked, unpacked with every member checked
  (``helpers.archive``).
- ``get_cifar10(data_dir)``: the one call notebooks make. Real CIFAR-10 when it is on disk or
  can be downloaded, else the stand-in of ``helpers.cifar_standin``; it says plainly which.
  The environment variable ``COURSE_CIFAR10`` (``auto``, ``real``, ``standin``) chooses.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from .archive import extract_tar_checked, fetch_archive, real_or_reason, source_choice
from .cifar import FOLDER_NAME, REQUIRED_FILES, read_cifar10_label_names
from .cifar_standin import write_cifar10_like

__all__ = ["ARCHIVE_NAME", "CIFAR10_MD5", "CIFAR10_URL", "CifarData", "download_cifar10",
           "extract_cifar10", "get_cifar10"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"


def extract_cifar10(archive_path: str | Path, data_dir: str | Path,
                    md5: str | None = CIFAR10_MD5) -> Path:
    """Unpack ``cifar-10-python.tar.gz`` into ``data_dir``; return the batches folder.

    The MD5 is checked first (ValueError on mismatch: nothing is unpacked). Every member
    must be a plain file or folder under ``cifar-10-batches-py/``: links, devices, absolute
    paths and ``..`` are refused with a ValueError naming the member. Members go to a
    temporary folder renamed into place at the end, so a failure halfway leaves no folder
    that looks complete. ``md5=None`` skips the check (only for archives you built).
    """
    return extract_tar_checked(archive_path, data_dir, FOLDER_NAME, md5, REQUIRED_FILES)


def download_cifar10(data_dir: str | Path, url: str = CIFAR10_URL,
                     md5: str = CIFAR10_MD5) -> Path:
    """Make sure ``data_dir/cifar-10-batches-py`` exists, downloading if needed; return it.

    An already unpacked folder is used as it is. An archive already at
    ``data_dir/cifar-10-python.tar.gz`` is reused if its MD5 matches; one that does not
    match is left alone (it may be yours) and a ValueError says so. Otherwise the archive
    is downloaded from ``url`` with a progress bar into a temporary name, verified, renamed,
    then unpacked by ``extract_cifar10``.
    """
    data_dir = Path(data_dir)
    folder = data_dir / FOLDER_NAME
    if _is_complete(folder):
        return folder
    archive = fetch_archive(url, data_dir / ARCHIVE_NAME, md5, "CIFAR-10 (about 163 MiB)")
    print(f"Unpacking {archive.name} into {Path(data_dir).name}/")
    return extract_cifar10(archive, data_dir, md5)


def _is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED_FILES)


@dataclass(frozen=True)
class CifarData:
    """What ``get_cifar10`` found: the batches folder and whether it is the real data."""

    folder: Path
    is_real: bool
    label_names: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "real CIFAR-10" if self.is_real else "synthetic stand-in"


def get_cifar10(
    data_dir: str | Path,
    prefer: str | None = None,
    standin_per_batch: int = 10_000,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
) -> CifarData:
    """CIFAR-10 for a notebook: the real data if present or downloadable, else a stand-in.

    Args:
        data_dir: parent folder (notebooks pass ``helpers.data_root() / "cifar10"``). Real
            data lives in ``<data_dir>/cifar-10-batches-py``; the stand-in in
            ``<data_dir>/standin-<n>/cifar-10-batches-py``.
        prefer: ``"real"``, ``"standin"`` or ``"auto"``; ``None`` reads the environment
            variable ``COURSE_CIFAR10`` (default ``"auto"``). ``"real"`` raises rather than
            fall back.
        standin_per_batch: images per stand-in batch file (10,000 is CIFAR-10's size).
        url, md5: where to download the archive from, and its expected MD5.

    When the ``CI`` environment variable is set, nothing is downloaded. Prints which data
    is in use and why.
    """
    root = Path(data_dir)
    choice = source_choice(prefer, "COURSE_CIFAR10")
    reason = "the stand-in was asked for (prefer / COURSE_CIFAR10)"
    if choice != "standin":
        present = _is_complete(root / FOLDER_NAME) or (root / ARCHIVE_NAME).exists()
        folder, reason = real_or_reason(lambda: download_cifar10(root, url, md5), present, url)
        if folder is not None:
            return _found(folder, True, root)
        if choice == "real":
            raise RuntimeError(f"real CIFAR-10 was asked for, but {reason}")
    folder = root / f"standin-{standin_per_batch}" / FOLDER_NAME
    if not _is_complete(folder):
        print(f"Writing the synthetic stand-in ({6 * standin_per_batch:,} images) ...")
        with contextlib.suppress(FileExistsError):  # another process just wrote it
            write_cifar10_like(folder, n_per_batch=standin_per_batch, seed=0)
    data = _found(folder, False, root)
    print(f"  (real CIFAR-10 not used: {reason}; accuracies on this stand-in say nothing "
          "about real photographs)")
    return data


def _found(folder: Path, is_real: bool, root: Path) -> CifarData:
    """The data in ``folder``, announced by its path below ``root``'s parent (notebook outputs
    show no machine paths)."""
    names = tuple(read_cifar10_label_names(folder))
    data = CifarData(folder=folder, is_real=is_real, label_names=names)
    shown = folder.relative_to(root.parent) if folder.is_relative_to(root.parent) else folder.name
    print(f"Using the {data.kind.upper()} in {Path(shown).as_posix()}/")
    return data
