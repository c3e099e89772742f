"""What a run writes as it goes: the resumable snapshot, ``last.safetensors`` and ``curves.png``
(:func:`save_run`), and after each validation its log row and, when the ``best_metric`` improved,
``best.safetensors`` (:func:`validate_run`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from vpscli.models import save_checkpoint
from vpscli.train.log import plot_curves
from vpscli.train.progress import Reporter
from vpscli.train.snapshot import SNAPSHOT_NAME, save_snapshot
from vpscli.train.start import TrainingRun
from vpscli.train.validate import HIGHER_IS_BETTER, validate

__all__ = ["save_run", "validate_run", "weights_metadata"]


def save_run(run: TrainingRun) -> None:
    """The resumable snapshot, the latest weights and the curves."""
    save_snapshot(
        run.out / SNAPSHOT_NAME,
        model=run.model,
        optimizer=run.optimizer,
        step=run.step,
        config=run.config,
        best=run.best,
    )
    save_checkpoint(run.model, run.out / "last.safetensors", weights_metadata(run, run.last_val))
    plot_curves(run.log.rows, run.out / "curves.png")
    run.saved_step = run.step


def validate_run(run: TrainingRun, reporter: Reporter, started: float) -> None:
    """Score the validation folders, log them, keep the best weights (``started``: the
    :func:`time.monotonic` of this invocation's start, for the log's ``elapsed_s``)."""
    cfg = run.cfg
    result = validate(run.model, run.val_sources, run.device, run.amp, cfg.val_max_frames, cfg.val_backend)
    run.last_val = dict(result.metrics)
    run.log.add(
        kind="val",
        step=run.step,
        epoch=run.step / run.per_epoch,
        elapsed_s=time.monotonic() - started,
        **{f"val_{k}": v for k, v in run.last_val.items()},
    )
    value = run.last_val.get(cfg.best_metric)
    if _improves(value, cfg.best_metric, run.best):
        run.best = {"metric": cfg.best_metric, "value": value, "step": run.step, "metrics": run.last_val}
        save_checkpoint(run.model, run.out / "best.safetensors", weights_metadata(run, run.last_val))
    reporter.message(f"step {run.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in run.last_val.items()))


def _improves(value: float | None, metric: str, best: dict) -> bool:
    """Whether ``value`` of ``metric`` beats the best so far (any value beats none; NaN never counts)."""
    if value is None or value != value:
        return False
    if not best:
        return True
    return value > best["value"] if HIGHER_IS_BETTER[metric] else value < best["value"]


def weights_metadata(run: TrainingRun, metrics: dict) -> dict:
    """What ``last``/``best.safetensors`` record (``vps weights import`` reads it into the model card)."""
    cfg = run.cfg
    origin = f"the backbone of {Path(cfg.init_backbone).name}" if cfg.init_backbone else "ImageNet"
    start = (
        f"from {origin} (backbone lr × {run.lr_mult}, frozen BN statistics)"
        if run.pretrained
        else f"from {Path(cfg.init).name}"
        if cfg.init
        else "from random initialisation"
    )
    return {
        "steps": str(run.step),
        "data": json.dumps([str(s.root) for s in run.sources]),
        "val_data": json.dumps(cfg.val),
        "val_metrics": json.dumps(metrics),
        "pretrained": ("backbone of " + Path(cfg.init_backbone).name if cfg.init_backbone else "imagenet")
        if run.pretrained
        else "none",
        "recipe": f"{cfg.backbone} {start}, AdamW lr {cfg.lr} wd {cfg.weight_decay}, poly 0.9 + {run.warmup} "
        f"warm-up steps, 5·BCE+2·Dice, batch {cfg.batch}, {run.total} steps, seed {cfg.seed}",
    }
