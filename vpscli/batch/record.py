"""One batch of ``vps segment``: the videos with their per-video settings, and ``batch.json``.

``batch.json`` (in the output root; ``batch-shard-I-of-N.json`` for ``--shard I/N``, so that shards
writing into one root never overwrite each other's summary) holds, besides when and how the batch ran
(``backend``: ``local`` or ``ray``), one entry per video: ``name``, ``source``, ``out_dir``, ``status``
(``complete``, ``partial``, ``skipped`` — finished earlier, left as it was —, ``failed``, or
``interrupted``), ``frames``, ``seconds``, ``frames_per_second``, ``device``, ``worker`` (host, process
id and, on Ray, node id), ``attempts`` and, for a failure, ``error`` (its one-line message).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from vpscli.batch.jobs import VideoJob
from vpscli.io.atomic import write_text_atomic
from vpscli.io.run_record import RunRecord


@dataclass
class VideoOutcome:
    """One video's line in ``batch.json``."""

    name: str
    source: str
    out_dir: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    device: str | None = None
    worker: str | None = None
    attempts: int = 1
    error: str | None = None

    @property
    def frames_per_second(self) -> float | None:
        return round(self.frames / self.seconds, 3) if self.seconds else None


def this_worker() -> str:
    """``host:pid`` of the process doing the work."""
    return f"{socket.gethostname()}:{os.getpid()}"


def outcome_of_report(
    job: VideoJob, report, device: str | None, worker: str | None, attempts: int = 1
) -> VideoOutcome:
    """The outcome of a finished or skipped video; a skipped one takes its frames and device from its
    ``run.json`` (the run that finished it)."""
    frames, seconds = report.frames, round(report.seconds, 3)
    if report.status == "skipped":
        record = RunRecord.read(report.out_dir)
        frames = (record.frames if record else None) or 0
        device, worker = (record.device if record else None) or device, None
    return VideoOutcome(
        report.name,
        str(job.source.path),
        str(report.out_dir),
        report.status,
        frames,
        seconds,
        device,
        worker,
        attempts,
    )


def outcome_of_failure(
    job: VideoJob, out_root: Path, message: str, status: str = "failed", worker=None, attempts: int = 1
) -> VideoOutcome:
    return VideoOutcome(
        job.source.name,
        str(job.source.path),
        str(Path(out_root) / job.source.name),
        status,
        worker=worker,
        attempts=attempts,
        error=message,
    )


def batch_json_path(out_root: Path, shard: tuple[int, int] | None) -> Path:
    name = "batch.json" if shard is None else f"batch-shard-{shard[0]}-of-{shard[1]}.json"
    return Path(out_root) / name


def _other_batch(path: Path, outcomes: list[VideoOutcome]) -> bool:
    """``path`` holds the record of another batch: one that names a video this batch does not have (a
    rerun of the same inputs, or of a part of them, replaces its own record)."""
    try:
        entries = json.loads(Path(path).read_text()).get("entries") or []
    except (OSError, ValueError, AttributeError):
        return False
    ours = {o.source for o in outcomes}
    return any(isinstance(e, dict) and e.get("source") not in ours for e in entries)


def write_batch_json(
    path: Path, outcomes: list[VideoOutcome], *, started: datetime, backend: str, extra: dict | None = None
) -> Path:
    """``batch.json``: totals, then one entry per video (in input order). Written under a lock (one writer
    at a time); when ``path`` holds another batch's record (two batches into one output root), this one is
    written beside it as ``<stem>-<started, UTC>.json`` and both are kept. Returns the path written."""
    from vpscli.io.lock import OutputLock

    with OutputLock(path, what="the batch record"):
        if _other_batch(path, outcomes):
            path = Path(path).with_name(f"{Path(path).stem}-{started.strftime('%Y%m%dT%H%M%S')}.json")
        return _write_batch_json(path, outcomes, started=started, backend=backend, extra=extra)


def _write_batch_json(
    path: Path, outcomes: list[VideoOutcome], *, started: datetime, backend: str, extra: dict | None
) -> Path:
    statuses: dict[str, int] = {}
    for o in outcomes:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    computed = [o for o in outcomes if o.status in ("complete", "partial")]
    wall = (datetime.now(timezone.utc) - started).total_seconds()
    frames = sum(o.frames for o in computed)
    record = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "backend": backend,
        **(extra or {}),
        "videos": len(outcomes),
        "statuses": statuses,
        "frames_computed": frames,
        "wall_seconds": round(wall, 3),
        "frames_per_second": round(frames / wall, 3) if wall > 0 else None,
        "entries": [{**asdict(o), "frames_per_second": o.frames_per_second} for o in outcomes],
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, json.dumps(record, indent=2) + "\n")
