"""``vps segment``'s batch side: inputs from arguments and manifests, shards, and the two ways of running
them — in this process (:func:`run_local`) or as Ray tasks (:func:`run_on_ray`) — each writing ``batch.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from vpscli.batch.manifest import take_shard
from vpscli.batch.record import VideoJob, VideoSettings, outcome_of_failure, outcome_of_report, this_worker
from vpscli.cli.console import err_console, input_failure_line, notice, running_line, warning_line
from vpscli.errors import UsageError, VpsError


def gather_jobs(
    inputs: list[str],
    entries: list,
    fps: float | None,
    shard,
    defaults: VideoSettings,
    absolute: bool = False,
):
    """Every input of the command line and the manifest, expanded and named as one run names them, then
    the shard's share. Returns ``(jobs, failures)``: a missing input fails alone (reported here).
    ``absolute``: sources by absolute path (Ray workers do not run in this folder)."""
    from vpscli.io.sources import discover_sources, distinct_names

    sources, settings, failures, origin = [], {}, {}, {}
    given = [(t, {}, "the command line") for t in inputs] + [
        (e.path, e.options, e.where or "the manifest") for e in entries
    ]
    for text, options, where in given:
        text = str(Path(text).expanduser().absolute()) if absolute else text
        try:
            found = discover_sources([text], fps=fps)
        except VpsError as e:
            failures[text] = e
            input_failure_line(e)
            continue
        for s in found:
            key, wanted = s.path.resolve(), replace(defaults, **options)
            if key in settings and settings[key] != wanted:  # one video, two settings: never a silent choice
                raise UsageError(
                    f"{s.path} is listed twice with different settings ({origin[key]} and {where})",
                    fix="keep one row per video, or give both rows the same values",
                )
            settings.setdefault(key, wanted)
            origin.setdefault(key, where)
        sources.extend(found)
    if fps is not None:
        from vpscli.io.sources import VideoFileSource

        videos = [s.path.name for s in sources if isinstance(s, VideoFileSource)]
        if videos:
            warning_line(
                f"--fps {fps:g} applies to frame folders only: {len(videos)} video file(s) keep their own "
                f"timestamps ({', '.join(videos[:3])}{' …' if len(videos) > 3 else ''})"
            )
    sources = take_shard(distinct_names(sources), shard)  # names over all inputs: the same in every shard
    return [VideoJob(s, settings[s.path.resolve()]) for s in sources], failures


@dataclass
class RunConfig:
    """The command's options that say how videos are segmented (beside each job's own settings)."""

    weights: Path | None
    device: str
    precision: str
    batch: int
    compile_model: bool
    compile_mode: str | None
    threads: int | None  # --threads as given
    quiet: bool
    tta: bool = False


class BatchLog:
    """What happened to each video, for the summary table, the exit code and ``batch.json``."""

    def __init__(self, jobs: list[VideoJob], out_root: Path, unfound: dict | None = None):
        self.jobs, self.out_root = jobs, Path(out_root)
        #: inputs that named no video (not found, unreadable folder): listed in batch.json as failed
        self.unfound: dict[str, VpsError] = dict(unfound or {})
        self.started = datetime.now(timezone.utc)
        self.reports: dict[int, object] = {}
        self.failures: dict[str, VpsError] = {}
        self.outcomes: dict[int, object] = {}

    def finished(self, i: int, report, device: str | None, worker: str | None, attempts: int = 1) -> None:
        self.reports[i] = report
        self.outcomes[i] = outcome_of_report(self.jobs[i], report, device, worker, attempts)
        for w in report.warnings:
            warning_line(w)
        alarm = false_alarm_warning(report)
        if alarm:
            warning_line(alarm)

    def failed(self, i: int, error: VpsError, worker: str | None = None, attempts: int = 1) -> None:
        job = self.jobs[i]
        self.failures[str(job.source.path)] = error
        self.outcomes[i] = outcome_of_failure(
            job, self.out_root, error.one_line(), worker=worker, attempts=attempts
        )
        input_failure_line(error)

    def write(self, path: Path, backend: str, extra: dict) -> None:
        """``batch.json``; videos without an outcome (an interrupt came first) are ``interrupted``."""
        from vpscli.batch.record import VideoOutcome, write_batch_json

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
        try:
            written = write_batch_json(path, outcomes, started=self.started, backend=backend, extra=extra)
            if written != path:
                notice(f"{path} holds another batch's record; this batch's is {written.name}")
        except (OSError, VpsError) as e:  # the videos' own outputs are whole: say so, do not fail the batch
            warning_line(
                f"{path}: could not write the batch summary ({e}); every video's run.json is in place"
            )

    def ordered_reports(self) -> list:
        return [self.reports[i] for i in sorted(self.reports)]


def _groups(jobs: list[VideoJob]) -> dict[VideoSettings, list[int]]:
    groups: dict[VideoSettings, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(job.settings, []).append(i)
    return groups


def run_local(jobs: list[VideoJob], log: BatchLog, cfg: RunConfig, opts, jobs_at_once: int, progress) -> None:
    """Segment the jobs in this process, one model per distinct setting (most batches: one), ``jobs_at_once``
    videos at a time sharing it, exactly as ``vps segment`` always has."""
    from vpscli.engine import Segmenter, segment_many
    from vpscli.engine.device import jobs_cpu_threads, model_cpu_threads, resolve_placement, set_cpu_threads
    from vpscli.weights.store import load_model

    placement = resolve_placement(cfg.device, cfg.precision)
    model_threads = model_cpu_threads(cfg.threads)
    if cfg.threads is None:  # videos segmented at once share the model's cores (--threads is taken as given)
        model_threads = jobs_cpu_threads(model_threads, min(jobs_at_once, len(jobs)))
    # deliberately, before the model runs: the model's threads and the pipeline's must not oversubscribe
    set_cpu_threads(model_threads if placement.device.type == "cpu" else None)
    worker = this_worker()
    for settings, indices in _groups(jobs).items():
        seg = Segmenter(
            load_model(settings.model, cfg.weights),
            device=cfg.device,
            precision=cfg.precision,
            threshold=settings.threshold,
            batch=cfg.batch,
            compile=cfg.compile_model,
            compile_mode=cfg.compile_mode,
            tta=cfg.tta,
        )
        # one line says what runs and where (the device chosen for the user included); the model card's
        # note stays in `vps weights list` and the README rather than repeating on every run
        where = "the CPU" if seg.placement.device.type == "cpu" else str(seg.placement.device)
        running_line(
            seg.loaded.describe() + (", with test-time augmentation" if cfg.tta else "") + f", on {where}"
        )
        if seg.batch_note:
            notice(seg.batch_note, cfg.quiet)
        if seg.compiled and seg.placement.device.type == "cpu":
            notice(
                "--compile: torch.compile builds the model's kernels with a C++ compiler on the first clip of "
                "each input size, which takes minutes on a CPU before the first frame is written (a long "
                "video earns it back; a short clip does not)",
                cfg.quiet,
            )
        index_of = {id(jobs[i].source): i for i in indices}

        def on_done(source, report, error, seg=seg, index_of=index_of):
            progress.video_done(source)
            if error is not None:
                log.failed(index_of[id(source)], error, worker)
            else:
                log.finished(index_of[id(source)], report, str(seg.placement.device), worker)

        group_opts = replace(opts, min_persistence=settings.min_persistence)
        segment_many(
            seg,
            [jobs[i].source for i in indices],
            group_opts,
            progress.video_started,
            progress.frame_done,
            on_done,
            jobs=jobs_at_once,
        )


class LocalProgress:
    """The local progress view: a bar per running video (frames, frames/s)."""

    def __init__(self, quiet: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.running: dict = {}  # source → (progress task, start time)
        self.view = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]:.1f} frames/s"),
            TimeRemainingColumn(),
            console=err_console,
            disable=quiet,
            transient=True,
        )

    def running_names(self) -> list[str]:
        return [s.name for s in self.running]

    def video_started(self, source) -> None:
        try:
            total = source.probe().frame_count
        except Exception:  # reported by segment_video
            total = None
        self.running[source] = (self.view.add_task(source.name, total=total, fps=0.0), time.perf_counter())

    def frame_done(self, source, result) -> None:
        task, t0 = self.running[source]
        done = result.index + 1
        elapsed = time.perf_counter() - t0
        self.view.update(task, completed=done, fps=done / elapsed if elapsed > 0 else 0.0)

    def video_done(self, source) -> None:
        self.view.remove_task(self.running.pop(source)[0])


class RayProgress:
    """The Ray progress view: one line for the batch — videos done and failed of all, frames/s overall."""

    def __init__(self, total: int, quiet: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.view = Progress(
            TextColumn("videos"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed {task.fields[failed]}  {task.fields[fps]:.1f} frames/s overall"),
            TimeElapsedColumn(),
            console=err_console,
            disable=quiet,
            transient=True,
        )
        self.task = self.view.add_task("videos", total=total, failed=0, fps=0.0)
        self.t0 = time.perf_counter()
        self.failed = 0

    def running_names(self) -> list[str]:
        return []

    def update(self, done: int, failed: int, frames: int) -> None:
        elapsed = time.perf_counter() - self.t0
        self.view.update(
            self.task, completed=done, failed=failed, fps=frames / elapsed if elapsed > 0 else 0.0
        )


# long: one Ray session from start to shutdown, its progress and its failures
def run_on_ray(
    jobs: list[VideoJob],
    log: BatchLog,
    cfg: RunConfig,
    opts,
    *,
    address: str,
    gpus_per_video: float,
    cpus_per_video: float,
    max_retries: int,
    progress: RayProgress,
) -> None:
    """Segment every job as a Ray task (:mod:`vpscli.batch.ray_backend`); Ctrl-C cancels them."""
    import os

    from vpscli.batch import ray_backend as rb
    from vpscli.weights.store import describe_weights

    for model in dict.fromkeys(job.settings.model for job in jobs):
        running_line(
            describe_weights(model, cfg.weights) + (", with test-time augmentation" if cfg.tta else "")
        )
    device = rb.task_device(cfg.device, gpus_per_video)
    threads = rb.task_cpu_threads(cfg.threads, cpus_per_video)
    started = rb.connect(address)
    try:
        import ray

        rb.check_cluster_resources(ray.cluster_resources(), gpus_per_video, cpus_per_video)
    except VpsError:
        if started:
            ray.shutdown()
        raise
    tasks = [
        rb.SegmentTask(
            job.source,
            (
                job.settings.model,
                str(cfg.weights) if cfg.weights else None,
                device,
                cfg.precision,
                job.settings.threshold,
                cfg.batch,
                cfg.compile_model,
                cfg.compile_mode,
                cfg.tta,
            ),
            replace(
                opts, out_root=Path(opts.out_root).absolute(), min_persistence=job.settings.min_persistence
            ),
            threads,
            log.started,
            os.environ.get(rb.TEST_EXIT_ENV),
        )
        for job in jobs
    ]
    done = failed = 0

    def on_result(i: int, result: dict | None, error, attempts: int, frames: int) -> None:
        nonlocal done, failed
        if result is not None and "report" in result:
            done += 1
            log.finished(i, result["report"], result["device"], result["worker"], attempts)
        else:
            failed += 1
            message = (
                result["error"] if result is not None else rb.failure_message(jobs[i].source, error, attempts)
            )
            log.failed(i, _Reported(message), result.get("worker") if result else None, attempts)
        progress.update(done, failed, frames)

    try:
        rb.segment_tasks(
            tasks,
            gpus_per_video=gpus_per_video,
            cpus_per_video=cpus_per_video,
            max_retries=max_retries,
            on_result=on_result,
            on_tick=lambda frames: progress.update(done, failed, frames),
        )
    finally:
        if started:
            import ray

            ray.shutdown()


class _Reported(VpsError):
    """A video's failure as its worker worded it (already one line)."""

    def one_line(self) -> str:
        return self.message


def longest_run_text(summary) -> str:
    """``12 frames (0.48 s) from frame 40``, or ``-``."""
    run = summary.longest
    if run is None:
        return "-"
    seconds = summary.seconds(run.length)
    return (
        f"{run.length} frames"
        + (f" ({seconds:.2f} s)" if seconds is not None else "")
        + f" from frame {run.start}"
    )


def false_alarm_warning(report) -> str | None:
    """A warning for a video said to be polyp-free (``--expect-negative``) that still has flagged frames
    after the filter; ``None`` otherwise. Said even under ``--quiet``."""
    f = report.flags
    if f is None or not f.expect_negative or f.flagged_after == 0:
        return None
    per_minute = f.per_minute(f.episodes_after)
    rate = f" ({per_minute:.2f} per minute)" if per_minute is not None else ""
    return (
        f"{report.name}: {f.episodes_after} false-alarm episode(s){rate} on a video said to be polyp-free, "
        f"{f.flagged_after} of {f.frames} frames flagged after the persistence filter; longest: {longest_run_text(f)} "
        f"— see {report.out_dir}/frames.csv"
    )
