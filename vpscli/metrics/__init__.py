"""The SUN-SEG / PNS-Net metric suite, faithful to the reference toolbox (GewelsJI/VPS ``eval/``).

Per-frame measures (each in its own module, working on a :class:`~vpscli.metrics.frame.PreparedFrame`):
:mod:`~vpscli.metrics.smeasure`, :mod:`~vpscli.metrics.wfmeasure`, :mod:`~vpscli.metrics.mae`,
:mod:`~vpscli.metrics.emeasure`, :mod:`~vpscli.metrics.fmeasure`, :mod:`~vpscli.metrics.medical`
(Dice/IoU/Sen/Spe), with the threshold conventions in :mod:`~vpscli.metrics.thresholds`.
The protocol around them: :mod:`~vpscli.metrics.ordering` (frame order, trimming),
:mod:`~vpscli.metrics.layout` (finding GT and predictions), :mod:`~vpscli.metrics.aggregate`
(frame -> sequence -> split), :mod:`~vpscli.metrics.runner` (streaming, process pool),
:mod:`~vpscli.metrics.report` and :mod:`~vpscli.metrics.plot` (outputs), and what the user is told beyond
the numbers: :mod:`~vpscli.metrics.diagnostics` (notes and warnings with stable codes), filled by the
layout and by :mod:`~vpscli.metrics.result_diagnostics`.

Typical use::

    from vpscli.metrics import build_plan, evaluate_plan
    plan = build_plan("preds/", "SUN-SEG/")
    result = evaluate_plan(plan, ("Smeasure", "meanEm", "maxDice"))
    result.datasets[("TestEasyDataset/Seen", "PNSPlus")].value("Smeasure")
"""

from __future__ import annotations

from vpscli.metrics.aggregate import DatasetResult, SequenceResult, aggregate_sequences
from vpscli.metrics.frame import PreparedFrame, prepare_frame, read_gray, read_pair
from vpscli.metrics.keys import DEFAULT_METRICS, METRIC_KEYS, PUBLISHED_METRICS, parse_metrics
from vpscli.metrics.layout import Plan, build_plan
from vpscli.metrics.runner import EvaluationResult, default_workers, evaluate_plan
from vpscli.metrics.scoring import FrameScores, score_arrays, score_files, score_frame

__all__ = [
    "DEFAULT_METRICS",
    "METRIC_KEYS",
    "PUBLISHED_METRICS",
    "DatasetResult",
    "EvaluationResult",
    "FrameScores",
    "Plan",
    "PreparedFrame",
    "SequenceResult",
    "aggregate_sequences",
    "build_plan",
    "default_workers",
    "evaluate_plan",
    "parse_metrics",
    "prepare_frame",
    "read_gray",
    "read_pair",
    "score_arrays",
    "score_files",
    "score_frame",
]
