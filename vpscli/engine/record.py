"""What a ``vps segment`` run reports (:class:`VideoReport`) and records: ``run.json``, the :class:`~vpscli.io.run_record.RunRecord` a starting run
writes (:func:`starting_record`), and :class:`RecordKeeper`, which says ``running`` before any other
output exists and records how the run ended (``complete``/``partial``, ``interrupted``, ``failed``).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vpscli import __version__
from vpscli.engine.overlay_sink import overlay_preset
from vpscli.episodes import FlagSummary
from vpscli.errors import InputError, OutputError, VpsError
from vpscli.io.fingerprint import source_fingerprint
from vpscli.io.run_folder import FRAMES_CSV, MASKS, OVERLAY, PROBS, RunFolder
from vpscli.io.run_record import RunIdentity, RunRecord, RunResult

if TYPE_CHECKING:
    from vpscli.engine.options import SegmentOptions
    from vpscli.engine.segmenter import Segmenter
    from vpscli.engine.video_run import VideoRun


@dataclass
class VideoReport:
    """What happened to one input."""

    name: str
    out_dir: Path
    status: str  # complete | partial (the source ended early) | skipped
    frames: int = 0
    frames_with_polyp: int = 0
    seconds: float = 0.0
    reused_masks: int = 0
    warnings: list[str] = field(default_factory=list)
    #: flagged frames before and after the persistence filter, episodes (None when skipped)
    flags: FlagSummary | None = None
    #: which model and weights made the outputs: ``pns-plus 38675ad126c2`` (empty when skipped)
    weights: str = ""


def weights_tag(segmenter: Segmenter) -> str:
    """The model and its weights' sha256 prefix (``pns-plus 38675ad126c2``), as the summary table and the
    overlay's HUD show them; ``untrained`` for a network run without weights."""
    sha = segmenter.weights_sha256
    return f"{segmenter.spec.name} {sha[:12] if sha else 'untrained'}"


def numerics(segmenter: Segmenter) -> dict:
    """What a bit-for-bit comparison of two runs depends on: torch build, CPU kernels, the model's threads,
    device, precision, batch and the backend that ran the model. Outputs are bit-identical for equal records (same machine type);
    otherwise they agree to float rounding."""
    import torch

    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": segmenter.compiled_threads or torch.get_num_threads(),
        "device": str(segmenter.placement.device),
        "precision": segmenter.precision,
        "batch": segmenter.batch,
        "backend": segmenter.backend_text,
    }


def run_identity(segmenter: Segmenter, source, opts: SegmentOptions) -> RunIdentity:
    """What must not change between a run and its ``--resume``: the source and what maps it to masks."""
    try:
        fingerprint = source_fingerprint(source)
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror or e})", path=source.path, fix="check the path") from None
    return RunIdentity(
        source_fingerprint=fingerprint,
        model=segmenter.spec.name,
        input_size=list(segmenter.spec.input_size),
        weights_sha256=segmenter.weights_sha256,
        threshold=segmenter.threshold,
        min_persistence=opts.min_persistence,
        tta=segmenter.tta,
        presence=opts.presence,
    )


def _versions() -> dict:
    import av
    import cv2
    import torch

    from vpscli.io.ffmpeg import ffmpeg_version

    return {
        "vps": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "av": av.__version__,
        "ffmpeg": ffmpeg_version(),
        "numpy": np.__version__,
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def starting_record(
    segmenter: Segmenter,
    source,
    probe,
    opts: SegmentOptions,
    identity: RunIdentity,
    earlier: RunRecord | None,
) -> tuple[RunRecord, list[str]]:
    """The record of a starting run (``run.json`` while it runs), and the notes its final record will carry
    (``earlier``: the record of the run it resumes)."""
    spec = segmenter.spec
    now = numerics(segmenter)
    notes = [n for n in (segmenter.placement.note, segmenter.batch_note) if n]
    if earlier is not None and earlier.numerics not in (None, now):
        changed = [k for k in now if earlier.numerics.get(k) != now[k]]
        notes.append(
            f"resumed with another {', '.join(changed)} than the earlier run: frames computed now agree "
            "with an uninterrupted run to float rounding, not bit for bit"
        )
    record = RunRecord(
        status="running",
        started=_now(),
        versions=_versions(),
        numerics=now,
        identity=identity,
        backbone=spec.backbone,
        window=spec.window_text(),
        weights=str(segmenter.weights_path) if segmenter.weights_path else None,
        device=str(segmenter.placement.device),
        precision=segmenter.precision,
        backend=segmenter.backend_text,
        batch=segmenter.batch,
        compile=segmenter.compiled,
        source=str(source.path),
        probe=probe.to_json(),
        outputs={
            "masks": f"{MASKS}/",
            "probs": f"{PROBS}/" if opts.save_prob else None,
            "overlay": OVERLAY if opts.overlay else None,
            "frames_csv": FRAMES_CSV,
        },
        overlay_preset=overlay_preset() if opts.overlay else None,
    )
    return record, notes


class RecordKeeper:
    """A run's ``run.json``: ``running`` from :meth:`open`; :meth:`close` records the finished run (from the
    completed ``report``), :meth:`abort` an ``interrupted`` or ``failed`` one."""

    def __init__(
        self, folder: RunFolder, record: RunRecord, notes: list[str], report: VideoReport, run: VideoRun
    ):
        self.folder, self.record, self.notes, self.report, self.run = folder, record, notes, report, run

    def open(self) -> None:
        self.folder.write_record(self.record)

    def close(self, truncation) -> None:
        """The run finished; ``truncation``: the source's, when it ended early."""
        report, run = self.report, self.run
        result = RunResult(
            frames_with_polyp=report.frames_with_polyp,
            partial=None
            if truncation is None
            else {
                "frames_expected": truncation.expected,
                "frames_decoded": truncation.decoded,
                "reason": f"decoding stopped at frame {truncation.decoded} of {truncation.expected} (the file is "
                "truncated or damaged)",
            },
            resumed_with_existing_masks=report.reused_masks,
            false_alarm_summary=report.flags.to_json() if report.flags is not None else None,
            frames_computed=run.frames_computed,
            timings_seconds={**run.timings.as_dict(), "total": round(report.seconds, 4)},
            frames_per_second=round(report.frames / report.seconds, 3) if report.seconds else None,
            notes=self.notes + report.warnings,
        )
        if not self._finish(status=report.status, frames=report.frames, result=result):
            raise OutputError(
                "cannot record the finished run in run.json",
                path=self.folder.run_json,
                fix="free disk space and run the same command with --resume",
            )

    def abort(self, error: BaseException) -> None:
        if isinstance(error, KeyboardInterrupt):
            self._finish(status="interrupted", frames=self.report.frames)
        else:
            message = error.one_line() if isinstance(error, VpsError) else f"{type(error).__name__}: {error}"
            self._finish(status="failed", error=message, frames=self.report.frames)

    def _finish(self, **fields) -> bool:
        """Write the run's final status; False when that failed (the disk may be full: the status of a
        run that could not say it stays ``running``, which ``--resume`` treats alike)."""
        self.record = replace(self.record, **fields, finished=_now())
        try:
            self.folder.write_record(self.record)
        except (OSError, VpsError):
            return False
        return True
