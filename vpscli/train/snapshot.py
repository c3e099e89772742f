"""Resumable training snapshots (``checkpoint.pt``) and exported weights (``*.safetensors``).

A snapshot holds everything an uninterrupted run would still have in memory: model and
optimiser state, the step, the torch RNG states, the best validation so far and the config.
It is written to a temporary file and renamed, so an interrupted save never leaves a broken
snapshot, and it loads with ``torch.load(weights_only=True)`` (tensors and plain values only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vpscli.errors import InputError
from vpscli.io.atomic import atomic_path

__all__ = ["SNAPSHOT_NAME", "FORMAT", "save_snapshot", "load_snapshot"]

SNAPSHOT_NAME = "checkpoint.pt"
FORMAT = "vps-train-1"


def save_snapshot(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    config: dict[str, Any],
    best: dict[str, Any] | None,
) -> Path:
    """Write a snapshot after ``step`` optimiser steps (atomic)."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "step": int(step),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "config": dict(config),
        "best": dict(best) if best else {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_snapshot(path: str | Path) -> dict[str, Any]:
    """Read a snapshot (tensors on the CPU).

    Raises:
        InputError: missing, unreadable, or not a ``vps train`` snapshot.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            "no training snapshot to resume from",
            path=path,
            fix="drop --resume to start a new run, or pass the --out of an earlier run",
        )
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(
            f"cannot read the training snapshot ({type(e).__name__})",
            path=path,
            fix="resume from an intact run folder, or start again",
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(
            "not a vps train snapshot", path=path, fix="resume from a folder written by vps train"
        )
    return payload
