"""Option values shared by several commands, parsed one way."""

from __future__ import annotations

from vpscli.errors import UsageError


def parse_size(text: str) -> tuple[int, int]:
    """``--size`` ``"448x320"`` (WIDTHxHEIGHT, as video sizes are written) → ``(320, 448)`` = (H, W),
    the order of tensor shapes and of every ``input_size`` in vps."""
    try:
        w, h = text.lower().split("x")
        return int(h), int(w)
    except ValueError:
        raise UsageError(f"--size must look like WIDTHxHEIGHT (e.g. 448x320), got {text!r}") from None
