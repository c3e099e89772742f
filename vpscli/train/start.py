"""How a run starts: the options checked, the data read, the model and optimiser built (from the
seed, ``--init`` or ImageNet) and, on ``--resume``, the snapshot restored; and :class:`TrainingRun`,
the state the loop advances between steps."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from vpscli.engine.device import Placement, place_model, resolve_device
from vpscli.errors import OutputError, UsageError
from vpscli.models import build_model, load_checkpoint
from vpscli.train.augment import AugmentConfig
from vpscli.train.config import DEFAULT_EPOCHS, TrainConfig
from vpscli.train.dataset import TrainSamples
from vpscli.train.finetune import freeze_batchnorm_statistics, make_optimizer
from vpscli.train.log import TrainLog
from vpscli.train.progress import Reporter
from vpscli.train.snapshot import SNAPSHOT_NAME, load_snapshot
from vpscli.train.sources import DataSource, discover_source, synth_source
from vpscli.train.store import FrameStore, build_store, store_size
from vpscli.train.windows import TrainWindow, window_for

__all__ = ["TrainingRun", "start_run", "MIN_FREE_BYTES"]

#: free space a run folder needs to start: a snapshot (weights + AdamW moments) of the largest model on
#: Res2Net-50 is about 0.4 GB, written beside the previous one before it is replaced
MIN_FREE_BYTES = 1 << 30


@dataclass
class TrainingRun:
    """One training run between steps: made by :func:`start_run`, advanced by the loop
    (:mod:`vpscli.train.loop`), validated and saved by :mod:`vpscli.train.outputs`."""

    cfg: TrainConfig
    out: Path
    device: torch.device
    amp: bool
    model: torch.nn.Module
    forward: object  # the module or its torch.compile wrapper
    optimizer: torch.optim.Optimizer
    dataset: TrainSamples
    window: TrainWindow
    sources: list[DataSource]
    val_sources: list[DataSource]
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


def start_run(cfg: TrainConfig, reporter: Reporter) -> TrainingRun:
    """Check the options, read the data, build the model and optimiser, restore a snapshot."""
    cfg.check()
    out = Path(cfg.out)
    _check_out(out)
    size = cfg.network_size()
    device, device_note = resolve_device(cfg.device)  # the package's one resolver (engine.device)
    amp = cfg.amp and device.type == "cuda"
    snapshot = _snapshot_to_resume(cfg, size, out)
    sources, val_sources, store = _read_data(cfg, size, out, reporter)
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
    warmup = cfg.warmup if cfg.warmup is not None else min(1000, total // 20)
    lr_mult = cfg.backbone_lr_mult if pretrained else 1.0
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay, lr_mult, fused=device.type == "cuda")
    step, best = _restore(snapshot, model, optimizer, device) if snapshot is not None else (0, {})
    config = _jsonable(cfg, size, pretrained)
    _write_config(
        out, {**config, "total_steps": total, "warmup_steps": warmup, "samples_per_epoch": len(dataset)}
    )
    return TrainingRun(
        cfg,
        out,
        device,
        amp,
        model,
        forward,
        optimizer,
        dataset,
        window,
        sources,
        val_sources,
        total,
        warmup,
        val_every=cfg.val_every or per_epoch,
        lr_mult=lr_mult,
        pretrained=pretrained,
        config=config,
        log=TrainLog(out / "log.csv", resume_step=step if snapshot is not None else None),
        step=step,
        best=best,
    )


def _check_out(out: Path) -> None:
    """The run folder (or the folder it will be made in) takes files and has room for snapshots —
    checked before any data is read or model built, so a read-only or full disk is one line, not an
    error after minutes of loading."""
    import shutil

    from vpscli.io.atomic import check_output_root

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


def _jsonable(cfg: TrainConfig, size: tuple[int, int], pretrained: bool) -> dict:
    d = asdict(cfg)
    d["input_size"] = list(size)
    d["pretrained"] = pretrained
    return d


def _write_config(out: Path, config: dict) -> None:
    """``config.json``: the options of the run and the lengths they came to."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2))


def _pretrained(cfg: TrainConfig) -> bool:
    """Whether the run starts its backbone from ImageNet (``cfg.pretrained``, or the default)."""
    if cfg.pretrained is not None:
        return cfg.pretrained
    from vpscli.models.backbone import backbone_info

    return bool(cfg.init_backbone) or (backbone_info(cfg.backbone).imagenet and not cfg.init)


def _read_data(
    cfg: TrainConfig, size: tuple[int, int], out: Path, reporter: Reporter
) -> tuple[list[DataSource], list[DataSource], FrameStore]:
    """The training and validation sources, and the training data decoded — before the model is
    built, so a damaged file stops the run before anything slow starts."""
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
    return sources, val_sources, _load_store(cfg, sources, size, reporter)


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
        # Weights from another input size start the run with their per-position parameters resized.
        load_checkpoint(model, cfg.init, resize_spatial=True)
    if pretrained:
        if snapshot is None:
            reporter.message(
                f"backbone: {cfg.backbone} from {_load_backbone(model, cfg)} (learning rate × "
                f"{cfg.backbone_lr_mult}, BatchNorm statistics frozen)"
            )
        freeze_batchnorm_statistics(model)
    elif snapshot is None and not cfg.init:
        reporter.message(f"backbone: {cfg.backbone} from random initialisation")
    return model, pretrained


def _load_backbone(model: torch.nn.Module, cfg: TrainConfig) -> str:
    """Start ``model``'s backbone from ImageNet (where its weights can be installed) and then from
    ``--init-backbone``; returns where it came from, in words."""
    from vpscli.models.backbone import backbone_info
    from vpscli.models.pretrained import load_backbone_of, load_imagenet

    imagenet = backbone_info(cfg.backbone).imagenet
    if imagenet:
        load_imagenet(model)
    if not cfg.init_backbone:
        return "ImageNet"
    copied, total = load_backbone_of(model, cfg.init_backbone)
    rest = "" if copied == total else f"; the rest from {'ImageNet' if imagenet else 'the seed'}"
    return f"{Path(cfg.init_backbone).name} ({copied} of {total} tensors{rest})"


def _restore(
    snapshot: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> tuple[int, dict]:
    """Load the snapshot's weights, optimiser state and RNG states; returns its ``(step, best)``."""
    model.load_state_dict(snapshot["model"])
    optimizer.load_state_dict(snapshot["optimizer"])
    torch.set_rng_state(snapshot["torch_rng"])
    if device.type == "cuda" and snapshot["cuda_rng"]:
        torch.cuda.set_rng_state_all(snapshot["cuda_rng"])
    return int(snapshot["step"]), dict(snapshot["best"])
