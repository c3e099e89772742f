"""The training run, :func:`train`: steps on the epochs' batches, validation every ``val_every``
steps, snapshots every ``save_every`` steps, until the run is done or its time or step limit is
reached. How a run starts is :mod:`vpscli.train.start`; what it writes, :mod:`vpscli.train.outputs`.

Run folder (``config.out``)::

    checkpoint.pt      resumable snapshot (every ``save_every`` steps, after validation, at the end)
    last.safetensors   the latest weights (vps format; metadata: steps, data, metrics)
    best.safetensors   the weights with the best ``best_metric`` on the validation clips
    log.csv            see :data:`vpscli.train.log.LOG_COLUMNS`
    curves.png         loss and validation curves
    config.json        the options of the run
    synth-data/        the synthetic clips mixed in (``synth_clips > 0``)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from vpscli.train.config import TrainConfig
from vpscli.train.outputs import save_run, validate_run
from vpscli.train.progress import Reporter, SilentReporter, StepMeter
from vpscli.train.schedule import poly_warmup_lr, set_lr
from vpscli.train.snapshot import SNAPSHOT_NAME
from vpscli.train.start import TrainingRun, start_run
from vpscli.train.step import train_step

__all__ = ["TrainResult", "train"]


def train(cfg: TrainConfig, reporter: Reporter | None = None) -> TrainResult:
    """Run (or resume) a training run; see the module doc for what it writes.

    Example: ``train(TrainConfig(model="pns-plus", data=["Kvasir-SEG"], out="runs/a", iters=2000))``.

    Raises:
        UsageError: bad options; InputError: unusable data or snapshot; OutputError: the run
        folder already holds a run (without ``resume``) or cannot be written.
    """
    reporter = reporter or SilentReporter()
    run = start_run(cfg, reporter)
    reporter.start(run.total, run.step)
    started, start_step = time.monotonic(), run.step
    run.saved_step = run.step if cfg.resume and run.step else None
    try:
        _loop(run, reporter, started, start_step)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: say what a --resume continues from
        e.vps_note = _kept_text(run)
        raise
    save_run(run)
    seconds = time.monotonic() - started
    return TrainResult(
        step=run.step,
        total_steps=run.total,
        finished=run.step >= run.total,
        best=run.best,
        last_val=run.last_val,
        out=run.out,
        seconds=seconds,
        samples_per_s=(run.step - start_step) * cfg.batch / max(seconds, 1e-9),
    )


def _loop(run: TrainingRun, reporter: Reporter, started: float, start_step: int) -> None:
    """Steps, validation and snapshots until the run is done or its time or step limit is reached."""
    cfg, meter = run.cfg, StepMeter()
    stop = False
    while run.step < run.total and not stop:
        run.dataset.set_epoch(run.step // run.per_epoch)
        for j in range(run.step % run.per_epoch, run.per_epoch):
            _step(run, j, meter, reporter, started)
            validated = bool(run.val_sources) and (run.step % run.val_every == 0 or run.step == run.total)
            if validated:
                validate_run(run, reporter, started)
            if run.step % cfg.save_every == 0 or validated:
                save_run(run)
            if run.step >= run.total:
                break
            if (cfg.stop_after and run.step - start_step >= cfg.stop_after) or (
                cfg.time_limit_s and time.monotonic() - started >= cfg.time_limit_s
            ):
                stop = True
                break


def _step(run: TrainingRun, j: int, meter: StepMeter, reporter: Reporter, started: float) -> None:
    """Optimiser step on the epoch's ``j``-th batch; a log row every ``log_every`` steps."""
    cfg = run.cfg
    batch = run.dataset.batch(range(j * cfg.batch, (j + 1) * cfg.batch))
    lr = poly_warmup_lr(run.step, run.total, cfg.lr, run.warmup)
    set_lr(run.optimizer, lr)
    meter.add(
        train_step(run.model, run.optimizer, batch, run.window, cfg.clip_grad or None, run.amp, run.forward)
    )
    run.step += 1
    if run.step % cfg.log_every == 0 or run.step == run.total:
        means, steps_per_s = meter.take()
        run.log.add(
            kind="train",
            step=run.step,
            epoch=run.step / run.per_epoch,
            lr=lr,
            **means,
            samples_per_s=steps_per_s * cfg.batch,
            elapsed_s=time.monotonic() - started,
        )
        reporter.update(run.step, {**means, "lr": lr})
    else:
        reporter.update(run.step, None)


@dataclass
class TrainResult:
    """What a run ended with."""

    step: int
    total_steps: int
    finished: bool
    best: dict
    last_val: dict
    out: Path
    seconds: float
    samples_per_s: float


def _kept_text(run: TrainingRun) -> str:
    """What an interrupted run leaves, in one line."""
    best = (
        f"; best.safetensors: {run.best['metric']} {run.best['value']:.4f} at step {run.best['step']}"
        if run.best
        else ""
    )
    if run.saved_step is None:
        return f"stopped at step {run.step} of {run.total} before the first snapshot: nothing to resume from{best}"
    return (
        f"stopped at step {run.step} of {run.total}: {run.out / SNAPSHOT_NAME} holds step {run.saved_step} "
        f"(continue with --resume){best}"
    )
