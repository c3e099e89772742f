"""``vps segment --ray`` and ``vps evaluate --ray``: one Ray task per video (per sequence for evaluate).

Ray is an optional extra (``pip install 'vps[ray]'``), imported only here and only when ``--ray`` is
used. What a task does is exactly what a local run does for that video (:func:`segment_video`, the same
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

import logging
import os
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from vpscli.errors import InputError, UsageError, VpsError

if TYPE_CHECKING:
    from vpscli.engine.options import ModelConfig, SegmentOptions

RAY_FIX = "pip install 'vps[ray]'"
#: how often a task reports its frame count to the progress view (seconds)
PROGRESS_EVERY_S = 1.0


def import_ray():
    """The ``ray`` module, or a one-line error naming the extra to install."""
    _token_auth_when_token_available()  # before Ray reads its configuration, at import
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray, which is not installed", fix=RAY_FIX) from None
    return ray


def check_cluster_resources(resources: dict, gpus_per_video: float, cpus_per_video: float) -> None:
    """Refuse a request no node of the cluster could ever grant (Ray would queue the tasks forever):
    ``resources`` is ``ray.cluster_resources()``, the cluster's totals."""
    gpus, cpus = float(resources.get("GPU", 0.0)), float(resources.get("CPU", 0.0))
    if gpus_per_video > gpus:
        raise UsageError(
            f"--gpus-per-video {gpus_per_video:g} asks for more GPUs than the Ray cluster has "
            f"({gpus:g}): its tasks would wait forever",
            fix="leave out --gpus-per-video to run on CPUs, or join a cluster with GPUs",
        )
    if cpus_per_video > cpus:
        raise UsageError(
            f"--cpus-per-video {cpus_per_video:g} asks for more CPUs than the Ray cluster has ({cpus:g})",
            fix=f"pass --cpus-per-video {max(cpus, 1):g} or less",
        )


def connect(address: str) -> bool:
    """Join the Ray cluster ``address`` names; True when this call started Ray (and must shut it down).

    ``auto``: the cluster ``RAY_ADDRESS`` or a ``ray start`` on this machine names, else a new Ray
    instance on this machine; ``local``: a new instance on this machine; else a cluster address
    (``HOST:6379``, ``ray://HOST:10001``). A process that already runs Ray (a notebook, the tests) keeps it.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address == "local":
        ray.init(include_dashboard=False, **quiet)
        return True
    try:
        ray.init(address=address, **quiet)
    except ConnectionError as e:
        if address != "auto":
            raise InputError(
                f"cannot reach the Ray cluster at {address} ({e})",
                fix="start it with `ray start --head` and pass the address it prints (a cluster with "
                "token authentication also needs its token here: ~/.ray/auth_token or "
                "RAY_AUTH_TOKEN), or use --ray local for a Ray instance on this machine",
            ) from None
        ray.init(include_dashboard=False, **quiet)  # no cluster running: one on this machine
    return True


def _token_auth_when_token_available() -> None:
    """Ray 2.5x clusters started by ``ray start`` use token authentication by default, but a driver given an
    explicit address sends its token only in token mode, which Ray turns on by itself only for ``auto`` and
    local instances (measured with Ray 2.60: ``--ray HOST:PORT`` was refused with InvalidAuthToken while
    ``--ray auto`` joined the same instance). Where a token is available and the user chose no mode, use it;
    Ray reads the mode when it is imported, so this runs before."""
    if os.environ.get("RAY_AUTH_MODE"):
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


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


def task_cpu_threads(threads: int | None, cpus_per_video: float) -> int:
    """Model threads of a task on the CPU: ``--threads`` if given, else its CPU share minus one kept for
    decoding and writing (the local rule, :func:`~vpscli.engine.device.model_cpu_threads`, applied to the
    share), at least 1."""
    if threads is not None:
        return threads
    return max(1, int(cpus_per_video) - 1)


@dataclass(frozen=True)
class SegmentTask:
    """What one video's task needs (pickled to the worker)."""

    source: object
    #: the model, its ``device`` already the task's (:func:`task_device`) and its weights an absolute path
    model: ModelConfig
    options: SegmentOptions
    threads: int
    batch_started: datetime
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
    try:
        started = datetime.fromisoformat(record.started or "") if record else None
    except (TypeError, ValueError):
        return False
    return started is not None and record.is_finished and started >= batch_started.replace(microsecond=0)


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
    set_cpu_threads(task.threads if task.model.device == "cpu" else None)
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
        _cancel(ray, list(pending))
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


def _cancel(ray, refs: list) -> None:
    """Stop running tasks as a local Ctrl-C stops a video (KeyboardInterrupt in the task: ``run.json`` says
    ``interrupted``), and wait a little for them to record it. Finished tasks are left alone: cancelling
    one races with Ray's own completion of it (a Ray core check failure, ray-project/ray#54527)."""
    try:
        _, refs = ray.wait(refs, num_returns=len(refs), timeout=0)
    except Exception:
        pass
    for ref in refs:
        try:
            ray.cancel(ref)
        except Exception:  # already finished or lost: nothing to stop
            pass
    try:
        ray.wait(refs, num_returns=len(refs), timeout=15)
    except Exception:
        pass


def score_sequences(keys: list, tasks: list):
    """``vps evaluate --ray``'s scorer (:func:`~vpscli.metrics.runner.evaluate_plan`): one Ray task per
    sequence (consecutive frames of one ``(split, case)``), each frame's scores yielded in the order given.
    Tasks still running when the caller stops (an error, Ctrl-C) are cancelled."""
    from vpscli.metrics.runner import score_frames

    ray = import_ray()
    remote = ray.remote(score_frames).options(num_cpus=1, max_retries=2)
    tasks = [_absolute_task(t) for t in tasks]  # workers do not run in this folder
    refs, start = [], 0
    for end in range(1, len(tasks) + 1):
        if end == len(tasks) or keys[end] != keys[start]:
            refs.append(remote.remote(tasks[start:end]))
            start = end
    done = 0
    try:
        for ref in refs:
            yield from ray.get(ref)
            done += 1
    finally:
        if done < len(refs):
            _cancel(ray, refs[done:])


def _absolute_task(task: tuple) -> tuple:
    gt_path, pred_paths, families = task
    return Path(gt_path).absolute(), [None if p is None else Path(p).absolute() for p in pred_paths], families
