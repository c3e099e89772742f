"""Constant row indices of the gathered formulations (the NS blocks' window taps, the CFFM attention's
keys), made on the host once per shape and device.

While tracing (the conversion of a graph) an index is made anew in every invocation: torch's trace check
runs the module twice, and an index first made inside one traced invocation would be a traced value there
and a constant in the other, and the two graphs would differ.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["constant_rows"]

#: the indices made so far, by what they index and the device
_ROWS: dict[tuple, Tensor] = {}


def constant_rows(key: tuple, make: Callable[[], np.ndarray], device) -> Tensor:
    """``make()`` (a numpy array of row indices) as a tensor on ``device``, made once per ``key`` and device —
    and anew while tracing (module doc)."""
    at = (key, str(device))
    if at not in _ROWS or torch.jit.is_tracing():
        _ROWS[at] = torch.as_tensor(make(), device=device)
    return _ROWS[at]
