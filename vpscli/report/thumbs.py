"""Episode thumbnails: for each episode, the frame with the largest mask — the whole frame with the mask's
outline, and a crop around the mask — as small inline JPEGs (``data:`` URIs), so the page is one file.

The frame comes from the segmented video (``run.json``'s ``source``) when it can still be read, else from
the run's ``overlay.mp4`` (the mask is drawn there already), else the thumbnail is the mask alone on
grey: a page never fails for want of its video.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vpscli.io.masks import read_mask
from vpscli.io.run_folder import RunFolder
from vpscli.report.data import Episode, RunReport

__all__ = ["Thumbnail", "episode_thumbnails", "THUMB_WIDTH", "MAX_THUMBNAILS"]

#: width of the whole-frame thumbnail and the longest side of the crop, in pixels
THUMB_WIDTH = 320
#: episodes given thumbnails (the longest ones beyond this many): keeps a long video's page small
MAX_THUMBNAILS = 400
_OUTLINE = (255, 220, 0)


@dataclass(frozen=True)
class Thumbnail:
    """``frame`` and ``crop`` as ``data:image/jpeg;base64,…`` URIs; ``from_video``: the frame is the video's."""

    frame: str
    crop: str
    from_video: bool


def _jpeg(rgb: np.ndarray) -> str:
    import cv2

    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:  # pragma: no cover - OpenCV encodes any 8-bit RGB image
        raise RuntimeError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def _resize(rgb: np.ndarray, longest: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    scale = longest / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _source_frames(run: RunReport, picks: dict[int, float]) -> tuple[dict[int, np.ndarray], bool]:
    """The picked frames from the video itself, else from the overlay; ``(frames, from the source)``."""
    from vpscli.io.seek import frames_at

    probe = run.record.get("probe") or {}
    source = Path(str(run.record.get("source") or ""))
    rotation = int(probe.get("rotation") or 0)
    fps = run.fps
    if probe.get("kind") == "video" and source.is_file():
        got = frames_at(source, picks, rotation, fps)
        if len(got) == len(picks):
            return got, True
    if probe.get("kind") == "frames" and source.is_dir():
        import cv2

        files = {p.stem: p for p in source.iterdir() if p.is_file()}
        got = {}
        for index in picks:
            path = files.get(run.names[index])
            image = cv2.imread(str(path)) if path is not None else None
            if image is not None:
                got[index] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if len(got) == len(picks):
            return got, True
    overlay = RunFolder(run.folder).overlay_path
    if overlay.is_file():
        return frames_at(overlay, picks, 0, fps), False
    return {}, False


def _thumbnail(frame: np.ndarray | None, mask: np.ndarray, episode: Episode) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    if frame is None or frame.shape[:2] != mask.shape:
        frame = np.full((*mask.shape, 3), 90, np.uint8)
        frame[mask] = (200, 200, 200)
    whole = frame.copy()
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(whole, contours, -1, _OUTLINE, max(2, mask.shape[1] // 200))
    x, y, w, h = episode.largest_box or (0, 0, mask.shape[1], mask.shape[0])
    margin_x, margin_y = max(w // 2, 8), max(h // 2, 8)
    crop = whole[max(0, y - margin_y) : y + h + margin_y, max(0, x - margin_x) : x + w + margin_x]
    return _resize(whole, THUMB_WIDTH), _resize(crop, THUMB_WIDTH * 3 // 4)


def episode_thumbnails(run: RunReport) -> dict[int, Thumbnail]:
    """``{episode number: Thumbnail}`` for the episodes of ``run`` (the :data:`MAX_THUMBNAILS` longest)."""
    chosen = sorted(run.episodes, key=lambda e: (-e.frames, e.start))[:MAX_THUMBNAILS]
    picks = {e.largest: float(run.timestamps[e.largest]) for e in chosen}
    frames, from_video = _source_frames(run, picks) if picks else ({}, False)
    folder = RunFolder(run.folder)
    out = {}
    for e in chosen:
        try:
            mask = read_mask(folder.mask_path(run.names[e.largest])).array > 0
        except Exception:  # a mask that cannot be read costs its thumbnail, not the page
            continue
        whole, crop = _thumbnail(frames.get(e.largest), mask, e)
        out[e.number] = Thumbnail(_jpeg(whole), _jpeg(crop), from_video and e.largest in frames)
    return out
