"""Review rendering: prediction/ground-truth overlays, HUD, legend, timeline, contact sheets.

Pure numpy/OpenCV on ``(H, W, 3)`` uint8 RGB arrays, importable without the CLI:

- :mod:`.palette` — colours of GT-only, prediction-only and overlap (default and colour-blind-safe);
- :mod:`.strokes` — solid/dashed contours and mask-derived boxes as stroke masks;
- :mod:`.overlay` — :func:`~vpscli.render.overlay.draw_overlay` (fill, contour, both, box);
- :mod:`.hud` — burned-in frame index, timecode, model, area, confidence, banner; legend;
- :mod:`.timeline` — the presence strip under the video;
- :mod:`.mask_set` — which mask file belongs to which frame; model/threshold from ``run.json``;
- :mod:`.contact_sheet` — a grid of chosen frames;
- :mod:`.review` — the whole pipeline behind ``vps overlay``.
"""
