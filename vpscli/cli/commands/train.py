"""``vps train``: train a model of the zoo (on a backbone, from ImageNet or from scratch), or fine-tune
it, on polyp videos and stills. Its options are :class:`~vpscli.train.TrainConfig`'s fields: each
field declares its flag, default, help and check; :data:`_FLAGS` maps flag values onto fields."""

from __future__ import annotations

import inspect
import operator
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Callable, List, NamedTuple, Optional

import typer
from rich.markup import escape

from vpscli.cli.console import err_console, notice, out_console, reports_errors, sigterm_as_interrupt
from vpscli.cli.options import parse_size
from vpscli.train.config import TrainConfig
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


def _when_given(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert``, leaving ``None`` (the flag not given) as it is."""
    return lambda value: None if value is None else convert(value)


class _Flag(NamedTuple):
    """How one :class:`TrainConfig` field is set from the command line. The flag, its alias, default and
    help are the field's; ``kind`` (the flag's type) and ``to_field`` (its value → the field's) are given
    where the flag's value is not the field's, ``default`` and ``help`` where the command's differ."""

    field: str
    kind: Any = None
    to_field: Callable[[Any], Any] | None = None
    default: Any = MISSING
    help: str | None = None


#: ``vps train``'s options, in ``--help`` order
_FLAGS = (
    _Flag("data", List[str], list),
    _Flag("out", Path, str),
    # the zoo's first model is the command's default (the library asks for a model)
    _Flag("model", default=model_names()[0], help=", ".join(model_names()) + "."),
    _Flag("backbone"),
    _Flag("pretrained"),
    _Flag("backbone_lr_mult"),
    _Flag("val", Optional[List[str]], lambda folders: list(folders or []), default=None),
    _Flag("epochs"),
    _Flag("iters"),
    _Flag("batch"),
    _Flag("lr"),
    _Flag("weight_decay"),
    _Flag("warmup"),
    _Flag("clip_grad"),
    _Flag("input_size", Optional[str], _when_given(parse_size)),  # --size WIDTHxHEIGHT → (H, W)
    _Flag("device"),
    _Flag("amp", bool, operator.not_, default=False),  # --no-amp
    _Flag("seed"),
    _Flag("cache_dir", Optional[Path], _when_given(str)),
    _Flag("cache", bool, operator.not_, default=False),  # --no-cache
    _Flag("compile_mode"),
    _Flag("save_every"),
    _Flag("val_every"),
    _Flag("val_max_frames"),
    _Flag("val_backend"),
    _Flag("best_metric"),
    _Flag("log_every"),
    _Flag("synth_clips"),
    _Flag("synth_frames"),
    _Flag("aen_clips"),
    _Flag("augment", bool, operator.not_, default=False),  # --no-augment
    _Flag("init", Optional[Path], _when_given(str)),
    _Flag("init_backbone", Optional[Path], _when_given(str)),
    _Flag("resume"),
    _Flag("time_limit_s", Optional[float], _when_given(lambda minutes: minutes * 60)),  # --time-limit minutes
)


def _signature() -> inspect.Signature:
    """The command's parameters, one per row of :data:`_FLAGS`, and ``--quiet``."""
    options = {option.name: option for option in fields(TrainConfig)}
    types = typing.get_type_hints(TrainConfig)
    parameters = []
    for flag in _FLAGS:
        option = options[flag.field]
        default = option.default if flag.default is MISSING else flag.default
        names = [n for n in (option.metadata["flag"], option.metadata["short"]) if n]
        help_text = escape(option.metadata["help"] if flag.help is None else flag.help)
        parameters.append(
            inspect.Parameter(
                flag.field,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(... if default is MISSING else default, *names, help=help_text),
                annotation=types[flag.field] if flag.kind is None else flag.kind,
            )
        )
    quiet = typer.Option(False, "--quiet", "-q", help="No progress bar or messages.")
    parameters.append(
        inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=quiet, annotation=bool)
    )
    return inspect.Signature(parameters, return_annotation=None)


def _config(values: dict[str, Any]) -> TrainConfig:
    """The run's options from the command line's values."""
    return TrainConfig(
        **{f.field: values[f.field] if f.to_field is None else f.to_field(values[f.field]) for f in _FLAGS}
    )


@reports_errors
def train(**values: Any) -> None:
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

    from vpscli.train import train as run_training

    cfg, quiet = _config(values), values["quiet"]
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


# Typer reads a command's options from its signature: here, the rows of _FLAGS.
train.__signature__ = _signature()  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    app.command("train")(train)
