"""``vps segment``: segment whole videos clip by clip — masks, probabilities, overlay, summary."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from vpscli.cli.console import notice, reports_errors, sigterm_as_interrupt
from vpscli.engine.options import ModelConfig, SegmentOptions
from vpscli.errors import UsageError, VpsError
from vpscli.zoo import model_names

#: each ``vps segment`` option that configures the run, and the field of :class:`vpscli.engine.ModelConfig`
#: (which model runs, and how) it sets
MODEL_FLAGS = {
    "model": "model",
    "weights": "weights",
    "device": "device",
    "precision": "precision",
    "threshold": "threshold",
    "batch": "batch",
    "compile_model": "compile",
    "compile_mode": "compile_mode",
    "tta": "tta",
    "backend": "backend",
    "cache_dir": "cache_dir",
    "calibration": "calibration",
}
#: … and of :class:`vpscli.engine.SegmentOptions` (what is written, and how earlier outputs are treated)
OPTION_FLAGS = {
    "out": "out_root",
    "save_prob": "save_prob",
    "overlay": "overlay",
    "resume": "resume",
    "overwrite": "overwrite",
    "min_persistence": "min_persistence",
    "expect_negative": "expect_negative",
    "presence": "presence",
}


# long: one statement per option to parse and report
@reports_errors
def segment(
    inputs: Optional[List[str]] = typer.Argument(
        None, help="Video files, frame folders, SUN-SEG roots (Frame/<case>/) or globs."
    ),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        "-m",
        help=f"{', '.join(model_names())} "
        "(default: the one --weights records, else the best with bundled weights).",
    ),
    weights: Optional[Path] = typer.Option(
        None, "--weights", "-w", help="Checkpoint file (default: bundled weights)."
    ),
    out: Path = typer.Option(SegmentOptions.out_root, "--out", "-o", help="Output root: OUT/<input name>/."),
    threshold: float = typer.Option(
        ModelConfig.threshold, "--threshold", "-t", help="Probability at or above which a pixel is polyp."
    ),
    device: str = typer.Option(ModelConfig.device, "--device", help="auto, cpu, cuda, cuda:N."),
    precision: str = typer.Option(
        ModelConfig.precision,
        "--precision",
        help="auto, fp32, bf16, fp16 (torch, autocast); fp32, bf16, int8 (openvino).",
    ),
    backend: Optional[str] = typer.Option(
        ModelConfig.backend,
        "--backend",
        help="auto, torch, openvino, onnxruntime (default: $VPS_BACKEND, else auto: OpenVINO on a CPU "
        "where it is installed, else torch).",
    ),
    cache_dir: Optional[Path] = typer.Option(
        ModelConfig.cache_dir,
        "--cache-dir",
        help="Where converted models are kept (default: $VPS_CACHE, else ~/.cache/vps).",
    ),
    calibration: Optional[Path] = typer.Option(
        ModelConfig.calibration,
        "--calibration",
        help="--precision int8: videos or frames like the ones segmented (a file, a frame folder or "
        "a SUN-SEG root); their first 300 frames calibrate the quantisation.",
    ),
    batch: int = typer.Option(
        ModelConfig.batch, "--batch", help="Clips per forward pass (models without clip-to-clip state)."
    ),
    save_prob: bool = typer.Option(
        SegmentOptions.save_prob, "--save-prob", help="Also write probability maps floor(255·p) to probs/."
    ),
    overlay: bool = typer.Option(SegmentOptions.overlay, "--overlay/--no-overlay", help="Write overlay.mp4."),
    resume: bool = typer.Option(
        SegmentOptions.resume, "--resume", help="Skip finished videos; continue unfinished ones."
    ),
    overwrite: bool = typer.Option(
        SegmentOptions.overwrite, "--overwrite", help="Redo videos that already have outputs."
    ),
    compile_model: bool = typer.Option(
        ModelConfig.compile, "--compile", help="torch.compile the model (slow start, faster run)."
    ),
    compile_mode: Optional[str] = typer.Option(
        ModelConfig.compile_mode,
        "--compile-mode",
        help="torch.compile mode: default, "
        "reduce-overhead (CUDA graphs: batch-1 stateful models), max-autotune; "
        "implies --compile.",
    ),
    tta: bool = typer.Option(
        ModelConfig.tta,
        "--tta",
        help="Test-time augmentation: average each clip's probabilities with "
        "those of its mirror image (two forward passes per clip; gain and cost: the model "
        "card).",
    ),
    threads: Optional[int] = typer.Option(
        None,
        "--threads",
        help="CPU threads of the model on the CPU (default: "
        "the usable CPUs minus one, kept for decoding and writing, on torch; "
        "all of them on OpenVINO; OMP_NUM_THREADS if set).",
    ),
    fps: Optional[float] = typer.Option(
        None, "--fps", help="Frame rate of frame-folder inputs (default 25)."
    ),
    jobs: int = typer.Option(
        1,
        "--jobs",
        "-j",
        help="Videos segmented at once, sharing the model (each with "
        "its own state and outputs; on CUDA each on its own stream).",
    ),
    min_persistence: int = typer.Option(
        SegmentOptions.min_persistence,
        "--min-persistence",
        metavar="N",
        help="Keep a detection only when it lasts N consecutive frames or more; shorter ones are written as "
        "empty masks (probs/ and max_prob stay the model's raw output). 1 keeps every detection. Default 6, "
        "chosen on the validation clips with the bundled weights: it lost 4 of 116 detected GT-positive "
        "frames (3.4 %) of the CVC-ClinicDB valid clips and no polyp, and raised the clean PolypGen "
        "polyp-free frames from 23.6 % to 37.2 % (docs/guides/polyp-free-video.md).",
    ),
    presence: Optional[float] = typer.Option(
        SegmentOptions.presence,
        "--presence",
        metavar="LEVEL",
        help="Frame decision: a frame counts as showing a polyp (flagged, then filtered by --min-persistence) "
        "only when its peak probability reaches LEVEL (between the threshold and 1); frames below it get "
        "an empty mask. Default: the level calibrated for the weights on their model card (vps weights list, "
        "'frame decision'), else a frame counts when its mask has a pixel (as --presence at the threshold does). "
        "Measured trade-off per model: the model card.",
    ),
    report: bool = typer.Option(
        False,
        "--report",
        help="Also write OUT/<video>/report.html, a review page to "
        "open in a browser (as vps report does), and OUT/index.html for several videos.",
    ),
    expect_negative: bool = typer.Option(
        SegmentOptions.expect_negative,
        "--expect-negative",
        help="The videos are polyp-free: report every flagged frame as a false "
        "alarm (episodes per minute, longest episode) in the summary and run.json, with a warning when any is "
        "left after the filter.",
    ),
    manifest: Optional[Path] = typer.Option(
        None,
        "--manifest",
        metavar="FILE",
        help="More inputs: a text file of paths (one per line, # comments) or a CSV with a path column and "
        "optional per-video columns model, threshold, min_persistence. Relative paths are taken from the "
        "manifest's folder.",
    ),
    shard: Optional[str] = typer.Option(
        None,
        "--shard",
        metavar="I/N",
        help="Only share I of N (0-based) of all inputs: sorted by output name, every N-th from I — for array "
        "jobs writing into one --out (names, --resume and --overwrite are those of one run).",
    ),
    ray: Optional[str] = typer.Option(
        None,
        "--ray",
        metavar="auto|local|ADDRESS",
        help="Run each video as a Ray task (pip install 'vps\\[ray]'): auto joins the running cluster "
        "(RAY_ADDRESS, ray start) or starts one here, local starts one here, else a cluster address.",
    ),
    gpus_per_video: float = typer.Option(
        0.0,
        "--gpus-per-video",
        help="With --ray: GPUs per video task (0.25: four videos share a GPU; 0: CPU).",
    ),
    cpus_per_video: float = typer.Option(
        1.0,
        "--cpus-per-video",
        help="With --ray: CPUs per video task; the model gets this minus one thread "
        "on torch, all of them on OpenVINO (at least 1) unless --threads says otherwise.",
    ),
    max_retries: int = typer.Option(
        2,
        "--max-retries",
        help="With --ray: retries of a video whose worker died or raised an unexpected "
        "error (each retry continues from the frames written); input errors are not retried.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary table."),
) -> None:
    """Segment every frame of each input and write OUT/<name>/{masks/, probs/, overlay.mp4, frames.csv, run.json}.

    Masks are 8-bit 0/255 PNGs at the source resolution, named 000000.png (0-based frame index) for videos
    and by frame name for frame folders. Exit codes: 3 when some inputs failed and the others finished;
    4 when every input finished but some were partial (a truncated video: only its decodable frames);
    130 on Ctrl-C and 143 on SIGTERM (finished frames kept; --resume continues). A batch (several
    inputs, --manifest, --shard or --ray) also writes OUT/batch.json (OUT/batch-shard-I-of-N.json).
    """
    flags = dict(locals())  # the options as given, mapped to the run's configuration by the tables below
    from vpscli.backends import choose_backend
    from vpscli.batch.jobs import gather_jobs
    from vpscli.batch.manifest import parse_shard, read_manifest
    from vpscli.batch.record import batch_json_path
    from vpscli.batch.runner import BatchReport, LocalBackend, RayBackend, run_batch
    from vpscli.cli.commands._segment_view import (
        ConsoleEvents,
        LocalProgress,
        RayProgress,
        finish_with_summary,
        report_interrupt,
        write_batch_summary,
        write_review_pages,
    )
    from vpscli.engine.device import check_compile_mode, model_cpu_threads
    from vpscli.engine.options import check_options
    from vpscli.io.atomic import check_output_root

    # every option is checked before any input is read, model loaded or file written
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    check_options(
        threshold=threshold,
        batch=batch,
        fps=fps,
        jobs=jobs,
        min_persistence=min_persistence,
        presence=presence,
    )
    check_compile_mode(compile_mode)
    model_cpu_threads(threads)  # checks --threads
    shard_index = parse_shard(shard)
    if ray is None:
        choose_backend(
            backend, device, precision, compiling=bool(compile_model or compile_mode), calibration=calibration
        )
    else:
        _check_ray_options(device, precision, backend, gpus_per_video, cpus_per_video, max_retries, jobs)
    entries = read_manifest(manifest) if manifest is not None else []
    if not inputs and not entries:
        raise UsageError("no inputs", fix="give videos, frame folders or globs, or --manifest FILE")
    check_output_root(out)
    flags["model"] = _model_to_run(model, weights, entries, manifest)
    model_config = ModelConfig(**{field: flags[flag] for flag, field in MODEL_FLAGS.items()})
    options = SegmentOptions(**{field: flags[flag] for flag, field in OPTION_FLAGS.items()})
    job_list, failures = gather_jobs(
        list(inputs or []),
        entries,
        model_config,
        options,
        fps=fps,
        shard=shard_index,
        absolute=ray is not None,
        events=ConsoleEvents(None, quiet),  # missing inputs and warnings, before any progress view
    )
    if shard_index is not None:
        notice(f"shard {shard}: {len(job_list)} input(s) of this shard", quiet)
    if not job_list:
        if failures:
            raise typer.Exit(next(iter(failures.values())).exit_code)
        return  # an empty shard: nothing to do
    batch_report = BatchReport(job_list, out, failures)
    is_batch = (
        len(job_list) + len(failures) > 1
        or manifest is not None
        or shard_index is not None
        or ray is not None
    )
    if ray is None:
        backend, view = LocalBackend(jobs_at_once=jobs, threads=threads), LocalProgress(quiet)
    else:
        backend = RayBackend(
            ray,
            gpus_per_video=gpus_per_video,
            cpus_per_video=cpus_per_video,
            max_retries=max_retries,
            threads=threads,
        )
        view = RayProgress(len(job_list), quiet)
    summary = (batch_json_path(out, shard_index), backend.name, {"ray_address": ray, "shard": shard})
    try:
        with sigterm_as_interrupt(), view.view:
            run_batch(job_list, backend, batch_report, ConsoleEvents(view, quiet))
    except (KeyboardInterrupt, VpsError) as e:  # what finished is kept, and the summary says what did not
        if is_batch and not isinstance(e, UsageError):  # a refused option ran nothing: no summary to write
            write_batch_summary(batch_report, *summary)
        if isinstance(e, VpsError):
            raise
        report_interrupt(e, view.running_names(), out, overwrite)
    if is_batch:
        write_batch_summary(batch_report, *summary)
    if report:
        write_review_pages(batch_report.ordered_reports(), out, is_batch, quiet)
    finish_with_summary(
        batch_report.ordered_reports(), {**failures, **batch_report.failures}, quiet, expect_negative
    )


def _model_to_run(model: str | None, weights, entries: list, manifest) -> str:
    """The command's model (named, recorded by --weights, else the default), every row's weights checked."""
    if model is None:
        from vpscli.weights.store import choose_model

        model = choose_model(model, weights)
    if weights is not None and any("model" in e.options for e in entries):
        raise UsageError(
            "the manifest's model column needs the bundled weights (--weights fixes one model)",
            path=manifest,
            fix="drop --weights, or the model column",
        )
    if weights is None:
        _check_bundled_weights(model, entries, manifest)
    return model


def _check_bundled_weights(model: str, entries: list, manifest) -> None:
    """Every model the command and each manifest row name has bundled weights — checked for all rows before
    any video runs (exit 2, nothing written), not found at the row that needs them."""
    from vpscli.weights import bundled_entries
    from vpscli.weights.manifest import find_entry
    from vpscli.zoo import architecture_rows

    known = list(dict.fromkeys(r["name"] for r in architecture_rows()))
    if model not in known:
        raise UsageError(f"unknown model '{model}'", fix=f"choose one of: {', '.join(known)}")
    if find_entry(model) is None:  # the command's own model: the loader's one-line error, exit 1
        from vpscli.weights.store import load_model

        load_model(model)
    wanted: dict[str, str] = {}
    for e in entries:
        if "model" in e.options:
            wanted.setdefault(e.options["model"], e.where or str(manifest))
    missing = {m: where for m, where in wanted.items() if find_entry(m) is None}
    if missing:
        have = sorted({e.model for e in bundled_entries()})
        m, where = next(iter(missing.items()))
        raise UsageError(
            f"no trained weights for model '{m}' ({where}) are bundled with this vps"
            + (f"; nor for {', '.join(sorted(set(missing) - {m}))}" if len(missing) > 1 else ""),
            path=manifest,
            fix=f"use a model with bundled weights ({', '.join(have) or 'none'}), or pass --weights FILE",
        )


def _check_ray_options(
    device: str,
    precision: str,
    backend: str | None,
    gpus_per_video: float,
    cpus_per_video: float,
    max_retries: int,
    jobs: int,
) -> None:
    """--ray's options, checked on this machine (which may have no GPU: the tasks' devices are resolved in
    the tasks, by the same resolver); Ray itself must be importable."""
    from vpscli.backends import choose_backend
    from vpscli.batch.ray_backend import task_device
    from vpscli.batch.ray_cluster import import_ray
    from vpscli.engine.device import PRECISIONS

    if task_device(device, gpus_per_video) == "cpu":
        choose_backend(backend, "cpu", precision)
    elif (precision or "auto").lower() not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not cpus_per_video > 0:
        raise UsageError(f"--cpus-per-video must be above 0, got {cpus_per_video}")
    if max_retries < 0:
        raise UsageError(f"--max-retries must be 0 or more, got {max_retries}")
    if jobs != 1:
        raise UsageError(
            "--jobs applies to a local run; with --ray each video is its own task",
            fix="drop --jobs (use --gpus-per-video 0.5 to run two videos per GPU)",
        )
    import_ray()


def register(app: typer.Typer) -> None:
    app.command("segment")(segment)
