"""Inputs at archive scale: manifests and shards.

A **manifest** (``vps segment --manifest FILE``) lists inputs beside those on the command line:

- a text file: one path (or glob) per line; blank lines and ``#`` comments are skipped;
- a ``.csv`` file: a header with a ``path`` column and, optionally, per-video option columns
  :data:`CSV_OPTION_COLUMNS` (``model``, ``threshold``, ``min_persistence``); an empty cell takes the
  command's value. Each value passes the same checks as the command-line option.

Relative paths are taken from the manifest's folder, so a manifest can travel with its archive.

A **shard** (``--shard I/N``, 0-based I) is a deterministic share of the inputs for clusters without
Ray (SLURM array jobs: ``--shard $SLURM_ARRAY_TASK_ID/N``): every input is expanded and named exactly as
in a single run (:func:`~vpscli.io.sources.distinct_names` over all of them), sorted by output name, and
shard I takes positions ``I, I + N, I + 2N …``. Names do not depend on the shard, so N shards write the
folders one unsharded run would, into one output root.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from vpscli.errors import UsageError, VpsError

#: per-video option columns a CSV manifest may carry (the ``vps segment`` options of the same names)
CSV_OPTION_COLUMNS = ("model", "threshold", "min_persistence")


@dataclass(frozen=True)
class ManifestEntry:
    """One manifest line: a path (or glob) and the options it sets for its videos."""

    path: str
    options: dict = field(default_factory=dict)  # column → checked value; absent: the command's value
    where: str = ""  # "FILE line N", for messages


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """The entries of a text or CSV manifest, each value checked; a one-line :class:`UsageError` naming
    the file (and line) and the fix otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError("manifest not found", path=path, fix="check the --manifest path") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(
            f"cannot read the manifest ({getattr(e, 'strerror', None) or e})",
            path=path,
            fix="give a UTF-8 text file of paths, or a CSV with a path column",
        ) from None
    entries = _read_csv(path, text) if path.suffix.lower() == ".csv" else _read_lines(path, text)
    if not entries:
        raise UsageError(
            "the manifest lists no inputs",
            path=path,
            fix="write one video path per line (or a CSV with a path column)",
        )
    return entries


def _resolve(manifest: Path, text: str) -> str:
    """A manifest path as given when absolute, else relative to the manifest's folder."""
    p = Path(text).expanduser()
    return str(p if p.is_absolute() else manifest.parent / p)


def _read_lines(path: Path, text: str) -> list[ManifestEntry]:
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(ManifestEntry(_resolve(path, line), {}, f"{path} line {number}"))
    return entries


def _read_csv(path: Path, text: str) -> list[ManifestEntry]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if "path" not in columns:
        raise UsageError(
            f"a CSV manifest needs a 'path' column (found: {', '.join(columns) or 'no header'})",
            path=path,
            fix="put a header line such as: path,threshold",
        )
    unknown = [c for c in columns if c != "path" and c not in CSV_OPTION_COLUMNS]
    if unknown:
        raise UsageError(
            f"unknown manifest column(s): {', '.join(unknown)}",
            path=path,
            fix=f"use path and any of: {', '.join(CSV_OPTION_COLUMNS)}",
        )
    entries = []
    try:
        for row in reader:
            number = reader.line_num
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if not row.get("path") or row["path"].startswith("#"):
                continue
            where = f"{path} line {number}"
            options = {k: _option(k, row[k], where) for k in CSV_OPTION_COLUMNS if row.get(k)}
            entries.append(ManifestEntry(_resolve(path, row["path"]), options, where))
    except csv.Error as e:
        raise UsageError(
            f"not a readable CSV ({e})",
            path=f"{path} line {reader.line_num}",
            fix="quote paths that hold commas",
        ) from None
    return entries


def _option(column: str, value: str, where: str):
    """A CSV cell converted and checked as its command-line option is."""
    from vpscli.engine.options import check_options
    from vpscli.models.registry import available_models

    cell_fix = f"correct the {column} cell, or leave it empty for the command's value"
    try:
        if column == "model":
            if value not in available_models():
                raise UsageError(
                    f"unknown model '{value}'", fix="choose one of: " + ", ".join(available_models())
                )
            return value
        if column == "threshold":
            number = float(value)
            check_options(threshold=number)
            return number
        number = int(value)
        check_options(min_persistence=number)
        return number
    except ValueError:
        kind = "a number between 0 and 1" if column == "threshold" else "a whole number of frames"
        raise UsageError(f"{column} must be {kind}, got {value!r}", path=where, fix=cell_fix) from None
    except VpsError as e:
        raise UsageError(f"{column}: {e.message}", path=where, fix=e.fix or cell_fix) from None


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` → ``(I, N)`` with ``0 <= I < N`` (0-based, as SLURM array indices usually are)."""
    if text is None:
        return None
    fix = "give --shard I/N with 0 <= I < N, e.g. --shard 0/4 … --shard 3/4 (0-based)"
    parts = text.split("/")
    try:
        index, count = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        index = count = None
    if index is None or count is None:
        raise UsageError(f"--shard must be I/N, got {text!r}", fix=fix)
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard {text}: I must be between 0 and N − 1 (I is 0-based)", fix=fix)
    return index, count


def take_shard(sources: list, shard: tuple[int, int] | None) -> list:
    """Shard ``I/N`` of ``sources`` (already given their final names): sorted by output name, every N-th
    from position I. All sources when ``shard`` is ``None``."""
    if shard is None:
        return list(sources)
    index, count = shard
    return sorted(sources, key=lambda s: s.name)[index::count]
