"""What a run tells as it goes: the :class:`Reporter` callbacks (the CLI draws a progress bar) and
the per-step losses averaged for each log row (:class:`StepMeter`)."""

from __future__ import annotations

import time
from typing import Protocol

import torch

from vpscli.train.step import STEP_VALUES

__all__ = ["Reporter", "SilentReporter", "StepMeter"]


class Reporter(Protocol):
    """Progress callbacks (the CLI draws a rich progress bar; tests pass nothing)."""

    def start(self, total: int, done: int) -> None: ...

    def update(self, step: int, values: dict | None) -> None:
        """After each step; ``values`` (mean loss, BCE, Dice, gradient norm, lr) on logged steps only."""

    def message(self, text: str) -> None: ...


class SilentReporter:
    """A :class:`Reporter` that shows nothing (a run started without one)."""

    def start(self, total, done):
        pass

    def update(self, step, values):
        pass

    def message(self, text):
        pass


class StepMeter:
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
