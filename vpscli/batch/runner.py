"""Run a batch of videos in this process or on Ray, and report what happened to each.

Example::

    from vpscli.batch.jobs import gather_jobs
    from vpscli.batch.record import batch_json_path
    from vpscli.batch.runner import BatchReport, LocalBackend, run_batch
    from vpscli.engine import ModelConfig, SegmentOptions

    jobs, missing = gather_jobs(["a.mp4", "b.mp4"], [], ModelConfig("pns-plus"), SegmentOptions("out"))
    report = run_batch(jobs, LocalBackend(jobs_at_once=2), BatchReport(jobs, "out", missing))
    report.write_json(batch_json_path("out", None), "local")

:func:`run_batch` groups the jobs by configuration (one model per distinct one; most batches: one) and
segments them with :func:`~vpscli.engine.segment_many` (:class:`LocalBackend`) or one Ray task per video
(:class:`RayBackend`, :mod:`vpscli.batch.ray_backend`). A failing video does not stop the others; an
interrupt (Ctrl-C, SIGTERM) stops them all, and the :class:`BatchReport` given holds what finished.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from vpscli.batch.events import BatchEvents
from vpscli.batch.jobs import VideoJob
from vpscli.batch.record import (
    VideoOutcome,
    outcome_of_failure,
    outcome_of_report,
    this_worker,
    write_batch_json,
)
from vpscli.engine.options import ModelConfig
from vpscli.errors import VpsError


@dataclass(frozen=True)
class LocalBackend:
    """Segment in this process: ``jobs_at_once`` videos at a time sharing the model; ``threads``: the model's
    CPU threads (``None``: the usable CPUs minus one, shared by the videos running at once)."""

    jobs_at_once: int = 1
    threads: int | None = None
    name = "local"


@dataclass(frozen=True)
class RayBackend:
    """One Ray task per video on the cluster ``address`` names (:func:`~vpscli.batch.ray_cluster.connect`),
    each granted ``gpus_per_video`` GPUs and ``cpus_per_video`` CPUs, retried ``max_retries`` times when its
    worker is lost. ``frame_hook(name, result)`` runs in the worker for each decided frame (tests use it to
    make a worker fail); it must pickle."""

    address: str = "auto"
    gpus_per_video: float = 0.0
    cpus_per_video: float = 1.0
    max_retries: int = 2
    threads: int | None = None
    frame_hook: Callable | None = None
    name = "ray"


class BatchReport:
    """What happened to each video of a batch: its report or its error, and its ``batch.json`` line."""

    def __init__(self, jobs: list[VideoJob], out_root: str | Path, unfound: dict | None = None):
        self.jobs, self.out_root = jobs, Path(out_root)
        #: inputs that named no video (not found, unreadable folder): listed in batch.json as failed
        self.unfound: dict[str, VpsError] = dict(unfound or {})
        self.started = datetime.now(timezone.utc)
        self.reports: dict[int, object] = {}
        self.failures: dict[str, VpsError] = {}
        self.outcomes: dict[int, VideoOutcome] = {}

    def finished(self, i: int, report, device: str | None, worker: str | None, attempts: int = 1) -> None:
        self.reports[i] = report
        self.outcomes[i] = outcome_of_report(self.jobs[i], report, device, worker, attempts)

    def failed(self, i: int, error: VpsError, worker: str | None = None, attempts: int = 1) -> None:
        job = self.jobs[i]
        self.failures[str(job.source.path)] = error
        self.outcomes[i] = outcome_of_failure(
            job, self.out_root, error.one_line(), worker=worker, attempts=attempts
        )

    def ordered_reports(self) -> list:
        """The reports of the finished and skipped videos, in input order."""
        return [self.reports[i] for i in sorted(self.reports)]

    def write_json(self, path: Path, backend: str, extra: dict | None = None) -> Path:
        """``batch.json`` (:mod:`vpscli.batch.record`); videos without an outcome (an interrupt came first) are
        ``interrupted``. Returns the path written (another batch's record at ``path`` is kept)."""
        outcomes = [
            self.outcomes.get(i)
            or outcome_of_failure(
                job,
                self.out_root,
                "the batch stopped (interrupt or error) before it finished",
                status="interrupted",
            )
            for i, job in enumerate(self.jobs)
        ]
        outcomes += [
            VideoOutcome(Path(text).name, text, "", "failed", error=e.one_line())
            for text, e in self.unfound.items()
        ]
        return write_batch_json(path, outcomes, started=self.started, backend=backend, extra=extra)


def run_batch(
    jobs: list[VideoJob],
    backend: LocalBackend | RayBackend,
    report: BatchReport,
    events: BatchEvents | None = None,
) -> BatchReport:
    """Segment every job on ``backend``, recording each outcome in ``report`` (returned) and telling
    ``events`` as it goes. Interrupts and errors of the batch itself (Ray unreachable) propagate; ``report``
    then holds what finished."""
    events = events or BatchEvents()
    if isinstance(backend, RayBackend):
        _run_on_ray(jobs, backend, report, events)
    else:
        _run_local(jobs, backend, report, events)
    return report


def _groups(jobs: list[VideoJob]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault((job.model, job.options), []).append(i)
    return groups


def _run_local(jobs: list[VideoJob], backend: LocalBackend, report: BatchReport, events: BatchEvents) -> None:
    """Segment the jobs in this process, one model per distinct configuration, ``jobs_at_once`` videos at a
    time sharing it."""
    from vpscli.backends import choose_backend
    from vpscli.engine import segment_many
    from vpscli.engine.device import jobs_cpu_threads, model_cpu_threads, set_cpu_threads

    if not jobs:
        return
    first = jobs[0].model
    choice = choose_backend(first.backend, first.device, first.precision, calibration=first.calibration)
    model_threads = model_cpu_threads(backend.threads)
    compiled_threads = model_cpu_threads(backend.threads, choice.backend)
    # videos segmented at once share the model's cores (--threads is taken as given)
    if backend.threads is None:
        at_once = min(backend.jobs_at_once, len(jobs))
        model_threads = jobs_cpu_threads(model_threads, at_once)
        compiled_threads = jobs_cpu_threads(compiled_threads, at_once)
    # deliberately, before the model runs: the model's threads and the pipeline's must not oversubscribe
    on_cpu = choice.placement.device.type == "cpu"
    set_cpu_threads(model_threads if on_cpu else None, compiled_threads if on_cpu else None)
    worker = this_worker()
    for (model, options), indices in _groups(jobs).items():
        seg = _loaded_segmenter(model, events)
        _note_frame_decision(seg.weights_entry, seg.threshold, options.presence, events)
        index_of = {id(jobs[i].source): i for i in indices}

        def on_done(source, video, error, seg=seg, index_of=index_of):
            events.video_done(source)
            if error is not None:
                report.failed(index_of[id(source)], error, worker)
                events.video_failed(error)
            else:
                report.finished(index_of[id(source)], video, str(seg.placement.device), worker)
                events.video_finished(video)

        segment_many(
            seg,
            [jobs[i].source for i in indices],
            options,
            events.video_started,
            events.frame_done,
            on_done,
            jobs=backend.jobs_at_once,
        )


def _loaded_segmenter(model: ModelConfig, events: BatchEvents):
    """The group's :class:`~vpscli.engine.Segmenter`, and one line saying what runs and where (the device
    chosen for the user included; the model card's note stays in ``vps weights list``)."""
    from vpscli.engine import Segmenter

    # a conversion takes seconds (int8: a pass over the calibration frames too): say so before it starts
    seg = Segmenter.from_config(model, on_convert=events.notice)
    where = "the CPU" if seg.placement.device.type == "cpu" else str(seg.placement.device)
    events.running(
        seg.loaded.describe()
        + (", with test-time augmentation" if model.tta else "")
        + f", on {where} ({seg.backend_text})"
    )
    if seg.batch_note:
        events.notice(seg.batch_note)
    if seg.compiled and seg.placement.device.type == "cpu":
        events.notice(
            "--compile: torch.compile builds the model's kernels with a C++ compiler on the first clip of "
            "each input size, which takes minutes on a CPU before the first frame is written (a long "
            "video earns it back; a short clip does not)"
        )
    return seg


def _note_frame_decision(card, threshold: float, presence: float | None, events: BatchEvents) -> None:
    """Say so when the weights' model card (``card``, a :class:`~vpscli.weights.WeightsEntry` or ``None``),
    not ``--presence``, sets the frame decision."""
    from vpscli.engine.frame_decision import frame_presence

    level = frame_presence(presence, card.presence if card is not None else None, threshold)
    if presence is None and level is not None:
        events.notice(
            f"frame decision: a frame counts as showing a polyp when its peak probability reaches {level:g}, "
            f"the level calibrated for {card.file} on its model card (--presence "
            f"{threshold:g}: every frame whose mask has a pixel)"
        )


def _say_what_runs_on_ray(jobs: list[VideoJob], events: BatchEvents) -> None:
    """The "running" line of each model and weights, and the frame decision a model card sets, once each:
    the workers decide each frame as a local run does (``segment_video``) but print nothing."""
    from vpscli.weights.manifest import sha256_file
    from vpscli.weights.store import describe_weights, weights_card

    # each weights file hashed once, for its "running" line and its model card alike
    shas: dict[str | Path | None, str] = {
        w: sha256_file(w) for w in dict.fromkeys(j.model.weights for j in jobs) if w is not None
    }
    for name, weights, tta in dict.fromkeys((j.model.model, j.model.weights, j.model.tta) for j in jobs):
        line = describe_weights(name, weights, sha256=shas.get(weights))
        events.running(line + (", with test-time augmentation" if tta else ""))
    decisions = ((j.model.model, j.model.weights, j.model.threshold, j.options.presence) for j in jobs)
    for name, weights, threshold, presence in dict.fromkeys(decisions):
        _note_frame_decision(
            weights_card(name, weights, sha256=shas.get(weights)), threshold, presence, events
        )


def _ray_tasks(jobs: list[VideoJob], backend: RayBackend, report: BatchReport) -> list:
    """One :class:`~vpscli.batch.ray_backend.SegmentTask` per job: its device, absolute paths, and the model's
    threads by the local rule within ``--cpus-per-video`` (the runtime as far as this machine can tell;
    CUDA stays torch)."""
    from vpscli.backends import choose_backend
    from vpscli.batch import ray_backend as rb

    threads = rb.task_cpu_threads(backend.threads, backend.cpus_per_video)
    tasks = []
    for job in jobs:
        model = job.model
        device = rb.task_device(model.device, backend.gpus_per_video)
        runtime = "torch"
        if device == "cpu":
            runtime = choose_backend(
                model.backend, "cpu", model.precision, calibration=model.calibration
            ).backend
        tasks.append(
            rb.SegmentTask(
                job.source,
                replace(model, device=device, weights=str(model.weights) if model.weights else None),
                replace(job.options, out_root=Path(job.options.out_root).absolute()),
                threads,
                report.started,
                compiled_threads=rb.task_cpu_threads(backend.threads, backend.cpus_per_video, runtime),
                frame_hook=backend.frame_hook,
            )
        )
    return tasks


def _run_on_ray(jobs: list[VideoJob], backend: RayBackend, report: BatchReport, events: BatchEvents) -> None:
    """Segment every job as a Ray task (:mod:`vpscli.batch.ray_backend`); Ctrl-C cancels them."""
    from vpscli.batch import ray_backend as rb
    from vpscli.batch import ray_cluster

    _say_what_runs_on_ray(jobs, events)
    tasks = _ray_tasks(jobs, backend, report)
    started = ray_cluster.connect(backend.address)
    try:
        import ray

        ray_cluster.check_cluster_resources(
            ray.cluster_resources(), backend.gpus_per_video, backend.cpus_per_video
        )
    except VpsError:
        if started:
            ray.shutdown()
        raise
    done = failed = 0

    def on_result(i: int, result: dict | None, error, attempts: int, frames: int) -> None:
        nonlocal done, failed
        if result is not None and "report" in result:
            done += 1
            report.finished(i, result["report"], result["device"], result["worker"], attempts)
            events.video_finished(result["report"])
        else:
            failed += 1
            message = (
                result["error"] if result is not None else rb.failure_message(jobs[i].source, error, attempts)
            )
            report.failed(i, _Reported(message), result.get("worker") if result else None, attempts)
            events.video_failed(report.failures[str(jobs[i].source.path)])
        events.progress(done, failed, frames)

    try:
        rb.segment_tasks(
            tasks,
            gpus_per_video=backend.gpus_per_video,
            cpus_per_video=backend.cpus_per_video,
            max_retries=backend.max_retries,
            on_result=on_result,
            on_tick=lambda frames: events.progress(done, failed, frames),
        )
    finally:
        if started:
            import ray

            ray.shutdown()


class _Reported(VpsError):
    """A video's failure as its worker worded it (already one line)."""

    def one_line(self) -> str:
        return self.message
