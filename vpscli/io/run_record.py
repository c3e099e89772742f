"""``run.json``: the record ``vps segment`` keeps of each output folder, and how to read it.

One reader for every command that consumes segment outputs (``overlay``, ``export``,
``evaluate``, ``segment --resume``). A record is looked for in the folder given and, when that
is a ``masks/``/``probs/`` folder, in its parent.

``status`` is one of:

- ``running``: a run is writing the folder (or was killed without a chance to say so);
- ``complete``: every decodable frame of the source has its outputs;
- ``partial``: the run finished, but the source ended early (a truncated or damaged file):
  ``partial`` then holds ``frames_expected``, ``frames_decoded`` and ``reason``;
- ``interrupted``: stopped by Ctrl-C or SIGTERM; ``--resume`` continues it;
- ``failed``: stopped by an error (``error`` holds its one-line message).

:class:`RunRecord` is the typed record ``vps segment`` writes and reads back (``--resume``, batches);
``record_version`` says which layout a file has (a file without it has layout 1, the layout of every
record written so far). The other commands read the plain dictionary (:func:`read_run_record`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vpscli.errors import OutputError

RUN_JSON = "run.json"
#: statuses after which ``vps segment`` will not write to the folder again without ``--resume``/``--overwrite``
FINISHED = ("complete", "partial")
#: the layout of the records this vps writes
RECORD_VERSION = 1


@dataclass(frozen=True)
class RunIdentity:
    """What must not change between a run and its ``--resume``: the source and what maps it to masks.

    Read from a record, a field the record lacks takes the value its writer used: a run made before the
    persistence filter wrote the model's masks unfiltered (``min_persistence`` 1), before ``--tta`` and
    ``--presence`` without them; a missing ``source_fingerprint`` stays ``None`` (nothing to compare)."""

    source_fingerprint: str | None
    model: str | None
    input_size: list | None
    weights_sha256: str | None
    threshold: float | None
    min_persistence: int = 1
    tta: bool = False
    presence: float | None = None

    @classmethod
    def from_json(cls, data: dict) -> "RunIdentity":
        return cls(
            data.get("source_fingerprint"),
            data.get("model"),
            data.get("input_size"),
            data.get("weights_sha256"),
            data.get("threshold"),
            data.get("min_persistence", 1),
            data.get("tta", False),
            data.get("presence"),
        )

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class RunResult:
    """What a finished run (``complete`` or ``partial``) adds to its record."""

    frames_with_polyp: int
    #: ``frames_expected``, ``frames_decoded`` and ``reason`` of a truncated source, else ``None``
    partial: dict | None
    resumed_with_existing_masks: int
    false_alarm_summary: dict | None
    frames_computed: int
    timings_seconds: dict
    frames_per_second: float | None
    notes: list

    @classmethod
    def from_json(cls, data: dict) -> "RunResult | None":
        if not any(f.name in data for f in fields(cls)):
            return None
        values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls)}  # a key it lacks: None
        return cls(**values)

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class RunRecord:
    """One ``run.json``: the run's setup (written when it starts), then how it ended.

    ``to_json`` writes the keys in a fixed order: ``record_version``, ``status``, ``started``, the setup,
    then, once the run stopped, ``error`` (failed), ``frames``, the :class:`RunResult` (finished) and
    ``finished``. Keys a reader does not know are kept in ``other`` and written back after the setup."""

    #: one of the module doc's statuses; ``None`` read from a ``run.json`` that has none
    status: str | None
    started: str | None
    versions: dict | None
    #: what a bit-for-bit comparison of two runs depends on (torch build, kernels, threads, device, …)
    numerics: dict | None
    identity: RunIdentity
    backbone: str | None = None
    window: str | None = None
    weights: str | None = None
    device: str | None = None
    precision: str | None = None
    #: what ran the model: ``openvino 2026.4.1 fp32``, ``torch 2.13.0 fp32``
    backend: str | None = None
    batch: int | None = None
    #: ``False``, or the ``torch.compile`` mode
    compile: bool | str = False
    source: str | None = None
    probe: dict | None = None
    #: ``masks``, ``probs``, ``overlay``, ``frames_csv``: what the run writes (``None``: not written)
    outputs: dict = field(default_factory=dict)
    overlay_preset: str | None = None
    error: str | None = None
    frames: int | None = None
    result: RunResult | None = None
    finished: str | None = None
    record_version: int = RECORD_VERSION
    other: dict = field(default_factory=dict)

    _SETUP = (
        "backbone",
        "window",
        "weights",
        "device",
        "precision",
        "backend",
        "batch",
        "compile",
        "source",
        "probe",
        "outputs",
        "overlay_preset",
    )

    @property
    def is_finished(self) -> bool:
        """``complete`` or ``partial``: no more writes without ``--resume``/``--overwrite``."""
        return self.status in FINISHED

    @classmethod
    def from_json(cls, data: dict) -> "RunRecord | None":
        """The record a ``run.json`` holds (any layout this vps knows), ``None`` for an empty one."""
        if not data:
            return None
        identity = RunIdentity.from_json(data)
        known = {"record_version", "status", "started", "versions", "numerics", "error", "frames", "finished"}
        known |= set(identity.to_json()) | set(cls._SETUP) | {f.name for f in fields(RunResult)}
        outputs = data.get("outputs")
        return cls(
            status=data.get("status"),
            started=data.get("started"),
            versions=data.get("versions"),
            numerics=data.get("numerics"),
            identity=identity,
            **{k: data[k] for k in cls._SETUP if k != "outputs" and k in data},
            outputs=outputs if isinstance(outputs, dict) else {},
            error=data.get("error"),
            frames=data.get("frames"),
            result=RunResult.from_json(data),
            finished=data.get("finished"),
            record_version=data.get("record_version", 1),
            other={k: v for k, v in data.items() if k not in known},
        )

    def to_json(self) -> dict:
        data = {
            "record_version": self.record_version,
            "status": self.status,
            "started": self.started,
            "versions": self.versions,
            "numerics": self.numerics,
            **self.identity.to_json(),
            **{k: getattr(self, k) for k in self._SETUP},
            **self.other,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.frames is not None:
            data["frames"] = self.frames
        if self.result is not None:
            data.update(self.result.to_json())
        if self.finished is not None:
            data["finished"] = self.finished
        return data

    def check_continues(self, identity: RunIdentity, out_dir: Path) -> None:
        """Refuse to continue (or skip) this earlier run when it was made from another source, model,
        weights, threshold, frame decision, test-time augmentation or persistence filter."""
        earlier = self.identity
        if earlier.source_fingerprint is None:
            raise OutputError(
                "was written by an older vps, which did not record its source's fingerprint, so vps "
                "cannot tell whether it is this video's",
                path=out_dir,
                fix="use --overwrite to redo it, or choose another --out",
            )
        labels = {
            "source_fingerprint": "source file (size and content differ)",
            "model": "model",
            "input_size": "input size",
            "weights_sha256": "weights (sha256 differs)",
            "threshold": "threshold",
        }
        for key, label in labels.items():
            if getattr(earlier, key) != getattr(identity, key):
                before = self.source if key == "source_fingerprint" else getattr(earlier, key)
                raise OutputError(
                    f"holds a run of another {label}: {before}",
                    path=out_dir,
                    fix="use --overwrite to redo it with these settings, or choose another --out",
                )
        if earlier.presence != identity.presence:
            said = (
                f"with --presence {earlier.presence}"
                if earlier.presence is not None
                else "without --presence"
            )
            raise OutputError(
                f"holds a run made {said}",
                path=out_dir,
                fix="use the same frame decision to continue it, or --overwrite to redo it",
            )
        if earlier.tta != identity.tta:
            said = "with" if earlier.tta else "without"
            raise OutputError(
                f"holds a run made {said} --tta (test-time augmentation)",
                path=out_dir,
                fix=f"{'add' if said == 'with' else 'drop'} --tta to continue it, or use --overwrite to redo it",
            )
        if earlier.min_persistence != identity.min_persistence:
            raise OutputError(
                f"holds a run made with --min-persistence {earlier.min_persistence}",
                path=out_dir,
                fix=f"pass --min-persistence {earlier.min_persistence} to continue it, or use --overwrite to "
                f"redo it with {identity.min_persistence}",
            )

    @classmethod
    def read(cls, folder: str | Path) -> "RunRecord | None":
        """The record of a segment output folder (or of its ``masks/``); ``None`` when absent or unreadable."""
        return cls.from_json(read_run_record(folder))


def find_run_json(folder: str | Path) -> Path | None:
    """``folder/run.json``, else ``folder/../run.json`` (``folder`` being ``masks/`` or ``probs/``)."""
    folder = Path(folder)
    for candidate in (folder / RUN_JSON, folder.parent / RUN_JSON):
        if candidate.is_file():
            return candidate
    return None


def read_run_record(folder: str | Path) -> dict:
    """The ``run.json`` of a segment output folder (or of its ``masks/``); ``{}`` when absent or unreadable."""
    path = find_run_json(folder)
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def partial_warning(folder: str | Path, record: dict | None = None) -> str | None:
    """A one-line warning when the run behind ``folder`` did not cover its whole source, else ``None``.

    Said for ``partial`` runs (the source was truncated) and for runs that never finished
    (``running``, ``interrupted``, ``failed``): their masks cover only part of the video.
    """
    record = read_run_record(folder) if record is None else record
    status = record.get("status")
    where = find_run_json(folder)
    where = where.parent if where is not None else Path(folder)
    if status == "partial":
        info = record.get("partial") or {}
        decoded, expected = info.get("frames_decoded"), info.get("frames_expected")
        counts = f" ({decoded} of {expected} frames)" if decoded is not None and expected else ""
        reason = info.get("reason") or "the source ended early"
        return f"{where}: partial run{counts}: {reason}; frames after the damage have no masks"
    if status in ("running", "interrupted", "failed"):
        done = record.get("frames")
        how = {
            "running": "did not finish (still running, or killed)",
            "interrupted": "was interrupted",
            "failed": "failed",
        }[status]
        return (
            f"{where}: this vps segment run {how}"
            + (f" after {done} frames" if done is not None else "")
            + "; its masks cover only part of the video — run vps segment --resume to complete it"
        )
    return None
