"""``vps report``: one offline HTML review page per ``vps segment`` run folder, and an index for a batch.

A page is one file written into the run folder (``report.html``): styles, script, timeline (SVG) and
thumbnails (JPEG ``data:`` URIs) are inline, and the player reads ``overlay.mp4`` beside it by a
relative path — nothing is fetched from a network, and the page's Content-Security-Policy forbids it.
Templates are Jinja2 with autoescaping on: file names, notes and paths are user text.

    write_report("vps-out/clip")                        # vps-out/clip/report.html
    write_report("vps-out/clip", gt="data/GT/clip")     # + the vps evaluate numbers and GT on the timeline
    write_index("vps-out", ["vps-out/a", "vps-out/b"])  # vps-out/index.html
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vpscli.errors import InputError
from vpscli.io.atomic import write_text_atomic
from vpscli.report.data import RunReport, read_run

__all__ = ["write_report", "write_index", "REPORT_NAME", "INDEX_NAME", "render_report"]

REPORT_NAME = "report.html"
INDEX_NAME = "index.html"
_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _env():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
    )
    env.globals["clock"] = clock
    return env


def clock(seconds: float) -> str:
    """``h:mm:ss.ss`` or ``m:ss.ss`` — how a player shows a moment."""
    seconds = max(0.0, float(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours)}:{int(minutes):02d}:{secs:05.2f}" if hours >= 1 else f"{int(minutes)}:{secs:05.2f}"


def _status_text(run: RunReport) -> str:
    rec, status = run.record, run.status
    expected = (rec.get("probe") or {}).get("frame_count")
    if status == "complete":
        return f"Complete: {run.frames} frames."
    if status == "partial":
        return (
            f"Partial: the video ended early — {run.frames} of the {expected} frames its header announces "
            "were decoded; this page covers those."
        )
    if status == "interrupted":
        return (
            f"Interrupted: the run was stopped after {run.frames} of {expected} frames; this page covers "
            "those (`vps segment --resume` finishes it)."
        )
    if status == "failed":
        return f"Failed: {rec.get('error') or 'see run.json'} — {run.frames} frames were written before it stopped."
    if status == "running":
        return f"Still running (or stopped without a word): {run.frames} frames so far."
    return f"Status {status}: {run.frames} frames."


def _weights_facts(rec: dict) -> list[tuple[str, str]]:
    from vpscli.weights.manifest import bundled_card

    sha = str(rec.get("weights_sha256") or "")
    if not sha:
        return [("weights", "none: a network run without trained weights (its masks mean nothing)")]
    entry = bundled_card(sha)
    facts = [("weights", f"{Path(str(rec.get('weights') or '(none)')).name} (sha256 {sha[:12] or '?'})")]
    if entry is not None:
        metrics = entry.record.get("metrics") or {}
        if metrics.get("maxDice") is not None:
            facts.append(
                (
                    "validation",
                    f"maxDice {metrics['maxDice']:.3f}, S-measure {metrics.get('Smeasure', float('nan')):.3f}"
                    f" ({metrics.get('validation_data', 'validation data')})",
                )
            )
        if entry.note:
            facts.append(("model card", entry.note))
    else:
        facts.append(("validation", "no validation record for these weights"))
    return facts


def _facts(run: RunReport) -> list[tuple[str, str]]:
    rec = run.record
    summary = rec.get("false_alarm_summary") or {}
    presence = rec.get("presence")
    facts = [
        ("model", f"{rec.get('model')} on {rec.get('backbone', '?')}"),
        *_weights_facts(rec),
        ("threshold", f"{rec.get('threshold')}"),
        (
            "frame decision",
            f"peak probability ≥ {presence}"
            if presence is not None
            else "the mask at the threshold has a pixel",
        ),
        (
            "persistence filter",
            f"a detection is kept when it lasts {rec.get('min_persistence', 1)} frames or more",
        ),
        ("test-time augmentation", "on (mirror image averaged)" if rec.get("tta") else "off"),
        ("device", f"{rec.get('device')} ({rec.get('precision')}), backend {rec.get('backend', 'torch')}"),
        ("source", f"{rec.get('source')}"),
        (
            "frames",
            f"{run.frames} written; {summary.get('flagged_frames_before_filter', '?')} flagged by the model, "
            f"{summary.get('suppressed_frames', '?')} suppressed by the filter, "
            f"{int(run.present.sum())} with a mask",
        ),
    ]
    if summary.get("expect_negative"):
        per_minute = summary.get("false_alarm_episodes_per_minute")
        facts.append(
            (
                "false alarms (polyp-free video)",
                f"{summary.get('episodes_after_filter')} episodes"
                + (f", {per_minute:.2f} per minute" if isinstance(per_minute, (int, float)) else ""),
            )
        )
    timings = rec.get("timings_seconds") or {}
    if timings:
        facts.append(
            (
                "timings",
                ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if isinstance(v, (int, float))),
            )
        )
    if rec.get("finished"):
        facts.append(("finished", str(rec["finished"])))
    return facts


@dataclass
class _GroundTruth:
    folder: str
    metrics: dict
    detection: dict


def _ground_truth(run: RunReport, gt: Path) -> _GroundTruth:
    """The ``vps evaluate`` toolbox numbers and detection view of this one video, and its GT frames."""
    import numpy as np

    from vpscli.metrics import build_plan, evaluate_plan
    from vpscli.metrics.detection import detection_view
    from vpscli.metrics.frame import read_map

    keys = ("Smeasure", "meanEm", "wFmeasure", "maxDice", "meanDice", "maxIoU", "MAE")
    plan = build_plan(run.folder, gt)
    result = evaluate_plan(plan, keys, workers=1)
    (dataset,) = result.datasets.values()
    view = next(iter(detection_view(plan).values())).to_json()
    labels = {
        "frames": "frames",
        "sensitivity": "frame sensitivity",
        "specificity": "frame specificity",
        "polyp_episodes": "polyp episodes",
        "polyp_episodes_detected": "episodes detected",
        "median_time_to_first_detection_frames": "median frames to first detection",
        "false_alarm_episodes": "false-alarm episodes",
    }
    detection = {
        label: ("—" if view.get(k) is None else f"{view[k]:.3f}" if isinstance(view[k], float) else view[k])
        for k, label in labels.items()
    }
    (split,) = plan.splits
    (sequence,) = split.sequences
    positive = {
        Path(name).stem: bool((read_map(sequence.gt_dir / name)[0] > 128).any()) for name in sequence.frames
    }
    run.gt_positive = np.array([positive.get(n, False) for n in run.names], bool)
    return _GroundTruth(str(gt), {k: float(dataset.value(k)) for k in keys}, detection)


def render_report(folder: str | Path, gt: str | Path | None = None, video_href: str | None = None) -> str:
    """The page of one run folder as HTML text (see the module doc); ``video_href``: how the page reaches
    the overlay (default: ``overlay.mp4`` beside it)."""
    from vpscli import __version__
    from vpscli.report.thumbs import episode_thumbnails
    from vpscli.report.timeline import timeline_svg

    run = read_run(folder)
    truth = _ground_truth(run, Path(gt)) if gt is not None else None
    overlay = run.overlay
    notes = [n for n in (run.record.get("notes") or []) if isinstance(n, str)]
    return (
        _env()
        .get_template("video.html.j2")
        .render(
            run=run,
            status_text=_status_text(run),
            overlay=(video_href or overlay.name) if overlay else None,
            timeline=timeline_svg(run),
            episodes=run.episodes,
            thumbs=episode_thumbnails(run),
            duration=clock(run.duration_s),
            facts=_facts(run),
            notes=notes,
            gt=truth,
            version=__version__,
        )
    )


def write_report(folder: str | Path, out: str | Path | None = None, gt: str | Path | None = None) -> Path:
    """Write the page of one run folder (default ``<folder>/report.html``); returns its path."""
    folder = Path(folder)
    target = Path(out) if out is not None else folder / REPORT_NAME
    href = None
    overlay = folder / "overlay.mp4"
    if target.parent.resolve() != folder.resolve() and overlay.is_file():
        href = Path(os.path.relpath(overlay.resolve(), target.parent.resolve())).as_posix()
    html = render_report(folder, gt, href)
    write_text_atomic(target, html)
    return target


def _headline(run: RunReport) -> dict:
    summary = run.record.get("false_alarm_summary") or {}
    return {
        "name": run.name,
        "status": run.status,
        "frames": run.frames,
        "episodes": len(run.episodes),
        "with_mask": int(run.present.sum()),
        "flagged": summary.get("flagged_frames_before_filter"),
        "duration": clock(run.duration_s),
        "model": run.record.get("model"),
    }


def write_index(root: str | Path, folders: list[str | Path], out: str | Path | None = None) -> Path:
    """An index page (default ``<root>/index.html``) linking each run folder's ``report.html``, with its status
    and headline figures; videos of ``batch.json`` that have no run folder are listed with their error."""
    import json

    root = Path(root)
    target = Path(out) if out is not None else root / INDEX_NAME
    rows = []
    for folder in folders:
        try:
            run = read_run(folder)
        except InputError as e:
            rows.append({"name": Path(folder).name, "status": "unreadable", "error": e.one_line()})
            continue
        page = Path(folder) / REPORT_NAME
        rows.append(
            {
                **_headline(run),
                "href": Path(os.path.relpath(page.resolve(), target.parent.resolve())).as_posix()
                if page.is_file()
                else None,
            }
        )
    listed = {r["name"] for r in rows}
    batch = root / "batch.json"
    if batch.is_file():
        try:
            entries = json.loads(batch.read_text()).get("entries") or []
        except (OSError, ValueError, AttributeError):
            entries = []
        for e in entries:
            if (
                isinstance(e, dict)
                and e.get("name") not in listed
                and e.get("status") not in ("complete", "partial")
            ):
                rows.append(
                    {
                        "name": e.get("name") or e.get("source"),
                        "status": e.get("status", "?"),
                        "error": e.get("error"),
                    }
                )
    from vpscli import __version__

    blank = dict.fromkeys(
        ("name", "status", "href", "error", "duration", "frames", "episodes", "with_mask", "flagged", "model")
    )
    rows = [{**blank, **r} for r in rows]
    html = _env().get_template("index.html.j2").render(root=root, rows=rows, version=__version__)
    write_text_atomic(target, html)
    return target
