"""A ``vps segment`` output folder: the one definition of its layout, names and status.

``OUT/<name>/``::

    masks/<frame>.png   8-bit 0/255 masks at the source resolution
    probs/<frame>.png   floor(255·p) probability maps (--save-prob)
    overlay.mp4         the overlay video (unless --no-overlay)
    frames.csv          one row per written frame (vpscli.io.frames_csv)
    run.json            the run's record and status (vpscli.io.run_record)

``<frame>`` is the frame's name: its 0-based index in 6 digits (``000123``) for a video, the image's
own stem for a frame folder (:attr:`vpscli.io.frames.Frame.name`). Every reader of mask folders
(``overlay``, ``export``, ``evaluate``, ``segment --resume``) matches files to frames through the
functions and the class below.

A frame is *finished* when its mask PNG (and its probability PNG, when the run saves them) is whole
on disk and ``frames.csv`` has its row: ``--resume`` does not predict it again.

A run folder's life (:meth:`RunFolder.decide`): an empty folder gets a ``fresh`` run; an unfinished one is
continued (``resume``) and a finished one left as it is (``skip``) under ``--resume``; ``--overwrite``
writes the new run beside the old (``.<name>.overwrite/``, :meth:`RunFolder.staging`) and swaps it in
only once it has finished (``replace``, :meth:`RunFolder.swap_in`), so a failed redo loses nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

from vpscli.errors import OutputError, VpsError
from vpscli.io.atomic import check_writable, output_error, partial_path, write_text_atomic
from vpscli.io.frames_csv import CSV_COLUMNS, RowWriter
from vpscli.io.masks import is_complete_png
from vpscli.io.run_record import (
    RUN_JSON,
    RunIdentity,
    RunRecord,
    find_run_json,
    partial_warning,
    read_run_record,
)

MASKS = "masks"
PROBS = "probs"
FRAMES_CSV = "frames.csv"
OVERLAY = "overlay.mp4"


# ≥ 6 digits: a video past frame 999,999 gets longer names, still read as indices
_INDEX_NAME = re.compile(r"^\d{6,}$")


def index_name(index: int) -> str:
    """A video frame's name: its 0-based index in (at least) 6 digits, ``12`` → ``"000012"``."""
    return f"{index:06d}"


def is_index_name(stem: str) -> bool:
    """``stem`` is a video frame's name (6 or more digits), so its number is the frame's index."""
    return bool(_INDEX_NAME.match(stem))


def match_to_frames(files: list[Path], frame_names: list[str]) -> tuple[list[Path | None], str]:
    """Match mask ``files`` to the frames named ``frame_names`` (source order), when those names are known.

    Returns ``(per frame: its file or None, how)``; ``how`` is the rule that matched most frames:
    ``"name"`` (file stem = frame name), ``"index"`` (file stem = :func:`index_name` of the frame's
    position), else ``"order"`` (natural order of ``files``) when nothing matched, or when the counts agree
    but a frame is left without a file (a folder renamed wholesale).
    """
    by_stem = {p.stem: p for p in files}
    candidates = {
        "name": [by_stem.get(n) for n in frame_names],
        "index": [by_stem.get(index_name(i)) for i in range(len(frame_names))],
    }
    how = max(candidates, key=lambda k: sum(f is not None for f in candidates[k]))
    matched = candidates[how]
    if not any(matched) or (len(files) == len(frame_names) and any(f is None for f in matched)):
        how = "order"
        matched = list(files[: len(frame_names)]) + [None] * max(0, len(frame_names) - len(files))
    return matched, how


def number_files(files: list[Path]) -> list[tuple[int, Path]]:
    """``(0-based frame index, file)`` of mask ``files`` (natural order) when the frame names are unknown.

    When every stem is an index name (a video's run folder) the number is the index, so frames skipped
    by ``--stride`` stay where they were (sorted by index); otherwise the files' natural order.
    """
    if all(is_index_name(p.stem) for p in files):
        return sorted(((int(p.stem), p) for p in files), key=lambda f: f[0])
    return list(enumerate(files))


class RunFolder:
    """One ``vps segment`` output folder (module doc): paths, ``frames.csv``, ``run.json``, finished frames.

    Example: ``RunFolder("vps-out/clip").status()`` → ``"complete"``.

    ``record_from``: the folder the user named when that is a mask folder inside the run folder; its
    ``run.json`` is looked for there first, then one level up (:func:`vpscli.io.run_record.find_run_json`).
    """

    def __init__(self, path: str | Path, record_from: str | Path | None = None):
        self.path = Path(path)
        self._record_from = Path(record_from) if record_from is not None else self.path

    @classmethod
    def of(cls, folder: str | Path) -> "RunFolder":
        """The run folder ``folder`` is: itself, or its parent when ``folder`` is its ``masks/`` or ``probs/``."""
        folder = Path(folder)
        return cls(folder.parent if folder.name in (MASKS, PROBS) else folder, record_from=folder)

    @classmethod
    def of_mask_folder(cls, mask_dir: str | Path) -> "RunFolder":
        """The run folder a user-named mask folder sits in: its parent, whatever the mask folder is called."""
        return cls(Path(mask_dir).parent, record_from=mask_dir)

    @staticmethod
    def mask_folder(path: str | Path) -> Path:
        """The mask folder a user means by ``path``: a run folder's ``masks/`` (``vps overlay video.mp4
        out/video`` and ``vps export out/video`` take the run folder too), else ``path`` itself."""
        path = Path(path)
        masks = path / MASKS
        return masks if masks.is_dir() else path

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # layout
    @property
    def masks_dir(self) -> Path:
        return self.path / MASKS

    @property
    def probs_dir(self) -> Path:
        return self.path / PROBS

    @property
    def frames_csv(self) -> Path:
        return self.path / FRAMES_CSV

    @property
    def overlay_path(self) -> Path:
        return self.path / OVERLAY

    @property
    def run_json(self) -> Path:
        """Where this run writes its ``run.json``."""
        return self.path / RUN_JSON

    def mask_path(self, name: str) -> Path:
        """The mask PNG of the frame named ``name``."""
        return self.masks_dir / f"{name}.png"

    def prob_path(self, name: str) -> Path:
        """The probability PNG of the frame named ``name``."""
        return self.probs_dir / f"{name}.png"

    def is_empty(self) -> bool:
        """Nothing is there yet (absent, or an empty folder)."""
        return not (self.path.exists() and any(self.path.iterdir()))

    def holds_outputs(self) -> bool:
        """Something a ``vps segment`` run writes is here (``run.json``, ``masks/``, ``probs/``, ``frames.csv``,
        the overlay): the folder is a run, finished or not, rather than somebody else's files."""
        return any(
            p.exists()
            for p in (self.run_json, self.masks_dir, self.probs_dir, self.frames_csv, self.overlay_path)
        )

    def scored_folder(self, use_masks: bool = False) -> Path | None:
        """The folder ``vps evaluate`` scores: ``probs/`` when it exists (a soft map sweeps thresholds; a
        thresholded mask gives the same result at every one), else ``masks/``; ``use_masks`` swaps the
        preference. ``None`` when neither exists.

        A ``probs/`` folder that the run's ``run.json`` does not list among its outputs (a run started
        without ``--save-prob`` over probabilities of an earlier one) is not taken: its maps need not
        belong to the masks, nor cover every frame."""
        order = (self.masks_dir, self.probs_dir) if use_masks else (self.probs_dir, self.masks_dir)
        return next((f for f in order if f.is_dir() and (f != self.probs_dir or self.probs_listed())), None)

    def probs_listed(self) -> bool:
        """``run.json`` lists ``probs/`` among the run's outputs (a folder without a record: taken as found)."""
        outputs = self.record().get("outputs")
        return not isinstance(outputs, dict) or bool(outputs.get("probs"))

    # run.json
    def record_path(self) -> Path | None:
        """The ``run.json`` that describes this folder, or ``None``."""
        return find_run_json(self._record_from)

    def record(self) -> dict:
        """The run's record (``{}`` when absent or unreadable)."""
        return read_run_record(self._record_from)

    def status(self) -> str | None:
        """``run.json``'s ``status`` (``running``, ``complete``, ``partial``, ``interrupted``, ``failed``), or ``None``."""
        status = self.record().get("status")
        return status if isinstance(status, str) else None

    def partial_warning(self, record: dict | None = None) -> str | None:
        """One line when the run did not cover its whole source (partial or unfinished), else ``None``."""
        return partial_warning(self._record_from, record)

    def run_record(self) -> RunRecord | None:
        """The run's typed record (``None`` when absent or unreadable)."""
        return RunRecord.from_json(self.record())

    def write_record(self, record: RunRecord) -> None:
        """Write ``run.json`` whole (temporary file, renamed)."""
        write_text_atomic(self.run_json, json.dumps(record.to_json(), indent=2) + "\n")

    # the folder's life
    def decide(self, identity: RunIdentity, *, resume: bool, overwrite: bool) -> tuple[str, RunRecord | None]:
        """What a run of ``identity`` does with this folder: ``fresh``, ``resume``, ``skip`` or ``replace``
        (module doc); returns the mode and the earlier run's record (``None`` unless resumed or skipped).
        Refuses a folder of other files, a finished or unfinished run without ``--resume``/``--overwrite``,
        and a run of another source or setting (:meth:`RunRecord.check_continues`)."""
        if self.is_empty():
            return "fresh", None
        if not self.holds_outputs():  # never replaced, not even by --overwrite: they are not vps's to delete
            raise OutputError(
                "holds other files, not a vps run (no run.json, masks/ or frames.csv)",
                path=self.path,
                fix="move them away, or choose another --out (each video is written to <out>/<video name>/)",
            )
        if overwrite:
            return "replace", None
        record = self.run_record()
        if record is not None and record.status == "failed" and not self.rows():
            return (
                "replace",
                None,
            )  # a failed run that wrote no frame is no work to keep: redo it, whatever the source
        if resume:
            if record is None:
                raise OutputError(
                    "holds files but no readable run.json, so vps cannot tell what made them",
                    path=self.path,
                    fix="use --overwrite to replace them, or choose another --out",
                )
            record.check_continues(identity, self.path)
            return ("skip" if record.is_finished else "resume"), record
        if record is not None and record.is_finished:
            raise OutputError(
                f"already segmented (run.json says {record.status})",
                path=self.path,
                fix="use --resume to skip finished videos, or --overwrite to redo them",
            )
        raise OutputError(
            "holds an unfinished run",
            path=self.path,
            fix="use --resume to continue it, or --overwrite to start again",
        )

    def staging(self) -> "RunFolder":
        """Where ``--overwrite`` writes a new run before it replaces this one (hidden: no command takes it for
        a result)."""
        return RunFolder(self.path.with_name(f".{self.path.name}.overwrite"))

    def writing(self, mode: str, with_probs: bool) -> "RunFolder":
        """The folder a run in ``mode`` writes (its :meth:`staging` folder for ``replace``, cleared of what a
        killed ``--overwrite`` left), its folders made and proved writable before any frame is decoded."""
        folder = self.staging() if mode == "replace" else self
        if mode == "replace":
            shutil.rmtree(folder.path, ignore_errors=True)
        for path in [folder.path, folder.masks_dir] + ([folder.probs_dir] if with_probs else []):
            check_writable(path, create=True)
        return folder

    def swap_in(self, staged: "RunFolder") -> None:
        """Replace this folder by the finished ``staged`` run: the old outputs go only once the new are whole."""
        old = self.path.with_name(f".{self.path.name}.replaced")
        shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(self.path, old)
            os.replace(staged.path, self.path)
        except OSError as e:
            if old.exists() and not self.path.exists():
                os.replace(old, self.path)  # put the earlier outputs back
            raise output_error(self.path, e) from None
        shutil.rmtree(old, ignore_errors=True)

    # frames.csv
    def rows(self) -> dict[str, dict]:
        """``frames.csv`` rows an earlier run left, by frame name, all cells strings: the saved file (an
        interrupt writes the finished rows there) and, newer, the partial file of a killed run (its last
        line may be cut short; incomplete rows are dropped)."""
        rows: dict[str, dict] = {}
        for path in (self.frames_csv, partial_path(self.frames_csv)):
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError):
                continue
            text = text[: text.rfind("\n") + 1]  # a killed writer may have left its last line unfinished
            try:
                for row in csv.DictReader(io.StringIO(text)):
                    if None not in row and None not in row.values() and row["index"].isdigit():
                        rows[row["name"]] = row
            except csv.Error:
                continue
        return rows

    def max_probs(self) -> dict[int, float]:
        """Frame index → ``max_prob`` from the saved ``frames.csv`` (``{}`` when absent or unreadable).

        Only the saved file: a display of a finished run's confidence, not a resume (see :meth:`rows`)."""
        found: dict[int, float] = {}
        if not self.frames_csv.is_file():
            return found
        try:
            with self.frames_csv.open(newline="") as f:
                for row in csv.DictReader(f):
                    if row.get("index") not in (None, "") and row.get("max_prob") not in (None, ""):
                        found[int(row["index"])] = float(row["max_prob"])
        except (OSError, ValueError, KeyError):
            return {}
        return found

    @staticmethod
    def row_flagged(row: dict) -> bool:
        """Whether the model flagged a frame, from its ``frames.csv`` row (rows written before the
        persistence filter existed have no ``flagged`` cell: their mask is the model's, so ``present``)."""
        flagged = row.get("flagged")
        return (flagged if flagged not in (None, "") else row["present"]) in ("1", 1)

    def open_rows(self) -> "RowWriter":
        """A :class:`RowWriter` for this run's ``frames.csv``."""
        return RowWriter(self.frames_csv)

    # finished frames
    def has_pngs(self, name: str, with_probs: bool) -> bool:
        """The frame's mask PNG (and probability PNG, ``with_probs``) is on disk, whole."""
        return is_complete_png(self.mask_path(name)) and (
            not with_probs or is_complete_png(self.prob_path(name))
        )

    def finished(self, with_probs: bool, rows: dict[str, dict] | None = None) -> set[str]:
        """Names of the finished frames (module doc): those with whole PNGs and a row in ``rows``
        (default: :meth:`rows`)."""
        rows = self.rows() if rows is None else rows
        return {name for name in rows if self.has_pngs(name, with_probs)}

    def keep_finished_rows(self, with_probs: bool) -> None:
        """After an interrupt: keep, in ``frames.csv``, the rows (of this run and of earlier ones) of
        the frames whose PNGs are on disk — what ``--resume`` continues from — and remove the partial
        file; then remove the PNGs that have no row (an interrupt can land between a PNG write and its
        row: such a frame is predicted again by ``--resume`` anyway), so that the folder's rows and PNGs
        describe the same frames. Best effort: if the disk is full the rows are lost (and the PNGs kept),
        and a resumed run predicts those frames again."""
        try:
            rows = [r for r in self.rows().values() if self.has_pngs(r["name"], with_probs)]
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(sorted(rows, key=lambda r: int(r["index"])))
            write_text_atomic(self.frames_csv, out.getvalue())
            kept = {f"{r['name']}.png" for r in rows}
            for folder in (self.masks_dir, self.probs_dir if with_probs else None):
                if folder is not None and folder.is_dir():
                    for png in folder.glob("*.png"):
                        if png.name not in kept:
                            png.unlink(missing_ok=True)
        except (OSError, VpsError):
            pass
        finally:
            partial_path(self.frames_csv).unlink(missing_ok=True)
