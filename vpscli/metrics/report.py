"""Reports of an :class:`~vpscli.metrics.runner.EvaluationResult`: the toolbox-style rounded values, the
protocol statement, JSON and CSV.

- Tables round like the toolbox: ``format(numpy.round(v, 3), ".3f")`` (numpy rounds half to even on the
  binary value), so they can be diffed against ``eval-result/*.txt``.
- JSON holds unrounded float64 values with NaN as ``null``, shaped
  ``{"protocol": {...}, "splits": {SPLIT: {METHOD: {"dataset": {KEY: v}, "per_sequence": {CASE:
  {"n_frames": n, KEY: v}}}}}}``.
- CSV has one row per (split, method, level, sequence): ``level`` is ``dataset`` or ``sequence``.

With the detection view (:mod:`vpscli.metrics.detection`), each (split, method) of the JSON also holds
``"detection": {"dataset": {...}, "per_sequence": {CASE: {...}}}`` and the protocol says how it was
computed; the CSV rows gain :data:`DETECTION_COLUMNS` after the toolbox metrics. The toolbox values
are the same, bit for bit, with or without it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from vpscli import __version__
from vpscli.metrics.layout import Split
from vpscli.metrics.runner import EvaluationResult

#: CSV columns of the detection view, after the toolbox metrics. ``time_to_first_detection_*`` list the
#: video's polyp episodes in order, ``;``-separated (``missed`` when never detected); dataset rows leave
#: them empty and give the median over detected episodes instead.
DETECTION_COLUMNS = (
    "frame_sensitivity",
    "frame_specificity",
    "gt_positive_frames",
    "polyp_episodes",
    "polyp_episodes_detected",
    "time_to_first_detection_frames",
    "time_to_first_detection_seconds",
    "median_time_to_first_detection_frames",
    "false_alarm_episodes",
    "false_alarm_episodes_per_minute",
)

DETECTION_PROTOCOL = (
    "every GT frame of each sequence (first and last kept); GT-positive: GT > 128 somewhere; detected: the "
    "predicted mask is non-empty (masks/ of vps segment runs, after their persistence filter; other maps "
    "binarised at v/255 >= threshold); sensitivity/specificity over frames, pooled over sequences for the "
    "dataset; polyp episode: a maximal run of GT-positive frames, time to first detection from its first "
    "frame; false-alarm episodes: runs of detected frames in videos whose GT is empty on every frame"
)

SORT_DESCRIPTIONS = {
    "auto": "numeric, else SUN-SEG (toolbox 2025 rule), else natural",
    "legacy": "numeric, else SUN-SEG without clip id (pre-2025 toolbox rule, the published tables)",
    "sunseg": "SUN-SEG key",
    "natural": "natural order",
    "name": "character order (MATLAB dir)",
}


def format_value(value: float) -> str:
    """The toolbox's table format: ``'%.3f' % numpy.round(v, 3)``; NaN prints as ``nan``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return format(np.round(value, 3), ".3f")


def protocol(result: EvaluationResult) -> dict:
    """What was computed, in words and settings (the JSON ``protocol`` object)."""
    plan = result.plan
    return {
        "tool": f"vps {__version__}",
        "reference": "GewelsJI/VPS eval/ (SUN-SEG benchmark toolbox)",
        "metrics": list(result.metrics),
        "gt": "GT > 128 is foreground",
        "prediction": "8-bit grayscale (OpenCV); resized to the GT size with cv2.resize (bilinear); "
        "min-max normalised per frame (constant maps kept as v/255)",
        "reading": "8-bit grey PNGs as the toolbox reads them (cv2.imread grayscale); palette (index > 0), "
        "1-bit, 0/1, 16-bit and RGB masks converted by vps's mask reader (counted in 'conversions')",
        "conversions": conversions(result),
        "thresholds": {
            "Em, Fm": "256 thresholds, uint8-truncated histogram",
            "Dice, IoU, Sen, Spe": "numpy.linspace(1, 0, 256), p >= t; all 0 where TP = 0",
            "adpEm, adpFm": "p >= min(2 * mean(p), 1)",
        },
        "trim_ends": not plan.keep_ends,
        "sort": plan.sort_rule,
        "aggregation": "mean over frames per sequence, then mean over sequences; max/mean of the mean curve",
        "gt_root": str(plan.gt_root),
        "pred_root": str(plan.pred_root),
        "notes": plan.diagnostics.notes,
        "warnings": plan.diagnostics.warnings,
    }


def conversions(result: EvaluationResult) -> dict[str, dict[str, int]]:
    """Files read with a conversion (:data:`vpscli.io.masks.CONVERSIONS`), by kind: ``{"gt": {kind: n},
    "predictions": {kind: n}}``; a GT file is counted once, however many methods are scored against it."""
    gt: dict[str, int] = {}
    preds: dict[str, int] = {}
    seen_splits: set[str] = set()
    for (split, _), issue in result.issues.items():
        if split not in seen_splits:  # every method of a split reads the same GT frames
            seen_splits.add(split)
            for kind, n in issue.gt_kinds.items():
                gt[kind] = gt.get(kind, 0) + n
        for kind, n in issue.pred_kinds.items():
            preds[kind] = preds.get(kind, 0) + n
    return {"gt": gt, "predictions": preds}


def split_label(split: Split) -> str:
    """The toolbox's dataset label (``TestEasyDataset-Seen``); a single split is named after its folder."""
    if split.name != ".":
        return split.name.replace("/", "-")
    folder = split.cases_dir
    return folder.parent.name if folder.name == "GT" and folder.parent.name else folder.name


def protocol_line(result: EvaluationResult) -> str:
    """One line stating the protocol under the tables."""
    plan = result.plan
    trim = "first and last frame of each sequence dropped" if not plan.keep_ends else "all frames kept"
    return (
        "protocol: GT > 128; prediction resized to GT (bilinear) and min-max normalised; "
        "E/F: 256 uint8-histogram thresholds; Dice/IoU/Sen/Spe: linspace(1, 0, 256), p ≥ t, 0 when TP = 0; "
        f"adaptive: 2·mean ≤ 1; {trim}; sort: {plan.sort_rule} ({SORT_DESCRIPTIONS[plan.sort_rule]}); "
        "mean over frames → sequences → split"
    )


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def to_dict(result: EvaluationResult, detection: dict | None = None) -> dict:
    """The JSON document (NaN already turned into None); ``detection``: the detection view of each
    (split, method) (:func:`vpscli.metrics.detection.detection_view`), when computed."""
    splits: dict[str, dict] = {}
    for (split, method), dataset in result.datasets.items():
        per_sequence = {}
        for seq in result.sequences[(split, method)]:
            row = {"n_frames": seq.n_frames}
            row.update({k: _clean(seq.value(k)) for k in result.metrics})
            per_sequence[seq.name] = row
        splits.setdefault(split, {})[method] = {
            "dataset": {k: _clean(dataset.value(k)) for k in result.metrics},
            "n_sequences": dataset.n_sequences,
            "n_frames": dataset.n_frames,
            "per_sequence": per_sequence,
        }
        if detection is not None and (split, method) in detection:
            view = detection[(split, method)]
            splits[split][method]["detection"] = {
                "dataset": view.to_json(),
                "per_sequence": {s.name: s.to_json() for s in view.sequences},
            }
    doc = {"protocol": protocol(result), "splits": splits}
    if detection is not None:
        doc["protocol"]["detection"] = DETECTION_PROTOCOL
    return doc


def write_json(result: EvaluationResult, path: str | Path, detection: dict | None = None) -> str:
    """Write the JSON report to ``path`` (``-``: return the text for stdout)."""
    text = json.dumps(to_dict(result, detection), indent=2, allow_nan=False)
    if str(path) != "-":
        _write_text(Path(path), text + "\n")
    return text


def csv_rows(result: EvaluationResult, detection: dict | None = None) -> list[list]:
    """Header plus one row per dataset and per sequence; unrounded values, NaN as an empty cell; the
    detection view's :data:`DETECTION_COLUMNS` after the metrics when ``detection`` is given."""
    extra = list(DETECTION_COLUMNS) if detection is not None else []
    rows: list[list] = [["split", "method", "level", "sequence", "n_frames", *result.metrics, *extra]]

    def cells(values):
        return ["" if math.isnan(v) else repr(float(v)) for v in values]

    for (split, method), dataset in result.datasets.items():
        view = detection.get((split, method)) if detection is not None else None
        by_name = {s.name: s for s in view.sequences} if view is not None else {}
        tail = _dataset_detection_cells(view) if extra else []
        rows.append(
            [
                split,
                method,
                "dataset",
                "",
                dataset.n_frames,
                *cells(dataset.value(k) for k in result.metrics),
                *tail,
            ]
        )
        for seq in result.sequences[(split, method)]:
            tail = _sequence_detection_cells(by_name.get(seq.name)) if extra else []
            rows.append(
                [
                    split,
                    method,
                    "sequence",
                    seq.name,
                    seq.n_frames,
                    *cells(seq.value(k) for k in result.metrics),
                    *tail,
                ]
            )
    return rows


def _cell(value) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _dataset_detection_cells(view) -> list[str]:
    if view is None:
        return [""] * len(DETECTION_COLUMNS)
    d = view.to_json()
    return [
        _cell(d["sensitivity"]),
        _cell(d["specificity"]),
        _cell(d["gt_positive_frames"]),
        _cell(d["polyp_episodes"]),
        _cell(d["polyp_episodes_detected"]),
        "",
        "",
        _cell(d["median_time_to_first_detection_frames"]),
        _cell(d["false_alarm_episodes"]),
        _cell(d["false_alarm_episodes_per_minute"]),
    ]


def _sequence_detection_cells(seq) -> list[str]:
    if seq is None:
        return [""] * len(DETECTION_COLUMNS)
    frames = ";".join("missed" if e.missed else str(e.delay) for e in seq.episodes)
    seconds = (
        ";".join("missed" if e.missed else repr(seq.seconds(e.delay)) for e in seq.episodes)
        if seq.fps
        else ""
    )
    return [
        _cell(seq.sensitivity),
        _cell(seq.specificity),
        str(seq.gt_positive),
        str(len(seq.episodes)),
        str(sum(not e.missed for e in seq.episodes)),
        frames,
        seconds,
        _cell(seq.median_delay_frames),
        _cell(seq.false_alarm_episodes),
        _cell(seq.false_alarms_per_minute),
    ]


def write_csv(result: EvaluationResult, path: str | Path, detection: dict | None = None) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(csv_rows(result, detection))
    _write_text(Path(path), buffer.getvalue())


def _write_text(path: Path, text: str) -> None:
    from vpscli.errors import OutputError

    try:
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        raise OutputError(f"cannot write ({e.strerror})", path=path) from None
