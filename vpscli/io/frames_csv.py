"""``frames.csv`` of a run folder: its columns and its writer (one row per written frame, flushed as it
is written, renamed into place when the run ends)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from vpscli.io.atomic import output_error, partial_path

#: the columns of ``frames.csv``, in order
CSV_COLUMNS = (
    "index",
    "name",
    "timestamp",
    "present",
    "area_fraction",
    "max_prob",
    "bbox_x",
    "bbox_y",
    "bbox_w",
    "bbox_h",
    "flagged",
    "suppressed",
)


class RowWriter:
    """``frames.csv`` being written: under its temporary name, each row flushed as it is written,
    renamed into place by :meth:`commit`. Every OS error is the one-line "disk full"/"cannot write"."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._fh = open(partial_path(path), "w", newline="")
            self._csv = csv.DictWriter(self._fh, fieldnames=CSV_COLUMNS)
            self._csv.writeheader()
        except OSError as e:
            raise output_error(path, e) from None

    def write(self, row: dict) -> None:
        try:
            self._csv.writerow(row)
            self._fh.flush()  # on disk (in the OS) now: a killed run keeps it
        except OSError as e:
            raise output_error(self.path, e) from None

    def commit(self) -> None:
        try:
            self._fh.close()
            os.replace(partial_path(self.path), self.path)
        except OSError as e:
            raise output_error(self.path, e) from None

    def discard(self) -> None:
        """Close after an error (the rows stay in the temporary file for :meth:`RunFolder.keep_finished_rows`)."""
        try:
            self._fh.close()
        except OSError:
            pass
