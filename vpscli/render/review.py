"""The review pipeline behind ``vps overlay``: source + masks (+ GT) → MP4, PNG frames, contact sheet.

Two passes, both streaming (memory does not grow with video length):

1. masks only: per-frame polyp area, confidence and presence (the timeline needs the
   whole video before the first frame is drawn);
2. frames: overlay, HUD, legend, optional side-by-side, timeline → writers.

The output has the source's frame count and timing: frame ``i`` of the overlay is frame ``i``
of the source, shown at the source frame's own timestamp (variable-frame-rate sources keep
their timing).

How many frames the source has is what decodes. Up front it is the probe's packet count,
checked against the masks; a source the probe finds damaged (truncated) may decode fewer
frames than it has packets, so there the masks only need to cover a contiguous run from
frame 0 (what ``vps segment`` writes for such a file), and every frame that does decode must
have its mask (checked while decoding) unless ``allow_mismatch``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vpscli.errors import InputError, UsageError
from vpscli.io.run_folder import RunFolder
from vpscli.render.contact_sheet import build_sheet, label_thumbnail, pick_frames, thumbnail, write_png
from vpscli.render.hud import FrameInfo, draw_hud, draw_legend, format_timecode
from vpscli.render.mask_set import (
    MaskMatch,
    RunInfo,
    is_probability,
    load_mask,
    read_run_info,
)
from vpscli.render.overlay import STYLES, draw_overlay
from vpscli.render.palette import get_palette
from vpscli.render.review_match import check_same_source, match_inputs, mismatch_fix
from vpscli.render.timeline import Timeline, strip_height

DEFAULT_THRESHOLD = 0.5


@dataclass
class ReviewOptions:
    """How to draw (the ``vps overlay`` options)."""

    style: str = "both"
    alpha: float = 0.4
    palette: str = "default"
    timecode: bool = True
    info: bool = True
    side_by_side: bool = False
    timeline: bool = True
    #: probability threshold; ``None``: run.json's, else 0.5
    threshold: float | None = None
    allow_mismatch: bool = False
    sheet_frames: int = 12
    sheet_pick: str = "even"
    #: legend name of the MASKS layer (e.g. "ground truth" when reviewing annotations alone)
    mask_label: str = "prediction"

    def validate(self) -> None:
        if self.style not in STYLES:
            raise UsageError(f"--style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise UsageError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise UsageError(f"--threshold must be in (0, 1], got {self.threshold}")
        get_palette(self.palette)


@dataclass
class MaskStats:
    """Per-frame numbers from the first pass, each ``(N,)``."""

    present: np.ndarray  # bool
    area: np.ndarray  # float, NaN where no mask
    max_value: np.ndarray  # uint8 max of the mask, 0 where none
    probability: bool  # the folder holds probabilities, not binary masks


@dataclass
class ReviewResult:
    """What was written and what the user should be told."""

    frames: int
    size: tuple[int, int]
    video: Path | None = None
    frames_dir: Path | None = None
    contact_sheet: Path | None = None
    missing_masks: list[int] = field(default_factory=list)
    missing_gt: list[int] = field(default_factory=list)
    #: information (hidden by --quiet)
    notes: list[str] = field(default_factory=list)
    #: lost, missing or partial data: a truncated source, a partial segment run, mismatches
    #: drawn anyway (never hidden)
    warnings: list[str] = field(default_factory=list)
    run: RunInfo = field(default_factory=RunInfo)
    threshold: float = DEFAULT_THRESHOLD
    probability: bool = False
    #: the source is damaged: its frame count was known only once decoded (module doc)
    damaged: bool = False


def output_size(
    width: int, height: int, *, side_by_side: bool, timeline: bool, with_gt: bool
) -> tuple[int, int]:
    """``(width, height)`` of the rendered frames for a ``width x height`` source."""
    return (
        2 * width if side_by_side else width,
        height + (strip_height(height, 2 if with_gt else 1) if timeline else 0),
    )


def mask_stats(match: MaskMatch, threshold: float) -> MaskStats:
    """First pass: read each matched mask once; area fraction and max value per frame."""
    from vpscli.io.masks import read_mask

    n = len(match.files)
    present, area = np.zeros(n, bool), np.full(n, np.nan)
    max_value, probability = np.zeros(n, np.uint8), False
    for i, path in enumerate(match.files):
        if path is None:
            continue
        m = read_mask(path).array
        probability = probability or is_probability(m)
        fg = m.astype(np.float32) / 255.0 >= threshold
        area[i] = float(fg.mean())
        present[i] = bool(fg.any())
        max_value[i] = int(m.max(initial=0))
    return MaskStats(present, area, max_value, probability)


@dataclass
class _Review:
    """What drawing each frame needs: the matched masks, their statistics and the drawing choices."""

    n: int
    size: tuple[int, int]
    threshold: float
    options: ReviewOptions
    palette: object
    run: object
    pred_match: object
    gt_match: object | None
    stats: MaskStats
    confidence: np.ndarray
    timeline: Timeline | None = None
    resize_notes: list[str] = field(default_factory=list)

    def _mask(self, path, as_probability: bool) -> np.ndarray:
        m, note = load_mask(path, self.size)
        if note:
            self.resize_notes.append(note)
        return m.astype(np.float32) / 255.0 >= self.threshold if as_probability else m > 127

    def compose(self, frame) -> tuple[np.ndarray, np.ndarray, bool]:
        """``(the composed output frame, the overlay panel, whether a prediction mask was drawn)``."""
        i, n, options = frame.index, self.n, self.options
        in_range = i < n
        pred_path = self.pred_match.files[i] if in_range else None
        pred = self._mask(pred_path, True) if pred_path is not None else None
        gt_mask = None
        if self.gt_match is not None and in_range and self.gt_match.files[i] is not None:
            gt_mask = self._mask(self.gt_match.files[i], False)
        panel = draw_overlay(
            frame.image,
            pred,
            gt_mask if self.gt_match is not None else None,
            style=options.style,
            alpha=options.alpha,
            palette=self.palette,
        )
        conf = float(self.confidence[i]) if in_range and not np.isnan(self.confidence[i]) else None
        area = float(self.stats.area[i]) if in_range and not np.isnan(self.stats.area[i]) else None
        info = FrameInfo(
            index=i,
            total=n,
            timestamp=frame.timestamp,
            has_mask=pred is not None,
            area_fraction=area,
            confidence=conf,
            model=self.run.model,
            threshold=self.threshold
            if (self.run.threshold is not None or self.stats.probability or options.threshold is not None)
            else None,
        )
        draw_hud(panel, info, timecode=options.timecode, details=options.info)
        draw_legend(panel, self.palette, with_gt=self.gt_match is not None, mask_label=options.mask_label)
        composed = np.hstack([frame.image, panel]) if options.side_by_side else panel
        if self.timeline is not None:
            composed = np.vstack([composed, self.timeline.render(min(i, n - 1))])
        return composed, panel, pred is not None


def _prepare(src, probe, masks, gt, options: ReviewOptions, result: "ReviewResult") -> _Review:
    """Match, check and measure the masks; lay out the output (timeline, size)."""
    mask_dir, run = Path(masks), result.run
    partial = RunFolder.of_mask_folder(mask_dir).partial_warning()
    if partial:
        result.warnings.append(partial)
    n, pred_match, gt_match, result.damaged = match_inputs(
        src, probe, mask_dir, gt, options.allow_mismatch, run, result.warnings
    )
    result.missing_masks = pred_match.missing
    result.missing_gt = gt_match.missing if gt_match else []
    stats = mask_stats(pred_match, result.threshold)
    result.probability = stats.probability
    if stats.probability:
        confidence = stats.max_value.astype(np.float64) / 255.0
    else:
        confidence = np.array([run.max_prob.get(i, np.nan) for i in range(n)], np.float64)
    size = (probe.width, probe.height)
    review = _Review(
        n,
        size,
        result.threshold,
        options,
        get_palette(options.palette),
        run,
        pred_match,
        gt_match,
        stats,
        confidence,
    )
    out_w, out_h = output_size(
        *size, side_by_side=options.side_by_side, timeline=options.timeline, with_gt=gt_match is not None
    )
    result.size = (out_w, out_h)
    if options.timeline:
        missing = np.zeros(n, bool)
        missing[pred_match.missing] = True
        gt_stats = mask_stats(gt_match, 0.5) if gt_match else None
        review.timeline = Timeline(
            out_w,
            out_h - size[1],
            stats.present,
            review.palette,
            gt=gt_stats.present if gt_stats else None,
            missing=missing,
        )
    return review


def _sheet_picks(review: _Review, frames: int, pick: str) -> set[int]:
    confidence = review.confidence
    scores = (
        np.where(np.isnan(confidence), 0.0, confidence)
        if not np.isnan(confidence).all()
        else np.nan_to_num(review.stats.area)
    )
    return set(pick_frames(review.n, frames, pick, scores))


def _after_decoding(
    result: "ReviewResult", review: _Review, src, mask_dir: Path, allow_mismatch: bool
) -> None:
    """Notes and warnings known once every frame is decoded (see the module doc for damaged sources)."""
    notes = review.resize_notes
    if notes:
        result.notes.append(notes[0] + (f" (and {len(notes) - 1} more masks)" if len(notes) > 1 else ""))
    if src.truncation is not None:
        result.warnings.append(src.truncation.message(str(src.path)))
    if not result.damaged:
        return
    # what decoded, not the packets, decides which frames lacked a mask
    decoded, n = result.frames, review.n
    result.missing_masks = [i for i in review.pred_match.missing if i < decoded]
    result.missing_gt = [i for i in review.gt_match.missing if i < decoded] if review.gt_match else []
    for label, missing in (("MASKS", result.missing_masks), ("GT", result.missing_gt)):
        if missing:  # only with allow_mismatch: without it the first one stopped the render
            result.warnings.append(
                f"{len(missing)} of the {decoded} decoded frames have no {label} mask (first: "
                f"frame {missing[0]}); drawn as 'no mask'"
            )
    if decoded < n and not allow_mismatch:
        result.warnings.append(
            f"{mask_dir}: the masks of frames {decoded}-{n - 1} were not drawn: SOURCE stopped "
            f"decoding at frame {decoded}"
        )


def render_review(
    source: str | Path,
    masks: str | Path,
    gt: str | Path | None = None,
    *,
    video_out: str | Path | None = None,
    frames_out: str | Path | None = None,
    contact_sheet: str | Path | None = None,
    options: ReviewOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReviewResult:
    """Render the review outputs of ``source`` with its prediction ``masks`` (and ``gt``).

    Example: ``render_review("clip.mp4", "vps-out/clip/masks", video_out="review.mp4")``.

    Args:
        source: video file or frame folder.
        masks: prediction mask or probability folder.
        gt: ground-truth mask folder, optional.
        video_out: H.264 MP4 to write; frames_out: folder for PNG frames (named by frame
            name); contact_sheet: PNG grid of chosen frames. At least one is required.
        progress: called with ``(frames done, total)``.

    Raises:
        InputError: count or size mismatch (unless ``allow_mismatch``), unreadable inputs.
    """
    from vpscli.io.sources import open_source
    from vpscli.io.writer import VideoWriter

    options = options or ReviewOptions()
    options.validate()
    if video_out is None and frames_out is None and contact_sheet is None:
        raise UsageError("nothing to write", fix="give -o OUT.mp4, --frames DIR or --contact-sheet FILE.png")
    src = open_source(source)
    probe = src.probe()
    masks = RunFolder.mask_folder(masks)
    run = read_run_info(masks)
    check_same_source(src, run, masks, options.allow_mismatch)
    threshold = options.threshold if options.threshold is not None else (run.threshold or DEFAULT_THRESHOLD)
    result = ReviewResult(frames=0, size=(0, 0), run=run, threshold=threshold)
    review = _prepare(src, probe, masks, gt, options, result)
    n = review.n
    picks = (
        _sheet_picks(review, options.sheet_frames, options.sheet_pick) if contact_sheet is not None else set()
    )
    thumbs: dict[int, np.ndarray] = {}
    frames_dir = Path(frames_out) if frames_out is not None else None
    if frames_dir is not None:
        frames_dir.mkdir(parents=True, exist_ok=True)
    # the writer finishes the MP4 on success and removes it on any error or interrupt
    with (
        VideoWriter(video_out, probe.fps, result.size)
        if video_out is not None
        else contextlib.nullcontext() as writer
    ):
        for frame in src:
            i = frame.index
            if i >= n and result.damaged and not options.allow_mismatch:
                raise InputError(
                    f"frame count mismatch: SOURCE decodes to more than the {n} frames MASKS has "
                    f"masks for (frame {i} has none)",
                    path=Path(masks),
                    fix=mismatch_fix("MASKS", run),
                )
            composed, panel, _ = review.compose(frame)
            if writer is not None:
                writer.write(composed, timestamp=frame.timestamp if probe.vfr else None)
            if frames_dir is not None:
                write_png(frames_dir / f"{frame.name}.png", composed)
            if i in picks:
                thumb = thumbnail(panel)
                # the HUD already names the frame; without it, label the tile
                thumbs[i] = (
                    thumb
                    if options.info and options.timecode
                    else label_thumbnail(thumb, f"#{i} {format_timecode(frame.timestamp)}")
                )
            result.frames += 1
            if progress is not None:
                progress(result.frames, n)
    result.video = Path(video_out) if video_out is not None else None
    result.frames_dir = frames_dir
    _after_decoding(result, review, src, Path(masks), options.allow_mismatch)
    if contact_sheet is not None and thumbs:
        write_png(contact_sheet, build_sheet([thumbs[k] for k in sorted(thumbs)]))
        result.contact_sheet = Path(contact_sheet)
    return result
