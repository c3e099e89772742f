"""Whole files or nothing: every output is written under a temporary name beside its
target and renamed into place when complete, so an interrupt, a crash or a full disk never
leaves a half-written file that a later run (or ``--resume``) would take for finished work.

The temporary name is ``.<stem>.partial<suffix>``: hidden, and with the real suffix so that
encoders that pick the format from the name (OpenCV, ffmpeg) still work.
"""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vpscli.errors import OutputError


def partial_path(path: str | Path, unique: bool = False) -> Path:
    """The temporary name used while ``path`` is being written.

    ``unique`` adds a random token, for files that several processes may write at once (a shared
    cache): each writes its own temporary file and the last rename wins, with the same content.
    """
    path = Path(path)
    token = f"-{secrets.token_hex(6)}" if unique else ""
    return path.with_name(f".{path.stem}.partial{token}{path.suffix}")


def output_error(path: Path, error: OSError) -> OutputError:
    """The one-line error for a failed write (disk full named as such)."""
    if error.errno == errno.ENOSPC:
        return OutputError(
            "disk full while writing", path=path, fix="free disk space or choose another output folder"
        )
    return OutputError(
        f"cannot write ({error.strerror or error})",
        path=path,
        fix="check that the folder is writable and has space",
    )


@contextmanager
def atomic_path(path: str | Path, unique: bool = False) -> Iterator[Path]:
    """Yield the temporary path to write; on success it replaces ``path``.

    ``unique``: a temporary name of this writer's own (see :func:`partial_path`).

    On any failure the temporary file is removed; ``OSError`` becomes :class:`OutputError`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(path.parent, e) from None
    tmp = partial_path(path, unique)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise output_error(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes, unique: bool = False) -> Path:
    """Write ``data`` to ``path`` whole or not at all: the bytes on disk are checked before the
    rename, so a full disk never leaves a short file under the real name."""
    with atomic_path(path, unique) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            written = os.fstat(f.fileno()).st_size
        if written != len(data):  # a short write that raised nothing (some network file systems)
            raise OSError(errno.ENOSPC, f"only {written} of {len(data)} bytes reached the disk")
    return Path(path)


def write_text_atomic(path: str | Path, text: str, unique: bool = False) -> Path:
    with atomic_path(path, unique) as tmp:
        tmp.write_text(text)
    return Path(path)


def nearest_existing(path: str | Path) -> Path:
    """``path`` made absolute, or its nearest ancestor that exists: where writing there would start
    (the folders in between are made by the writer)."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_file_target(path: str | Path, option: str) -> None:
    """A file that a command will write at its end (``--json``, ``--csv``, ``--plot``) can be written there:
    its folder exists (or can be made) and takes files — checked before the work, without creating
    anything, so a wrong path costs nothing."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{option} names a folder, not a file", path=target, fix="give a file name")
    folder = nearest_existing(target.absolute().parent)
    if not folder.is_dir():
        raise OutputError(
            f"{option}: {folder} is a file, not a folder", path=target, fix="choose another path"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{option}: cannot write in {folder}", path=target, fix="choose a writable folder")


def check_writable(folder: Path, create: bool) -> None:
    """``folder`` is a folder that takes files (made first when ``create``), or a one-line error."""
    if folder.exists() and not folder.is_dir():
        raise OutputError("is a file, not a folder", path=folder, fix="remove it, or choose another --out")
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise OutputError(
            f"cannot write in this folder ({e.strerror or e})",
            path=folder,
            fix="make it writable, or choose another --out",
        ) from None


def check_output_root(out_root: str | Path) -> None:
    """The output root (or, when it does not exist yet, the folder it will be made in) takes files:
    checked before a model is loaded, and without creating anything."""
    check_writable(nearest_existing(out_root), create=False)
