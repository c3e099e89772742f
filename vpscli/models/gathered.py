"""What the gathered formulations share (the NS blocks' window taps, the CFFM attention's keys): when they
run, and their constant row indices.

Without a gradient (segmenting, validation, the converted graphs) a block reads its windows from a table
by a constant index; training keeps the original's layout, whose backward is torch's own. An index is made
on the host once per shape and device. While tracing (the conversion of a graph) it is made anew in every
invocation: torch's trace check runs the module twice, and an index first made inside one traced
invocation would be a traced value there and a constant in the other, and the two graphs would differ.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["constant_rows", "gathering"]


def gathering() -> bool:
    """Whether the gathered formulations run: whenever no gradient is needed (module doc)."""
    return not torch.is_grad_enabled()


#: the indices made so far, by what they index and the device
_ROWS: dict[tuple, Tensor] = {}


def constant_rows(key: tuple, make: Callable[[], np.ndarray], device) -> Tensor:
    """``make()`` (a numpy array of row indices) as a tensor on ``device``, made once per ``key`` and device —
    and anew while tracing (module doc)."""
    at = (key, str(device))
    if at not in _ROWS or torch.jit.is_tracing():
        _ROWS[at] = torch.as_tensor(make(), device=device)
    return _ROWS[at]
