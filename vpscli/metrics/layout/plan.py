"""What will be evaluated (:class:`Plan`), and the steps that build it from the two folders (:func:`build_plan`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vpscli.errors import InputError
from vpscli.io.run_folder import RunFolder
from vpscli.metrics.diagnostics import Diagnostics
from vpscli.metrics.layout.diagnose import (
    method_without_split,
    nothing_left_error,
    nothing_to_score_error,
    partial_run,
    scored_folders,
)
from vpscli.metrics.layout.discover import Split, load_splits
from vpscli.metrics.layout.match import PredDirs, check_frames, drop_unmatched, match_predictions


@dataclass
class Plan:
    """What will be evaluated: splits, methods, and the prediction folder of every (split, method, case)."""

    gt_root: Path
    pred_root: Path
    splits: list[Split]
    methods: list[str]  #: method folder names, or ``["."]`` when predictions have no method level
    #: (split name, method) -> case name -> prediction folder (None: no predictions for that case)
    pred_dirs: PredDirs
    sort_rule: str = "auto"
    keep_ends: bool = False
    missing: list[Path] = field(default_factory=list)  #: evaluated frames without a prediction file
    #: what finding and matching the files found, in plain words: notes, and warnings about lost or partial
    #: data (partial ``vps segment`` runs, missing maps) to be shown even when notes are silenced
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    #: expected prediction path -> the file that stands for it (``0001.PNG`` or ``000001.png`` for ``0001.png``)
    renamed: dict[Path, Path] = field(default_factory=dict)

    def pairs(self) -> list[tuple[str, str]]:
        """(split, method) pairs that have predictions, in report order."""
        return [(s.name, m) for s in self.splits for m in self.methods if (s.name, m) in self.pred_dirs]

    def frame_jobs(self):
        """Yield ``(split, case, frame, gt_path, {method: pred_path or None})`` for every evaluated frame.

        A frame is read once for all methods. A ``None`` prediction is a missing file (``--allow-missing``).
        """
        missing = set(self.missing)
        for split in self.splits:
            methods = [m for m in self.methods if (split.name, m) in self.pred_dirs]
            for seq in split.sequences:
                for name in seq.evaluated:
                    preds: dict[str, Path | None] = {}
                    for method in methods:
                        folder = self.pred_dirs[(split.name, method)].get(seq.name)
                        path = None if folder is None else folder / name
                        path = self.renamed.get(path, path) if path is not None else None
                        preds[method] = None if path is None or path in missing else path
                    yield split.name, seq.name, name, seq.gt_dir / name, preds

    def summary(self) -> list[str]:
        """What was matched, in words: the number of splits and the methods, then a line per split (its
        cases, frames, evaluated frames and GT folder)."""
        methods = (
            "predictions without a method level"
            if self.methods == ["."]
            else f"{len(self.methods)} method(s): {', '.join(self.methods)}"
        )
        lines = [f"{len(self.splits)} split(s), {methods}"]
        for split in self.splits:
            n_all = sum(len(q.frames) for q in split.sequences)
            n_eval = sum(len(q.evaluated) for q in split.sequences)
            lines.append(
                f"  {split.name}: {len(split.sequences)} case(s), {n_all} frame(s), {n_eval} evaluated "
                f"(GT {split.cases_dir})"
            )
        return lines

    @property
    def n_frames(self) -> int:
        """Evaluated GT frames (each scored once per method)."""
        return sum(len(q.evaluated) for s in self.splits for q in s.sequences)


def build_plan(
    pred_root: str | Path,
    gt_root: str | Path,
    *,
    sort_rule: str = "auto",
    keep_ends: bool = False,
    allow_missing: bool = False,
    matched_only: bool = False,
    methods: list[str] | None = None,
    use_masks: bool = False,
    on_warning: Callable[[str], None] | None = None,
) -> Plan:
    """Discover the GT, match the predictions, and check that every evaluated frame has a prediction.

    Raises :class:`InputError` when nothing matches (showing both case lists), when predictions are
    missing (listing the first ones), unless ``allow_missing`` (missing maps are scored as all-zero) or
    ``matched_only`` (GT cases without any prediction folder are left out), and when no frame is left to
    score (every sequence has ≤ 2 frames and ``keep_ends`` is off).

    ``use_masks``: score ``masks/`` rather than ``probs/`` of ``vps segment`` case folders holding both.
    ``on_warning`` is called with each warning as soon as it is found — before an error about the same
    predictions is raised — and the warnings are also kept in :attr:`Plan.diagnostics`.
    """
    pred_root, gt_root = Path(pred_root), Path(gt_root)
    if not pred_root.exists():
        raise InputError("prediction folder not found", path=pred_root, fix="check the path")
    if not pred_root.is_dir():
        raise InputError("predictions must be a folder", path=pred_root)
    diagnostics = Diagnostics(on_warning)
    splits = load_splits(gt_root, sort_rule, keep_ends, diagnostics)
    method_names, pred_dirs = match_predictions(pred_root, splits, methods, use_masks, diagnostics)
    for split in splits:
        for method in method_names:
            if (split.name, method) not in pred_dirs and method != ".":
                method_without_split(diagnostics, split.name, method)
    folders = list(dict.fromkeys(f for table in pred_dirs.values() for f in table.values() if f is not None))
    scored_folders(diagnostics, folders, pred_root)
    for folder in folders:
        warning = RunFolder.of(folder).partial_warning()
        if warning is not None:
            partial_run(diagnostics, warning)
    if matched_only:
        splits = drop_unmatched(splits, method_names, pred_dirs, diagnostics)
    missing, renamed = check_frames(splits, method_names, pred_dirs, pred_root, allow_missing, diagnostics)
    splits = [s for s in splits if s.sequences]
    if not splits:
        raise nothing_left_error(gt_root)
    plan = Plan(
        gt_root,
        pred_root,
        splits,
        method_names,
        pred_dirs,
        sort_rule,
        keep_ends,
        missing=missing,
        diagnostics=diagnostics,
        renamed=renamed,
    )
    if plan.n_frames == 0:
        raise nothing_to_score_error(gt_root, sum(len(s.sequences) for s in plan.splits))
    return plan
