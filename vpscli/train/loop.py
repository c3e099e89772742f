"""The training run: options (:class:`TrainConfig`), then :func:`train` — data, model,
AdamW + poly/warm-up schedule, steps, snapshots, validation, best weights, log.

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

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from vpscli.engine.device import Placement, check_compile_mode, place_model, resolve_device
from vpscli.errors import OutputError, UsageError
from vpscli.models import build_model, get_spec, load_checkpoint, save_checkpoint
from vpscli.train.augment import AugmentConfig
from vpscli.train.dataset import TrainSamples
from vpscli.train.finetune import BACKBONE_LR_MULT, freeze_batchnorm_statistics, make_optimizer
from vpscli.train.log import TrainLog, plot_curves
from vpscli.train.schedule import poly_warmup_lr, set_lr
from vpscli.train.snapshot import SNAPSHOT_NAME, load_snapshot, save_snapshot
from vpscli.train.sources import DataSource, discover_source, synth_source
from vpscli.train.step import STEP_VALUES, train_step
from vpscli.train.store import FrameStore, build_store, store_size
from vpscli.train.validate import HIGHER_IS_BETTER, validate
from vpscli.train.windows import window_for

__all__ = ["TrainConfig", "TrainResult", "Reporter", "train"]

DEFAULT_EPOCHS = 10


@dataclass
class TrainConfig:
    """Every option of a run (the CLI maps its flags onto these).

    Example: ``TrainConfig(model="pns-plus", backbone="efficientnet-lite2", data=["kvasir-seg"], out="runs/a")``.

    Attributes:
        model: registry name.
        backbone: the model's backbone (``res2net50`` or ``efficientnet-lite2``).
        pretrained: initialise the backbone from ImageNet; ``None``: when that backbone has
            installable ImageNet weights (efficientnet-lite2) and no ``init`` is given.
        backbone_lr_mult: learning-rate multiplier of a pretrained backbone (see
            :mod:`vpscli.train.finetune`, which also freezes its BatchNorm statistics).
        data: training folders (video, image or negative; see :mod:`vpscli.train.sources`).
        out: run folder.
        val: validation folders (SUN-SEG with GT; negative folders give ``neg_clean``).
        epochs, iters: length of the run (``iters`` wins when both are set; default 10 epochs).
        batch: samples per step (different clips advancing in lockstep).
        lr, weight_decay: AdamW (paper: 1e-4, 0.1).
        warmup: warm-up steps (default: 5 % of the run, at most 1000).
        clip_grad: largest global gradient norm (0: no clipping).
        input_size: network ``(H, W)``, multiples of 32 (default: the model's native size).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        amp: bf16 autocast on CUDA (never on the CPU).
        seed: one seed for the initial weights, the sample order and the augmentation.
        cache: keep the decoded data in a cache file for later runs (see :mod:`vpscli.train.store`).
        cache_dir: where (default :func:`vpscli.paths.cache_dir` ``/train-store``).
        compile_mode: ``torch.compile`` the model in this mode (one of
            :data:`vpscli.engine.device.COMPILE_MODES`; ``None``: eager). Pays on CUDA for long runs;
            on the CPU it costs minutes of compilation and is not faster (``benchmarks/bench_train.py``).
        save_every: snapshot every N steps.
        val_every: validate every N steps (default: every epoch) and at the end.
        val_max_frames: validate on the first N frames of each case only (quick runs).
        log_every: a ``train`` log row every N steps.
        best_metric: validation key that picks ``best.safetensors``.
        synth_clips, synth_frames: synthetic clips (``vps synth``) mixed into the training data.
        aen_clips: AEN models: clips per sample (default memory_clips + 1).
        augment: augmentation on (off: resize only).
        init: weights to start from (fine-tuning), a vps ``.safetensors``.
        resume: continue the run in ``out`` from its snapshot.
        stop_after: stop (with a snapshot) after this many steps in this invocation.
        time_limit_s: stop (with a snapshot) after this many seconds in this invocation.
    """

    model: str
    data: list[str]
    out: str
    backbone: str = "res2net50"
    pretrained: bool | None = None
    backbone_lr_mult: float = BACKBONE_LR_MULT
    val: list[str] = field(default_factory=list)
    epochs: int | None = None
    iters: int | None = None
    batch: int = 2
    lr: float = 1e-4
    weight_decay: float = 0.1
    warmup: int | None = None
    clip_grad: float = 1.0
    input_size: tuple[int, int] | None = None
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    cache: bool = True
    cache_dir: str | None = None
    compile_mode: str | None = None
    save_every: int = 500
    val_every: int | None = None
    val_max_frames: int | None = None
    log_every: int = 10
    best_metric: str = "maxDice"
    synth_clips: int = 0
    synth_frames: int = 24
    aen_clips: int | None = None
    augment: bool = True
    init: str | None = None
    resume: bool = False
    stop_after: int | None = None
    time_limit_s: float | None = None


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


class Reporter(Protocol):
    """Progress callbacks (the CLI draws a rich progress bar; tests pass nothing)."""

    def start(self, total: int, done: int) -> None: ...

    def update(self, step: int, values: dict | None) -> None:
        """After each step; ``values`` (mean loss, BCE, Dice, gradient norm, lr) on logged steps only."""

    def message(self, text: str) -> None: ...


class _Silent:
    def start(self, total, done):
        pass

    def update(self, step, values):
        pass

    def message(self, text):
        pass


#: free space a run folder needs to start: a snapshot (weights + AdamW moments) of the largest model on
#: Res2Net-50 is about 0.4 GB, written beside the previous one before it is replaced
MIN_FREE_BYTES = 1 << 30


def _check_out(out: Path) -> None:
    """The run folder (or the folder it will be made in) takes files and has room for snapshots —
    checked before any data is read or model built, so a read-only or full disk is one line, not an
    error after minutes of loading."""
    import shutil

    from vpscli.io.run_folder import check_output_root

    check_output_root(out)
    folder = out.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise OutputError(
            f"only {free / 2**20:.0f} MiB free where the run folder goes (a run needs about "
            f"{MIN_FREE_BYTES / 2**30:.0f} GiB for its snapshots)",
            path=out,
            fix="free some space, or choose another --out",
        )


def _check(cfg: TrainConfig) -> tuple[int, int]:
    """Option checks that need no data; returns the input size."""
    spec = get_spec(cfg.model, cfg.backbone)  # UsageError for an unknown model or backbone
    if not cfg.data:
        raise UsageError("no training data", fix="pass --data DIR (repeatable)")
    for name, value, low in (
        ("--batch", cfg.batch, 1),
        ("--epochs", cfg.epochs, 1),
        ("--iters", cfg.iters, 1),
        ("--save-every", cfg.save_every, 1),
        ("--log-every", cfg.log_every, 1),
        ("--val-every", cfg.val_every, 1),
        ("--synth", cfg.synth_clips, 0),
        ("--warmup", cfg.warmup, 0),
        ("--val-max-frames", cfg.val_max_frames, 3),
        ("--synth-frames", cfg.synth_frames, 1),
        ("--aen-clips", cfg.aen_clips, 1),
    ):
        if value is not None and value < low:
            raise UsageError(f"{name} must be at least {low}, got {value}")
    if not cfg.lr > 0:
        raise UsageError(f"--lr must be positive, got {cfg.lr}")
    if not 0 < cfg.backbone_lr_mult <= 1:
        raise UsageError(f"--backbone-lr-mult must be in (0, 1], got {cfg.backbone_lr_mult}")
    if cfg.pretrained and cfg.init:
        raise UsageError(
            "--pretrained and --init exclude each other (--init sets every weight, backbone included)",
            fix="drop --pretrained",
        )
    if cfg.pretrained:
        from vpscli.models.pretrained import imagenet_file

        imagenet_file(cfg.backbone)  # before any data is read: is it installable, installed, intact?
    check_compile_mode(cfg.compile_mode)
    if cfg.weight_decay < 0 or cfg.clip_grad < 0:
        raise UsageError("--weight-decay and --clip-grad cannot be negative")
    if cfg.best_metric not in HIGHER_IS_BETTER:
        raise UsageError(
            f"unknown --best-metric {cfg.best_metric!r}", fix="choose one of: " + ", ".join(HIGHER_IS_BETTER)
        )
    _check_out(Path(cfg.out))
    size = tuple(cfg.input_size or spec.input_size)
    if len(size) != 2 or any(s < 64 or s % 32 for s in size):
        given = f"{size[1]}x{size[0]}" if len(size) == 2 else str(size)
        raise UsageError(
            f"--size must be WIDTHxHEIGHT with both multiples of 32 and at least 64, got {given}"
        )
    return int(size[0]), int(size[1])


def _jsonable(cfg: TrainConfig, size: tuple[int, int], pretrained: bool) -> dict:
    d = asdict(cfg)
    d["input_size"] = list(size)
    d["pretrained"] = pretrained
    return d


def _pretrained(cfg: TrainConfig) -> bool:
    """Whether the run starts its backbone from ImageNet (``cfg.pretrained``, or the default)."""
    if cfg.pretrained is not None:
        return cfg.pretrained
    from vpscli.models.backbone import backbone_info

    return backbone_info(cfg.backbone).imagenet and not cfg.init


def _load_store(cfg: TrainConfig, sources: list[DataSource], size: tuple[int, int], reporter) -> FrameStore:
    """The training data decoded at the store size, from the cache when an earlier run made it."""
    from vpscli.paths import cache_dir

    folder = None
    if cfg.cache:
        folder = Path(cfg.cache_dir) if cfg.cache_dir else cache_dir() / "train-store"
    t0 = time.monotonic()
    store, cached = build_store(sources, store_size(size), folder)
    how = (
        f"from the cache in {folder}"
        if cached
        else f"decoded in {time.monotonic() - t0:.0f} s" + (f", cached in {folder}" if folder else "")
    )
    reporter.message(
        f"data: {store.frames.shape[0]} frames at {store.size[1]}x{store.size[0]} "
        f"({store.nbytes / 2**20:.0f} MiB), {how}"
    )
    return store


def _snapshot_to_resume(cfg: TrainConfig, size: tuple[int, int], out: Path) -> dict | None:
    """The snapshot ``--resume`` continues (after checking it is the same run), else ``None``."""
    snapshot_path = out / SNAPSHOT_NAME
    if not cfg.resume:
        if snapshot_path.exists():
            raise OutputError(
                "this run folder already holds a run",
                path=out,
                fix="add --resume to continue it, or choose another --out",
            )
        return None
    snapshot = load_snapshot(snapshot_path)
    old = snapshot["config"]
    old_backbone = old.get("backbone", "res2net50")  # runs from before the choice
    if (
        old.get("model") != cfg.model
        or list(old.get("input_size", [])) != list(size)
        or old_backbone != cfg.backbone
    ):
        raise UsageError(
            f"the run in {out} trains {old.get('model')} on {old_backbone} at "
            f"{old.get('input_size')}, not {cfg.model} on {cfg.backbone} at {list(size)}",
            fix="resume with the same --model, --backbone and --size",
        )
    # Sample order and augmentation follow (seed, batch): changing them would not continue the run.
    changed = [f"--{k}" for k in ("seed", "batch") if old.get(k) != getattr(cfg, k)]
    if changed:
        raise UsageError(
            f"{' and '.join(changed)} differ from the run in {out}",
            fix=f"resume with --seed {old.get('seed')} --batch {old.get('batch')}",
        )
    return snapshot


def _initial_model(cfg: TrainConfig, size: tuple[int, int], snapshot: dict | None, reporter) -> tuple:
    """``(model, pretrained)``: built from ``cfg.seed`` (the same draws on a resume, whose snapshot
    then replaces the weights), from ``--init`` or ImageNet when asked."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, backbone=cfg.backbone, input_size=size)
    # A resumed run keeps the choices it started with (its snapshot holds the weights).
    pretrained = (
        bool(snapshot["config"].get("pretrained", False)) if snapshot is not None else _pretrained(cfg)
    )
    if cfg.init and snapshot is None:
        load_checkpoint(model, cfg.init)
    if pretrained:
        if snapshot is None:
            from vpscli.models.pretrained import load_imagenet

            load_imagenet(model)
            reporter.message(
                f"backbone: {cfg.backbone} from ImageNet (learning rate × {cfg.backbone_lr_mult}, "
                f"BatchNorm statistics frozen)"
            )
        freeze_batchnorm_statistics(model)
    elif snapshot is None and not cfg.init:
        reporter.message(f"backbone: {cfg.backbone} from random initialisation")
    return model, pretrained


@dataclass
class _Run:
    """One training run between steps: made by :func:`_setup`, advanced by :func:`_step`, validated
    by :func:`_validate`, saved by :func:`_save`."""

    cfg: TrainConfig
    out: Path
    device: torch.device
    amp: bool
    model: torch.nn.Module
    forward: object  # the module or its torch.compile wrapper
    optimizer: torch.optim.Optimizer
    dataset: TrainSamples
    window: object
    sources: list
    val_sources: list
    total: int
    warmup: int
    val_every: int
    lr_mult: float
    pretrained: bool
    config: dict
    log: TrainLog
    step: int = 0
    best: dict = field(default_factory=dict)
    last_val: dict = field(default_factory=dict)
    saved_step: int | None = None  #: the step of the snapshot on disk (None: none written in this run yet)

    @property
    def per_epoch(self) -> int:
        return len(self.dataset) // self.cfg.batch


# long: builds every part of a run in the order the snapshot restores them
def _setup(cfg: TrainConfig, reporter) -> _Run:
    """Check the options, read the data, build the model and optimizer, restore a snapshot."""
    size = _check(cfg)
    device, device_note = resolve_device(cfg.device)  # the package's one resolver (engine.device)
    amp = cfg.amp and device.type == "cuda"
    out = Path(cfg.out)
    snapshot = _snapshot_to_resume(cfg, size, out)
    sources: list[DataSource] = [discover_source(d) for d in cfg.data]
    if cfg.synth_clips:
        sources.append(
            synth_source(
                out / "synth-data",
                cfg.synth_clips,
                cfg.synth_frames,
                (max(size[0], 256), max(size[1], 320)),
                seed=cfg.seed,
            )
        )
    val_sources = [discover_source(d) for d in cfg.val]
    for src in sources:
        reporter.message(f"data: {src.describe()}")
    # Decoded before the model is built: a damaged file stops the run before anything slow starts.
    store = _load_store(cfg, sources, size, reporter)
    if device_note:  # once the options and the data are known to be usable
        reporter.message(device_note)
    model, pretrained = _initial_model(cfg, size, snapshot, reporter)
    placement = Placement.for_training(device, torch.bfloat16 if amp else None, device_note)
    model, forward = place_model(model, placement, training=True, mode=cfg.compile_mode)
    window = window_for(model.spec, cfg.aen_clips)
    dataset = TrainSamples(
        store.to(device), window, size, seed=cfg.seed, augment=AugmentConfig(enabled=cfg.augment)
    )
    per_epoch = len(dataset) // cfg.batch
    if per_epoch == 0:
        raise UsageError(
            f"--batch {cfg.batch} is larger than the {len(dataset)} samples of an epoch",
            fix="use a smaller --batch or add data",
        )
    total = cfg.iters or (cfg.epochs or DEFAULT_EPOCHS) * per_epoch
    lr_mult = cfg.backbone_lr_mult if pretrained else 1.0
    run = _Run(
        cfg,
        out,
        device,
        amp,
        model,
        forward,
        make_optimizer(model, cfg.lr, cfg.weight_decay, lr_mult, fused=device.type == "cuda"),
        dataset,
        window,
        sources,
        val_sources,
        total,
        warmup=cfg.warmup if cfg.warmup is not None else min(1000, total // 20),
        val_every=cfg.val_every or per_epoch,
        lr_mult=lr_mult,
        pretrained=pretrained,
        config=_jsonable(cfg, size, pretrained),
        log=None,
    )  # type: ignore[arg-type]
    if snapshot is not None:
        _restore(run, snapshot)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps(
            {
                **run.config,
                "total_steps": total,
                "warmup_steps": run.warmup,
                "samples_per_epoch": len(dataset),
            },
            indent=2,
        )
    )
    run.log = TrainLog(out / "log.csv", resume_step=run.step if snapshot is not None else None)
    return run


def _restore(run: _Run, snapshot: dict) -> None:
    run.model.load_state_dict(snapshot["model"])
    run.optimizer.load_state_dict(snapshot["optimizer"])
    torch.set_rng_state(snapshot["torch_rng"])
    if run.device.type == "cuda" and snapshot["cuda_rng"]:
        torch.cuda.set_rng_state_all(snapshot["cuda_rng"])
    run.step, run.best = int(snapshot["step"]), dict(snapshot["best"])


def _weights_metadata(run: _Run, metrics: dict) -> dict:
    """What ``last``/``best.safetensors`` record (``vps weights import`` reads it into the model card)."""
    cfg = run.cfg
    start = (
        f"from ImageNet (backbone lr × {run.lr_mult}, frozen BN statistics)"
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
        "pretrained": "imagenet" if run.pretrained else "none",
        "recipe": f"{cfg.backbone} {start}, AdamW lr {cfg.lr} wd {cfg.weight_decay}, poly 0.9 + {run.warmup} "
        f"warm-up steps, 5·BCE+2·Dice, batch {cfg.batch}, {run.total} steps, seed {cfg.seed}",
    }


def _save(run: _Run) -> None:
    """The resumable snapshot, the latest weights and the curves."""
    save_snapshot(
        run.out / SNAPSHOT_NAME,
        model=run.model,
        optimizer=run.optimizer,
        step=run.step,
        config=run.config,
        best=run.best,
    )
    save_checkpoint(run.model, run.out / "last.safetensors", _weights_metadata(run, run.last_val))
    plot_curves(run.log.rows, run.out / "curves.png")
    run.saved_step = run.step


def _validate(run: _Run, reporter, started: float) -> None:
    """Score the validation folders, log them, keep the best weights."""
    cfg = run.cfg
    result = validate(run.model, run.val_sources, run.device, run.amp, cfg.val_max_frames)
    run.last_val = dict(result.metrics)
    run.log.add(
        kind="val",
        step=run.step,
        epoch=run.step / run.per_epoch,
        elapsed_s=time.monotonic() - started,
        **{f"val_{k}": v for k, v in run.last_val.items()},
    )
    value, best = run.last_val.get(cfg.best_metric), run.best
    higher = HIGHER_IS_BETTER[cfg.best_metric]
    if (
        value is not None
        and value == value
        and (not best or (value > best["value"] if higher else value < best["value"]))
    ):
        run.best = {"metric": cfg.best_metric, "value": value, "step": run.step, "metrics": run.last_val}
        save_checkpoint(run.model, run.out / "best.safetensors", _weights_metadata(run, run.last_val))
    reporter.message(f"step {run.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in run.last_val.items()))


class _StepMeter:
    """Per-step losses summed on the device and read back once per log row (no host wait per step)."""

    def __init__(self):
        self.sums, self.steps, self.t0 = None, 0, time.monotonic()

    def add(self, values: torch.Tensor) -> None:
        self.sums = values if self.sums is None else self.sums + values
        self.steps += 1

    def take(self) -> tuple[dict, float]:
        """The mean of each of :data:`STEP_VALUES` since the last row, and the steps per second."""
        means = dict(zip(STEP_VALUES, (self.sums / self.steps).tolist()))  # the one read-back per log row
        now = time.monotonic()
        rate = self.steps / max(now - self.t0, 1e-9)
        self.sums, self.steps, self.t0 = None, 0, now
        return means, rate


def _step(run: _Run, j: int, meter: _StepMeter, reporter, started: float) -> None:
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


def train(cfg: TrainConfig, reporter: Reporter | None = None) -> TrainResult:
    """Run (or resume) a training run; see the module doc for what it writes.

    Example: ``train(TrainConfig(model="pns-plus", data=["Kvasir-SEG"], out="runs/a", iters=2000))``.

    Raises:
        UsageError: bad options; InputError: unusable data or snapshot; OutputError: the run
        folder already holds a run (without ``resume``) or cannot be written.
    """
    reporter = reporter or _Silent()
    run = _setup(cfg, reporter)
    reporter.start(run.total, run.step)
    started, start_step = time.monotonic(), run.step
    run.saved_step = run.step if cfg.resume and run.step else None
    try:
        _loop(run, reporter, started, start_step)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: say what a --resume continues from
        e.vps_note = _kept_text(run)
        raise
    _save(run)
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


def _kept_text(run: _Run) -> str:
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


def _loop(run: _Run, reporter, started: float, start_step: int) -> None:
    """Steps, validation and snapshots until the run is done or its time or step limit is reached."""
    cfg, meter = run.cfg, _StepMeter()
    stop = False
    while run.step < run.total and not stop:
        run.dataset.set_epoch(run.step // run.per_epoch)
        for j in range(run.step % run.per_epoch, run.per_epoch):
            _step(run, j, meter, reporter, started)
            validated = bool(run.val_sources) and (run.step % run.val_every == 0 or run.step == run.total)
            if validated:
                _validate(run, reporter, started)
            if run.step % cfg.save_every == 0 or validated:
                _save(run)
            if run.step >= run.total:
                break
            if (cfg.stop_after and run.step - start_step >= cfg.stop_after) or (
                cfg.time_limit_s and time.monotonic() - started >= cfg.time_limit_s
            ):
                stop = True
                break
