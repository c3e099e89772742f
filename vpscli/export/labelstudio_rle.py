"""Label Studio brush RLE (its port of thi-ng ``rle-pack``), written from the documented format.

The encoded image is the mask as an **RGBA-flattened** 8-bit array: each pixel's value (0 or
255) repeated 4 times, row-major, ``H·W·4`` values; Label Studio reads the alpha plane.

Bit stream (most significant bit first, zero-padded to whole bytes; JSON: list of byte ints):

- header: value count (32 bits), word size − 1 (5 bits; word size 8), then four run-size
  classes, each as size − 1 (4 bits each; classes 3, 4, 8, 16 bits);
- chunks until ``count`` values are produced: a flag bit (1 = repeat, 0 = literal), a 2-bit
  class index ``c``, ``n − 1`` in ``sizes[c]`` bits, then one word (repeat: the value
  ``n`` times) or ``n`` words (literal).

This encoder writes repeat chunks only (masks are long runs; a chunk holds ≤ 2^16 values).
"""

from __future__ import annotations

import numpy as np

from vpscli.export.coco_rle import run_lengths

WORD_SIZE = 8
RUN_SIZE_CLASSES = (3, 4, 8, 16)
#: value count limit of one chunk
MAX_CHUNK = 1 << RUN_SIZE_CLASSES[-1]
#: mask value Label Studio shows as painted
FOREGROUND = 255


def _size_class(n: int) -> int:
    for c, bits in enumerate(RUN_SIZE_CLASSES):
        if n - 1 < (1 << bits):
            return c
    raise ValueError(f"run of {n} values exceeds the largest size class")


def encode_labelstudio_rle(mask: np.ndarray) -> list[int]:
    """``(H, W)`` bool mask → Label Studio ``rle`` (list of byte values 0–255)."""
    mask = np.asarray(mask, dtype=bool)
    count = mask.size * 4
    bits = [f"{count:032b}", f"{WORD_SIZE - 1:05b}"] + [f"{s - 1:04b}" for s in RUN_SIZE_CLASSES]
    value = False  # run_lengths starts with a background run
    for pixels in run_lengths(mask.ravel(order="C")):
        remaining = pixels * 4
        word = f"{FOREGROUND if value else 0:08b}"
        while remaining > 0:
            n = min(remaining, MAX_CHUNK)
            c = _size_class(n)
            bits.append(f"1{c:02b}{n - 1:0{RUN_SIZE_CLASSES[c]}b}{word}")
            remaining -= n
        value = not value
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return list(int(stream, 2).to_bytes(len(stream) // 8, "big"))
