"""``vps segment --ray``: one Ray task per video (joining the cluster: :mod:`vpscli.batch.ray_cluster`;
``vps evaluate --ray``'s tasks: :mod:`vpscli.batch.ray_scoring`).

Ray is an optional extra (``pip install 'vps[ray]'``), imported only when ``--ray`` is used. What a task does is exactly what a local run does for that video (:func:`segment_video`, the same
device resolver, the same resume rule), so shards, Ray workers and local runs can share one output root.

- **Model per worker**: a worker process keeps the :class:`Segmenter`\\s it built (keyed by their
  :class:`~vpscli.engine.ModelConfig`), so the model is loaded once per worker, not once per video.
- **Devices**: a task asks Ray for ``--gpus-per-video`` GPUs (fractional: several videos share a GPU)
  and ``--cpus-per-video`` CPUs; Ray makes only the granted GPUs visible to it, so the task's device is
  ``cuda`` when it was granted a GPU share and ``cpu`` otherwise (:func:`task_device`).
- **Failures**: an input error (unreadable video, …) is the video's result, reported with the one-line
  message of a local run and not retried (it would fail again). A worker that dies (killed, out of
  memory, node lost) or an unexpected exception is retried up to ``--max-retries`` times; a retry
  continues the video from its written frames (``--resume``'s rule), so finished frames are not
  predicted again. Under ``--overwrite`` a retry redoes the video unless the attempt before it had
  already finished and swapped in its outputs (its ``run.json`` started during this batch).
- **Ctrl-C**: every running task is cancelled (``ray.cancel``: the task stops as at a local Ctrl-C and
  records ``interrupted``), and a Ray instance this command started is shut down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from vpscli.batch.ray_cluster import cancel_tasks, import_ray
from vpscli.errors import InputError, UsageError, VpsError

if TYPE_CHECKING:
    from vpscli.engine.options import ModelConfig, SegmentOptions
    from vpscli.io.sources import FrameSource

#: how often a task reports its frame count to the progress view (seconds)
PROGRESS_EVERY_S = 1.0


def task_device(device: str, gpus_per_video: float) -> str:
    """The device a Ray task resolves (with :func:`~vpscli.engine.device.resolve_placement`, in the task):
    ``cuda`` when it is granted a GPU share, else ``cpu``. A ``cuda:N`` cannot be honoured (Ray picks the
    GPU), and a GPU device without a GPU share would have nothing to run on."""
    spec = (device or "auto").strip().lower()
    if spec not in ("auto", "cpu", "cuda"):
        raise UsageError(
            f"--device {device} with --ray: Ray chooses each task's GPU",
            fix="use --device auto (or cuda) with --gpus-per-video, or --device cpu",
        )
    if gpus_per_video < 0:
        raise UsageError(
            f"--gpus-per-video must be 0 or more, got {gpus_per_video}",
            fix="give a GPU share per video, e.g. 0.25 for four videos per GPU",
        )
    if gpus_per_video > 0:
        if spec == "cpu":
            raise UsageError(
                "--device cpu with --gpus-per-video would hold GPUs it never uses",
                fix="drop --gpus-per-video, or use --device auto",
            )
        return "cuda"
    if spec == "cuda":
        raise UsageError(
            "--device cuda with --ray needs a GPU share per video",
            fix="add --gpus-per-video 1 (or a fraction, e.g. 0.5)",
        )
    return "cpu"


def task_cpu_threads(threads: int | None, cpus_per_video: float, runtime: str = "torch") -> int:
    """Model threads of a task on the CPU: ``--threads`` if given, else the local rule
    (:func:`~vpscli.engine.device.model_cpu_threads`: torch keeps one CPU for decoding and writing,
    OpenVINO shares them all) applied to its CPU share, at least 1."""
    if threads is not None:
        return threads
    return max(1, int(cpus_per_video) - (0 if runtime == "openvino" else 1))


@dataclass(frozen=True)
class SegmentTask:
    """What one video's task needs (pickled to the worker)."""

    source: FrameSource
    #: the model, its ``device`` already the task's (:func:`task_device`) and its weights an absolute path
    model: ModelConfig
    options: SegmentOptions
    threads: int
    batch_started: datetime
    #: a compiled runtime's model threads (:func:`~vpscli.engine.device.set_cpu_threads`)
    compiled_threads: int | None = None
    #: called with the video's name and each decided frame, in the worker (a test's failure hook)
    frame_hook: Callable | None = None


#: the Segmenters of this worker process (a few: a manifest may mix models and thresholds)
_SEGMENTERS: dict = {}
_MAX_SEGMENTERS = 4


def _segmenter(config: ModelConfig):
    from vpscli.engine import Segmenter

    seg = _SEGMENTERS.get(config)
    if seg is None:
        if len(_SEGMENTERS) >= _MAX_SEGMENTERS:
            _SEGMENTERS.pop(next(iter(_SEGMENTERS)))
        seg = _SEGMENTERS[config] = Segmenter.from_config(config)
    return seg


def _finished_during_batch(out_dir: Path, batch_started: datetime) -> bool:
    """The folder holds a finished run that started in this batch (an earlier attempt finished it)."""
    from vpscli.io.run_record import RunRecord

    record = RunRecord.read(out_dir)
    if record is None or not record.is_finished:
        return False
    try:
        started = datetime.fromisoformat(record.started or "")
    except (TypeError, ValueError):
        return False
    return started >= batch_started.replace(microsecond=0)


def run_segment_task(task: SegmentTask, attempt: int, counter) -> dict:
    """The body of one video's Ray task: segment it as a local run would. Returns ``{"report": …}`` or, for
    an input error, ``{"error": one line}``; anything else (a bug, a lost worker) is Ray's to retry."""
    from vpscli.engine.device import set_cpu_threads
    from vpscli.engine.run_loop import VideoReport, segment_video

    worker = _worker_name()
    opts = task.options
    out_dir = Path(opts.out_root) / task.source.name
    if attempt > 0 and opts.overwrite and _finished_during_batch(out_dir, task.batch_started):
        return {"report": VideoReport(task.source.name, out_dir, "skipped"), "device": None, "worker": worker}
    if attempt > 0 and not opts.overwrite:
        opts = replace(opts, resume=True)  # the attempt before left frames: continue from them
    on_cpu = task.model.device == "cpu"
    set_cpu_threads(task.threads if on_cpu else None, task.compiled_threads if on_cpu else None)
    on_frame = _FrameReporter(counter, task.frame_hook, task.source.name)
    try:
        seg = _segmenter(task.model)
        report = segment_video(seg, task.source, opts, on_frame=on_frame)
    except VpsError as e:
        return {"error": e.one_line(), "worker": worker}
    finally:
        on_frame.flush()
    return {"report": report, "device": str(seg.placement.device), "worker": worker}


def _worker_name() -> str:
    import ray

    from vpscli.batch.record import this_worker

    return f"{this_worker()} node {ray.get_runtime_context().get_node_id()[:12]}"


class _FrameReporter:
    """``on_frame`` of a task: counts frames for the progress view, sent at most once a second."""

    def __init__(self, counter, frame_hook: Callable | None, name: str):
        self.counter, self.unsent, self.last = counter, 0, time.monotonic()
        self.frame_hook, self.name = frame_hook, name

    def __call__(self, result) -> None:
        if self.frame_hook is not None:
            self.frame_hook(self.name, result)
        self.unsent += 1
        if time.monotonic() - self.last >= PROGRESS_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self.unsent and self.counter is not None:
            self.counter.add.remote(self.unsent)
        self.unsent, self.last = 0, time.monotonic()


class _FrameCounter:
    """Frames segmented so far, across all tasks (a Ray actor; the driver reads it for frames/s)."""

    def __init__(self):
        self.frames = 0

    def add(self, n: int) -> None:
        self.frames += n

    def total(self) -> int:
        return self.frames


def failure_message(source, error, attempts: int) -> str:
    """The one-line message of a video whose task failed for a reason other than its input."""
    ray = import_ray()
    if isinstance(error, ray.exceptions.TaskCancelledError):
        return f"{source.path}: cancelled"
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None) or error
        what = f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"
    else:  # the worker or its node died
        what = f"the Ray worker segmenting it was lost ({type(error).__name__})"
    return (
        f"{source.path}: {what} — {attempts} attempt(s) — fix: run the same command with --resume to continue "
        "it (its finished frames are kept)"
    )


def segment_tasks(
    tasks: list[SegmentTask],
    *,
    gpus_per_video: float,
    cpus_per_video: float,
    max_retries: int,
    on_result: Callable,
    on_tick: Callable[[int], None],
) -> None:
    """Run every task on Ray; ``on_result(i, result | None, error | None, attempts, frames)`` as each ends
    (``result`` is the task's dict; ``error`` a Ray error after the last retry), ``on_tick(frames)`` about
    twice a second. Ctrl-C cancels the tasks still running and re-raises."""
    ray = import_ray()
    if max_retries < 0:
        raise UsageError(f"--max-retries must be 0 or more, got {max_retries}")
    remote = ray.remote(run_segment_task).options(
        num_cpus=cpus_per_video, num_gpus=gpus_per_video, max_retries=0
    )
    counter = ray.remote(num_cpus=0)(_FrameCounter).remote()  # no CPU of its own: it only adds numbers
    pending: dict = {}  # object ref → (task index, attempt)

    def submit(i: int, attempt: int) -> None:
        pending[remote.remote(tasks[i], attempt, counter)] = (i, attempt)

    version_check = ray.remote(num_cpus=0)(_worker_vps_version).remote()
    for i in range(len(tasks)):
        submit(i, 0)
    frames = 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.5)
            if version_check is not None and ray.wait([version_check], timeout=0)[0]:
                _check_worker_version(ray, version_check)
                version_check = None
            frames = _frames_so_far(ray, counter, frames)
            for ref in ready:
                i, attempt = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as e:
                    cancelled = isinstance(e, ray.exceptions.TaskCancelledError)
                    if not cancelled and attempt < max_retries:
                        submit(i, attempt + 1)  # continues from the frames the lost attempt wrote
                    else:
                        on_result(i, None, e, attempt + 1, frames)
                    continue
                on_result(i, result, None, attempt + 1, frames)
            on_tick(frames)
    except (KeyboardInterrupt, VpsError):
        cancel_tasks(ray, list(pending))
        raise


def _worker_vps_version() -> str:
    import vpscli

    return vpscli.__version__


def _check_worker_version(ray, ref) -> None:
    """The workers run this vps (a node without it, or with another version, would fail or differ on
    every video): a one-line error before the batch goes on, else nothing."""
    import vpscli

    fix = (
        "install the same vps, with its ray extra, on every node of the cluster (pip install 'vps[ray]'), "
        "then run the same command with --resume"
    )
    try:
        theirs = ray.get(ref)
    except ray.exceptions.RayError as e:
        cause = getattr(e, "cause", None) or e
        raise InputError(
            f"the Ray workers cannot run vps ({type(cause).__name__}: "
            f"{str(cause).strip().splitlines()[-1] if str(cause).strip() else ''})",
            fix=fix,
        ) from None
    if theirs != vpscli.__version__:
        raise InputError(f"the Ray workers run vps {theirs}, this command vps {vpscli.__version__}", fix=fix)


def _frames_so_far(ray, counter, last: int) -> int:
    """Frames the tasks reported (for frames/s); the last count when the counter cannot be read."""
    try:
        return ray.get(counter.total.remote(), timeout=5)
    except ray.exceptions.RayError:
        return last
