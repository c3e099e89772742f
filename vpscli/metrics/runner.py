"""Running a :class:`~vpscli.metrics.layout.Plan`: frames stream through the scorers, in order, into
per-sequence accumulators, so memory stays bounded whatever the number of frames.

With ``workers > 1`` frames are scored in a thread pool (up to :data:`MIN_FRAMES_FOR_PROCESSES` frames:
NumPy, OpenCV and SciPy release the GIL for the heavy work, and threads start at once) or, for larger
sets, a process pool, whose start-up (each worker imports NumPy, SciPy and OpenCV) then pays off. Each
GT frame is read once for all methods; results come back in frame order, so the averages are the same,
bit for bit, as with one worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from vpscli.metrics.aggregate import DatasetResult, SequenceAccumulator, SequenceResult, aggregate_sequences
from vpscli.metrics.keys import families_for
from vpscli.metrics.layout import Plan
from vpscli.metrics.scoring import FrameScores, score_paths

#: Frames per task sent to a worker: large enough to hide the pickling, small enough to balance.
CHUNK_FRAMES = 8
#: Below this many frames a pool costs more than it saves.
MIN_FRAMES_FOR_POOL = 48
#: From this many frames, processes instead of threads (``benchmarks/bench_evaluate.py --pools``: on a
#: 2-core CPU, 204 frames at 352×352 take 1.8 s in 2 threads, 3.0 s in 2 processes, 2.1 s in one)
MIN_FRAMES_FOR_PROCESSES = 1000


def _score_task(task: tuple[Path, list[Path | None], frozenset[str]]) -> list[FrameScores]:
    return score_paths(*task)


def score_frames(tasks: list) -> list[list[FrameScores]]:
    """Score a run of frames (one sequence) in this process, OpenCV single-threaded (as pool workers)."""
    _init_worker()
    return [_score_task(t) for t in tasks]


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would oversubscribe


@dataclass
class FrameIssue:
    """Frames of one (split, method) that a user should hear about."""

    nan: list[tuple[str, list[str]]] = field(default_factory=list)  #: (case/frame, keys that are NaN)
    empty_gt: list[str] = field(default_factory=list)
    full_gt: list[str] = field(default_factory=list)
    resized: int = 0
    missing: int = 0
    #: conversion kind (:data:`vpscli.io.masks.CONVERSIONS`) -> number of GT / prediction files read so
    gt_kinds: dict[str, int] = field(default_factory=dict)
    pred_kinds: dict[str, int] = field(default_factory=dict)


@dataclass
class EvaluationResult:
    """Everything a report needs: per-sequence and per-split results for each (split, method).

    Example: ``result = evaluate_plan(build_plan("preds/", "GT/"), ("Smeasure", "maxDice"))``.
    """

    plan: Plan
    metrics: tuple[str, ...]
    sequences: dict[tuple[str, str], list[SequenceResult]]
    datasets: dict[tuple[str, str], DatasetResult]
    issues: dict[tuple[str, str], FrameIssue]
    #: per scored prediction file: (GT frame shows a polyp, the map's peak 0–255), so the detection view
    #: need not read the same files again
    flags: dict[Path, tuple[bool, int]] = field(default_factory=dict)


def default_workers(n_frames: int) -> int:
    """One process for small sets, else one per CPU (at most 8)."""
    if n_frames < MIN_FRAMES_FOR_POOL:
        return 1
    return max(
        1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    )


def evaluate_plan(
    plan: Plan,
    metrics: tuple[str, ...],
    *,
    workers: int = 1,
    extra_families: Iterable[str] = (),
    on_frame: Callable[[int], None] | None = None,
    scorer: Callable | None = None,
) -> EvaluationResult:
    """Score every evaluated frame of ``plan`` and average them.

    ``extra_families`` adds measure families beyond those ``metrics`` need (curves for a plot);
    ``on_frame(n)`` is called as frames complete (for a progress bar). ``scorer(sequence_keys, tasks)``,
    when given, scores the frames elsewhere (``vps evaluate --ray``): ``tasks`` are the frames' scoring
    tasks and ``sequence_keys`` their ``(split, case)``; it yields each frame's scores in the order given,
    so the accumulation, and every number, is that of a local run.
    """
    families = families_for(metrics) | frozenset(extra_families)
    jobs = list(plan.frame_jobs())
    pairs = plan.pairs()
    accumulators: dict[tuple[str, str], dict[str, SequenceAccumulator]] = {p: {} for p in pairs}
    issues = {p: FrameIssue() for p in pairs}
    flags: dict[Path, tuple[bool, int]] = {}
    tasks = ((gt_path, list(preds.values()), families) for *_, gt_path, preds in jobs)

    import cv2

    cv2_threads = cv2.getNumThreads()
    executor, results = _results(jobs, tasks, workers, scorer)
    try:
        # strict: once the jobs are done, the scorer is run to its end too (a Ray scorer left suspended at
        # its last frame would take its finished task for an abandoned one and cancel it)
        for (split, case, frame, _, preds), scores_per_method in zip(jobs, results, strict=True):
            for (method, pred_path), scores in zip(preds.items(), scores_per_method):
                if pred_path is not None:
                    flags[Path(pred_path)] = (not scores.empty_gt, scores.peak)
                key = (split, method)
                acc = accumulators[key].get(case)
                if acc is None:
                    acc = accumulators[key][case] = SequenceAccumulator(case)
                acc.add(scores)
                _note_frame(issues[key], f"{case}/{frame}", scores)
            if on_frame is not None:
                on_frame(1)
    finally:
        cv2.setNumThreads(cv2_threads)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    sequences: dict[tuple[str, str], list[SequenceResult]] = {}
    datasets: dict[tuple[str, str], DatasetResult] = {}
    for split in plan.splits:
        for method in plan.methods:
            key = (split.name, method)
            if key not in accumulators:
                continue
            results_here = []
            for seq in split.sequences:
                acc = accumulators[key].get(seq.name)
                results_here.append(acc.result() if acc else SequenceResult(seq.name, 0, {}, {}))
            sequences[key] = results_here
            datasets[key] = aggregate_sequences(results_here)
    return EvaluationResult(plan, tuple(metrics), sequences, datasets, issues, flags)


def _note_frame(issue: FrameIssue, name: str, scores: FrameScores) -> None:
    bad = scores.nan_keys()
    if bad:
        issue.nan.append((name, bad))
    if scores.empty_gt:
        issue.empty_gt.append(name)
    if scores.full_gt:
        issue.full_gt.append(name)
    issue.resized += scores.resized
    issue.missing += scores.missing
    if scores.gt_kind is not None:
        issue.gt_kinds[scores.gt_kind] = issue.gt_kinds.get(scores.gt_kind, 0) + 1
    if scores.pred_kind is not None:
        issue.pred_kinds[scores.pred_kind] = issue.pred_kinds.get(scores.pred_kind, 0) + 1


def _results(jobs: list, tasks, workers: int, scorer):
    """``(executor or None, an iterator of each frame's scores in job order)``: the given scorer (Ray), a
    thread pool (up to :data:`MIN_FRAMES_FOR_PROCESSES` frames), a process pool, or this thread."""
    import cv2

    if scorer is not None:
        executor = None
        results = scorer([(split, case) for split, case, *_ in jobs], list(tasks))
    elif workers > 1 and 2 <= len(jobs) < MIN_FRAMES_FOR_PROCESSES:
        from concurrent.futures import ThreadPoolExecutor

        cv2.setNumThreads(1)  # as in a worker process: the pool's threads already use every core
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="score")
        results = executor.map(_score_task, tasks)
    elif workers > 1 and len(jobs) >= 2:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
        )
        results = executor.map(_score_task, tasks, chunksize=CHUNK_FRAMES)
    else:
        executor = None
        cv2.setNumThreads(1)  # per-frame work is small: OpenCV's thread pool costs more than it gains
        results = map(_score_task, tasks)
    return executor, results
