"""Downloading and unpacking a ``.tar.gz`` archive without trusting it.

An archive from the internet can be cut short, altered, or built to harm: a member named
``../../.bashrc`` or ``/etc/passwd`` writes outside the folder it is unpacked into, and a
symbolic link member lets the members after it write through the link. So:

- ``download_verified`` fetches with ``keras.utils.get_file`` (progress bar included) into a
  temporary name and gives the file its final name only once its checksum matches: a
  broken download never sits under the real name.
- ``extract_tar_checked`` verifies the checksum *before* reading a single member, refuses
  (with an error naming the member) anything that is not a plain file or folder inside the
  expected top folder, unpacks into a temporary folder, and renames that folder into place
  only when everything went well.

Both write through ``helpers.atomic``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import socket
import tarfile
import urllib.parse
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import keras

from .atomic import atomic_folder, atomic_path

__all__ = [
    "check_md5", "download_verified", "extract_tar_checked", "fetch_archive", "host_reachable",
    "md5_of", "real_or_reason", "source_choice",
]


def md5_of(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in chunks (a large archive never sits in memory)."""
    digest = hashlib.md5(usedforsecurity=False)  # an integrity check, not a security one
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path: str | Path, md5: str) -> None:
    """Raise ValueError naming ``path`` unless its MD5 digest is ``md5``."""
    found = md5_of(path)
    if found != md5.lower():
        raise ValueError(
            f"{path}: MD5 checksum is {found}, expected {md5.lower()}: the file is "
            "incomplete, corrupted or not the expected file; it was not unpacked")


def download_verified(url: str, target: str | Path, md5: str) -> Path:
    """Download ``url`` to ``target``, whole and verified or not at all.

    The download goes to a temporary name next to ``target`` (``helpers.atomic``) through
    ``keras.utils.get_file`` (which shows a progress bar and checks the MD5); only a file
    whose checksum matches is renamed to ``target``. On any failure the temporary file
    is removed and ``target`` is left as it was.
    """
    target = Path(target)
    with atomic_path(target) as tmp:
        try:  # get_file writes <cache_subdir>/<fname>, i.e. the temporary path itself
            keras.utils.get_file(
                fname=tmp.name, origin=url, file_hash=md5, hash_algorithm="md5",
                cache_dir=str(tmp.parent), cache_subdir=str(tmp.parent))
        except ValueError as e:  # get_file's checksum failure
            raise ValueError(f"{url}: the downloaded file's MD5 checksum is not {md5}: "
                             f"incomplete or altered; it was discarded ({e})") from e
        check_md5(tmp, md5)  # get_file checks too; this makes the guarantee local
    return target


def fetch_archive(url: str, archive: str | Path, md5: str, what: str) -> Path:
    """``archive``, verified: reused if it is already there with the right MD5, else downloaded.

    An archive already at ``archive`` whose checksum does not match is left alone (it may
    be the user's) and a ValueError says so. ``what`` names the download in the message
    printed before it starts (e.g. "CIFAR-10 (about 163 MiB)").
    """
    archive = Path(archive)
    if archive.exists():
        try:
            check_md5(archive, md5)
        except ValueError as e:
            raise ValueError(f"{e}. Delete {archive} to download it again.") from None
        print(f"Reusing the verified archive {archive.name}")
    else:
        print(f"Downloading {what} from {url}")
        download_verified(url, archive, md5)
    return archive


def host_reachable(url: str, timeout: float = 5.0) -> bool:
    """A quick TCP connection test to ``url``'s host (port 443), so that an offline machine
    does not wait on a download that cannot start."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def source_choice(prefer: str | None, env_var: str) -> str:
    """``prefer``, else the environment variable ``env_var``, else "auto"; checked to be one of
    "auto" (real data if it can be had, else a stand-in), "real" or "standin"."""
    choice = (prefer or os.environ.get(env_var) or "auto").strip().lower()
    if choice not in ("auto", "real", "standin"):
        raise ValueError(f"prefer / {env_var} must be 'auto', 'real' or 'standin', "
                         f"got {choice!r}")
    return choice


def real_or_reason(download: Callable[[], Path], present: bool,
                   url: str) -> tuple[Path | None, str]:
    """The real data's folder from ``download()``, or None and why it is not used.

    ``present``: the data or its archive is already on disk, so ``download()`` only checks and
    unpacks it. Otherwise nothing is downloaded when the ``CI`` environment variable is set
    or ``url``'s host cannot be reached; a failed download is a reason too, not an error.
    """
    if present:
        return download(), ""
    if os.environ.get("CI"):
        return None, "the CI environment variable is set, so nothing is downloaded"
    if not host_reachable(url):
        return None, f"{urllib.parse.urlsplit(url).hostname} cannot be reached"
    try:
        return download(), ""
    except Exception as e:  # noqa: BLE001 - any failure means: fall back
        return None, f"the download failed ({e})"


def _checked_name(member: tarfile.TarInfo, top: str, archive: Path) -> str:
    """The member's normalised name, or ValueError if it is not a plain file/folder in top/."""
    name = member.name
    where = f"{archive}: member {name!r}"
    if member.issym() or member.islnk():
        raise ValueError(f"{where} is a link (to {member.linkname!r}); links are refused")
    if not (member.isfile() or member.isdir()):
        raise ValueError(f"{where} is not a regular file or folder (device, FIFO...); refused")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ValueError(f"{where} has an absolute path; refused")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise ValueError(f"{where} climbs out of the target folder with '..'; refused")
    norm = posixpath.normpath(name.replace("\\", "/"))
    if norm != top and not norm.startswith(top + "/"):
        raise ValueError(f"{where} lies outside the archive's top folder {top!r}; refused")
    return norm


def extract_tar_checked(
    archive: str | Path,
    data_dir: str | Path,
    top: str,
    md5: str | None,
    required: Iterable[str] = (),
) -> Path:
    """Unpack the folder ``top`` of a ``.tar.gz`` into ``data_dir``; return ``data_dir/top``.

    Args:
        archive: the ``.tar.gz`` file.
        data_dir: where the folder ``top`` appears (created if missing).
        top: the one top-level folder every member must lie in.
        md5: expected MD5 of the archive, checked before anything is unpacked (ValueError
            on mismatch). ``None`` skips the check: only for archives you built yourself.
        required: file names that must be in ``top/`` afterwards (ValueError otherwise).

    Raises FileExistsError if ``data_dir/top`` already exists (it is never overwritten), and
    ValueError for a refused member or a damaged or truncated archive; in every failure
    case nothing is left in ``data_dir`` but what was there before.
    """
    archive, data_dir = Path(archive), Path(data_dir)
    final = data_dir / top
    if final.exists():
        raise FileExistsError(f"{final} already exists; remove it to unpack {archive} again")
    if md5 is not None:
        check_md5(archive, md5)
    # filter="data" (Python 3.12, backported to 3.10.12/3.11.4) is a second line of defence.
    extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with atomic_folder(final) as tmp:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    name = _checked_name(member, top, archive)
                    if name == top:
                        continue
                    member.name = name[len(top) + 1:]  # unpacked into the folder ``top``
                    tar.extract(member, tmp, **extra)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise ValueError(f"{archive}: damaged or truncated archive ({e}); "
                             "nothing was unpacked") from e
        missing = [n for n in required if not (tmp / n).is_file()]
        if missing:
            raise ValueError(f"{archive}: the folder {top!r} lacks {missing}; nothing was "
                             "unpacked")
    return final
