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
"""

from __future__ import annotations

import json
from pathlib import Path

RUN_JSON = "run.json"
#: statuses after which ``vps segment`` will not write to the folder again without ``--resume``/``--overwrite``
FINISHED = ("complete", "partial")


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
