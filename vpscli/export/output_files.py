"""Writing export files: atomic (temporary name, then rename) and with one-line errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from vpscli.errors import OutputError


def make_folder(folder: Path) -> Path:
    """Create ``folder`` (and parents) or raise :class:`OutputError`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(
            f"cannot create folder ({e.strerror})", path=folder, fix="choose another -o or check permissions"
        ) from None
    return folder


def palette_png_bytes(indices: np.ndarray, palette: list[tuple[int, int, int]]) -> bytes:
    """``(H, W)`` uint8 index image → P-mode PNG bytes with ``palette`` (index → RGB)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(indices, dtype=np.uint8), mode="P")
    flat = [v for rgb in palette for v in rgb]
    image.putpalette(flat + [0] * (768 - len(flat)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def voc_palette(n: int = 256) -> list[tuple[int, int, int]]:
    """The PASCAL VOC / DAVIS colour map: 0 black, 1 (128, 0, 0), 2 (0, 128, 0), 3 (128, 128, 0)…"""
    colours = []
    for i in range(n):
        r = g = b = 0
        c = i
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return colours


#: prefix of the hidden folder inside OUT where an export is written before it replaces anything
STAGING_PREFIX = ".vps-export-"


def existing_targets(out: Path, targets: list[Path]) -> list[Path]:
    """The ``targets`` (paths relative to ``out``) that already exist in ``out``."""
    return [t for t in targets if (out / t).exists() or (out / t).is_symlink()]


class StagedExport:
    """Write a whole export beside its destination, then swap it in.

    ``with StagedExport(out, targets) as stage:`` yields a hidden folder inside ``out``; the writers
    write there. Only when the block ends without an error is each target (a path relative to
    ``out``: a file or a folder) moved into ``out``, replacing what was there, so an export that fails
    half-way (bad mask, full disk, Ctrl-C) never destroys a previous one. A replaced folder is
    replaced whole, so frames of a longer earlier export cannot linger beside the new ones. Whatever
    goes wrong, the hidden folder is removed, and so is ``out`` when this export created it and left
    it empty.
    """

    def __init__(self, out: Path, targets: list[Path]):
        self.out = Path(out)
        self.targets = [Path(t) for t in targets]
        self.folder: Path | None = None
        self._created_out = False

    def __enter__(self) -> Path:
        import tempfile

        if self.out.exists() and not self.out.is_dir():
            raise OutputError("is a file, not a folder", path=self.out, fix="choose a folder for -o")
        self._created_out = not self.out.exists()
        make_folder(self.out)
        try:  # inside OUT: same file system, so the swap is a rename, never a copy
            self.folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.out))
        except OSError as e:
            raise OutputError(
                f"cannot write in this folder ({e.strerror})",
                path=self.out,
                fix="check that the folder is writable, or choose another -o",
            ) from None
        return self.folder

    def __exit__(self, kind, error, tb) -> None:
        try:
            if kind is None:
                self._swap()
        finally:
            self._clean()

    def _swap(self) -> None:
        import os

        assert self.folder is not None
        old_root = self.folder / ".replaced"
        done: list[tuple[Path, Path | None]] = []  # (destination, where its previous version went)
        try:
            for target in self.targets:
                new, dest = self.folder / target, self.out / target
                if not (new.exists() or new.is_symlink()):
                    continue  # this export did not write it (e.g. no frames to write)
                old = None
                if dest.exists() or dest.is_symlink():
                    # moved aside rather than deleted: put back if a later rename fails
                    old = old_root / target
                    old.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(dest, old)
                done.append((dest, old))
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(new, dest)
        except OSError as e:
            for dest, old in reversed(done):  # undo: the previous export stays as it was
                try:
                    _remove(dest)  # the new version, if it got there
                    if old is not None:
                        os.replace(old, dest)
                except OSError:
                    pass
            raise OutputError(
                f"cannot move the finished export into place ({e.strerror or e})",
                path=self.out,
                fix="check that the folder is writable, then run the export again",
            ) from None

    def _clean(self) -> None:
        if self.folder is not None:
            _remove(self.folder)
        if self._created_out:
            try:
                self.out.rmdir()  # only succeeds when empty: nothing was exported
            except OSError:
                pass


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
