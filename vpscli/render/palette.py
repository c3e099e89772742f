"""Colours for prediction vs ground truth.

``default`` follows the AEN paper's figures: red = ground truth only, green = prediction
only, yellow = overlap. Red/green is unreadable for ~8 % of men, so ``colorblind`` uses the
Okabe & Ito blue/orange pair with white overlap, and codes the two by line style as well
(GT dashed, prediction solid) so colour is never the only cue.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpscli.errors import UsageError

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    """Colours (RGB) and line styles of one palette."""

    name: str
    gt_only: RGB
    pred_only: RGB
    overlap: RGB
    #: draw ground-truth contours and boxes dashed (prediction stays solid)
    gt_dashed: bool

    def legend_entries(self, with_gt: bool, mask_label: str = "prediction") -> list[tuple[str, RGB, bool]]:
        """``(label, colour, dashed)`` rows of the legend; ``mask_label`` names the MASKS layer."""
        if not with_gt:
            return [(mask_label, self.pred_only, False)]
        gt_label = "ground truth only" + (" (dashed)" if self.gt_dashed else "")
        return [
            (gt_label, self.gt_only, self.gt_dashed),
            (f"{mask_label} only", self.pred_only, False),
            ("overlap", self.overlap, False),
        ]


PALETTES: dict[str, Palette] = {
    "default": Palette(
        "default", gt_only=(255, 0, 0), pred_only=(0, 255, 0), overlap=(255, 255, 0), gt_dashed=False
    ),
    "colorblind": Palette(
        "colorblind", gt_only=(0, 114, 178), pred_only=(230, 159, 0), overlap=(255, 255, 255), gt_dashed=True
    ),
}


def get_palette(name: str) -> Palette:
    try:
        return PALETTES[name]
    except KeyError:
        raise UsageError(f"--palette must be one of {', '.join(PALETTES)}, got {name!r}") from None
