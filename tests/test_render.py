"""The renderer on numpy arrays: exact colours per region and style, palettes, HUD, timeline, sheet layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vpscli.errors import UsageError
from vpscli.render.contact_sheet import (
    GAP,
    build_sheet,
    label_thumbnail,
    pick_frames,
    sheet_size,
    thumbnail_size,
)
from vpscli.render.hud import FrameInfo, draw_hud, draw_legend, format_timecode
from vpscli.render.mask_set import is_probability, match_masks, read_run_info
from vpscli.render.overlay import draw_overlay
from vpscli.render.palette import PALETTES
from vpscli.render.strokes import contour_strokes
from vpscli.render.timeline import MARKER, Timeline, strip_height

GREY = 100
DEFAULT, CB = PALETTES["default"], PALETTES["colorblind"]


@pytest.fixture
def scene():
    """Grey 100x100 frame; prediction square [20:60), GT square [40:80) (both axes)."""
    image = np.full((100, 100, 3), GREY, np.uint8)
    pred = np.zeros((100, 100), bool)
    gt = np.zeros((100, 100), bool)
    pred[20:60, 20:60] = True
    gt[40:80, 40:80] = True
    return image, pred, gt


def blended(colour, alpha):
    return tuple(int(round((1 - alpha) * GREY + alpha * c)) for c in colour)


# (y, x) probes: prediction only, GT only, overlap, background
PRED_ONLY, GT_ONLY, BOTH, BG = (30, 30), (70, 70), (50, 50), (5, 5)


@pytest.mark.parametrize("palette", [DEFAULT, CB], ids=["default", "colorblind"])
@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_fill_colours_are_exact_per_region(scene, palette, alpha):
    image, pred, gt = scene
    out = draw_overlay(image, pred, gt, style="fill", alpha=alpha, palette=palette)
    assert tuple(out[PRED_ONLY]) == blended(palette.pred_only, alpha)
    assert tuple(out[GT_ONLY]) == blended(palette.gt_only, alpha)
    assert tuple(out[BOTH]) == blended(palette.overlap, alpha)
    assert tuple(out[BG]) == (GREY,) * 3
    assert np.array_equal(image, np.full_like(image, GREY)), "the input must not be modified"


def test_default_palette_is_the_aen_convention():
    assert (
        DEFAULT.gt_only == (255, 0, 0)
        and DEFAULT.pred_only == (0, 255, 0)
        and DEFAULT.overlap == (255, 255, 0)
    )


def test_colorblind_palette_avoids_red_green_and_dashes_gt():
    assert CB.gt_dashed and not DEFAULT.gt_dashed
    for c in (CB.gt_only, CB.pred_only):
        assert c not in ((255, 0, 0), (0, 255, 0))


def test_contour_colours_on_edges_interiors_untouched(scene):
    image, pred, gt = scene
    out = draw_overlay(image, pred, gt, style="contour", line_width=2, palette=DEFAULT)
    assert tuple(out[20, 30]) == (0, 255, 0)  # top edge of the prediction
    assert tuple(out[79, 70]) == (255, 0, 0)  # bottom edge of the GT
    assert tuple(out[50, 59]) == (0, 255, 0)  # prediction edge running inside the GT
    for probe in (PRED_ONLY, GT_ONLY, BOTH, BG):
        assert tuple(out[probe]) == (GREY,) * 3


def test_contour_where_gt_and_prediction_edges_coincide_is_overlap_colour(scene):
    image, pred, _ = scene
    out = draw_overlay(image, pred, pred.copy(), style="contour", line_width=2, palette=DEFAULT)
    assert tuple(out[20, 30]) == (255, 255, 0) and tuple(out[59, 40]) == (255, 255, 0)
    assert not np.any(np.all(out == (255, 0, 0), axis=2)) and not np.any(np.all(out == (0, 255, 0), axis=2))


def test_both_is_fill_then_contour(scene):
    image, pred, gt = scene
    out = draw_overlay(image, pred, gt, style="both", alpha=0.4, line_width=2)
    assert tuple(out[BOTH]) == blended(DEFAULT.overlap, 0.4)
    assert tuple(out[20, 30]) == (0, 255, 0)


def test_colorblind_gt_contour_is_dashed_prediction_solid(scene):
    image, pred, gt = scene
    out = draw_overlay(image, pred, gt, style="contour", line_width=2, palette=CB)
    gt_edge = np.all(out[79, 45:78] == CB.gt_only, axis=1)  # bottom GT edge, clear of the prediction
    pred_edge = np.all(out[20, 22:58] == CB.pred_only, axis=1)  # top prediction edge, clear of the GT
    assert pred_edge.all()
    assert 0.25 < gt_edge.mean() < 0.8, "dashes and gaps both present"
    gaps = out[79, 45:78][~gt_edge]
    assert np.all(gaps == GREY)


def test_dashed_stroke_has_gaps_solid_has_none():
    mask = np.zeros((60, 60), bool)
    mask[10:50, 10:50] = True
    solid, dashed = contour_strokes(mask, 2), contour_strokes(mask, 2, dashed=True)
    assert dashed.sum() < 0.8 * solid.sum() and dashed.sum() > 0.3 * solid.sum()
    assert not (dashed & ~solid).any()


def test_box_style_draws_component_boxes(scene):
    image, pred, gt = scene
    disc = np.zeros((100, 100), bool)
    yy, xx = np.mgrid[:100, :100]
    disc[(yy - 40) ** 2 + (xx - 40) ** 2 <= 15**2] = True  # box = [25, 55]
    out = draw_overlay(image, disc, None, style="box", line_width=2)
    assert tuple(out[25, 40]) == (0, 255, 0) and tuple(out[40, 25]) == (0, 255, 0)
    assert tuple(out[40, 40]) == (GREY,) * 3  # inside the box, nothing filled
    assert tuple(out[26, 26]) == (GREY,) * 3 or tuple(out[26, 26]) == (0, 255, 0)
    both = draw_overlay(image, pred, gt, style="box", line_width=2)
    assert tuple(both[79, 70]) == (255, 0, 0) and tuple(both[20, 30]) == (0, 255, 0)


def test_no_gt_means_prediction_colour_and_none_mask_draws_nothing(scene):
    image, pred, _ = scene
    out = draw_overlay(image, pred, None, style="fill", alpha=1.0)
    assert tuple(out[BOTH]) == (0, 255, 0)
    assert np.array_equal(draw_overlay(image, None, None), image)


def test_bad_style_and_alpha_are_usage_errors(scene):
    image, pred, gt = scene
    with pytest.raises(UsageError):
        draw_overlay(image, pred, gt, style="glow")
    with pytest.raises(UsageError):
        draw_overlay(image, pred, gt, alpha=1.5)


def test_timecode_format():
    assert format_timecode(0) == "00:00:00.000"
    assert format_timecode(83.4567) == "00:01:23.457"
    assert format_timecode(3723.04) == "01:02:03.040"


def _text_pixels(image, rect):
    x, y, w, h = rect
    return np.all(image[y : y + h, x : x + w] > 200, axis=2)


def test_hud_timecode_region_has_text_that_changes_with_time():
    a, b = np.full((240, 320, 3), 90, np.uint8), np.full((240, 320, 3), 90, np.uint8)
    ra = draw_hud(a, FrameInfo(index=3, total=10, timestamp=0.12), details=False)
    draw_hud(b, FrameInfo(index=4, total=10, timestamp=1.16), details=False)
    assert set(ra) == {"timecode"}
    assert _text_pixels(a, ra["timecode"]).sum() > 20
    assert not np.array_equal(_text_pixels(a, ra["timecode"]), _text_pixels(b, ra["timecode"]))


def test_hud_details_and_toggles():
    img = np.full((240, 320, 3), 90, np.uint8)
    regions = draw_hud(
        img, FrameInfo(0, 5, 0.0, area_fraction=0.1, confidence=0.9, model="pns_plus", threshold=0.5)
    )
    assert {"frame", "timecode", "model", "status", "banner"} <= set(regions)
    blank = np.full((240, 320, 3), 90, np.uint8)
    assert draw_hud(blank, FrameInfo(0, 5, 0.0), timecode=False, details=False) == {}
    assert np.all(blank == 90)


@pytest.mark.parametrize("alpha", [0.6, 0.35])
def test_hud_panel_darkens_by_the_float32_formula(alpha):
    from vpscli.render.hud import _panel

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    out = image.copy()
    _panel(out, (100, -5, 40, 30), alpha)  # partly outside the frame: the inside part only
    expected = image.copy()
    expected[0:25, 100:120] = np.rint(image[0:25, 100:120].astype(np.float32) * (1 - alpha)).astype(np.uint8)
    assert np.array_equal(out, expected)
    assert not np.array_equal(out[0:25, 100:120], image[0:25, 100:120])


def test_legend_lists_three_entries_with_gt_one_without():
    assert len(DEFAULT.legend_entries(True)) == 3 and len(DEFAULT.legend_entries(False)) == 1
    img = np.zeros((240, 320, 3), np.uint8)
    x, y, w, h = draw_legend(img, DEFAULT, with_gt=True)
    region = img[y : y + h, x : x + w]
    for colour in (DEFAULT.gt_only, DEFAULT.pred_only, DEFAULT.overlap):
        assert np.any(np.all(region == colour, axis=2))
    assert y + h <= 240


def test_timeline_shows_a_single_frame_detection_in_a_long_video():
    n, width = 10_000, 200
    pred = np.zeros(n, bool)
    pred[7_321] = True
    gt = np.zeros(n, bool)
    gt[:5000] = True
    tl = Timeline(width, strip_height(360, 2), pred, DEFAULT, gt=gt)
    (p0, p1), (g0, g1) = tl.rows
    lit = np.all(tl.strip[p0] == DEFAULT.pred_only, axis=1)
    assert lit.sum() == 1 and abs(int(np.argmax(lit)) - 7_321 * width // n) <= 1
    gt_lit = np.all(tl.strip[g0] == DEFAULT.gt_only, axis=1)
    assert gt_lit[:99].all() and not gt_lit[101:].any()
    frame = tl.render(0)
    assert np.all(frame[:, 0] == MARKER) and not np.all(frame[:, 150] == MARKER)
    assert tl.marker_x(n - 1) == width - 1


def test_strip_height_is_even():
    for h in (64, 120, 321, 1080):
        for tracks in (1, 2):
            assert strip_height(h, tracks) % 2 == 0


def test_contact_sheet_layout_and_picks():
    assert sheet_size(12, (96, 64)) == (4, 3, 4 * 96 + 5 * GAP, 3 * 64 + 4 * GAP)
    assert sheet_size(2, (96, 64))[:2] == (2, 1)
    assert thumbnail_size(1920, 1080) == (320, 180) and thumbnail_size(160, 120) == (160, 120)
    sheet = build_sheet([np.full((64, 96, 3), k * 20, np.uint8) for k in range(5)])
    assert sheet.shape == (2 * 64 + 3 * GAP, 4 * 96 + 5 * GAP, 3)
    assert pick_frames(100, 5) == [0, 25, 50, 74, 99]
    scores = np.zeros(100)
    scores[[3, 40, 77]] = [0.9, 0.8, 0.95]
    assert pick_frames(100, 3, "confident", scores) == [3, 40, 77]
    assert pick_frames(3, 10) == [0, 1, 2]
    with pytest.raises(UsageError):
        pick_frames(10, 3, "random")


def _png(path, value=255, size=(8, 6)):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size[1], size[0]), value, np.uint8))


def test_masks_matched_by_name_index_or_order(tmp_path):
    names = ["case_a_1", "case_a_2", "case_a_10"]
    for n in names:
        _png(tmp_path / "byname" / f"{n}.png")
    m = match_masks(tmp_path / "byname", names)
    assert m.how == "name" and [p.stem for p in m.files] == names
    for i in range(3):
        _png(tmp_path / "byindex" / f"{i:06d}.png")
    m = match_masks(tmp_path / "byindex", names)
    assert m.how == "index" and [p.stem for p in m.files] == ["000000", "000001", "000002"]
    for n in ("x1", "x2", "x10"):
        _png(tmp_path / "byorder" / f"{n}.png")
    m = match_masks(tmp_path / "byorder", names)
    assert m.how == "order" and [p.stem for p in m.files] == ["x1", "x2", "x10"]
    m = match_masks(tmp_path / "byindex", names + ["case_a_11"])
    assert m.missing == [3] and m.n_masks == 3


def test_run_info_and_probability_detection(tmp_path):
    (tmp_path / "masks").mkdir()
    (tmp_path / "run.json").write_text(
        json.dumps({"model": {"name": "pns_plus", "version": "1.0"}, "threshold": 0.4})
    )
    (tmp_path / "frames.csv").write_text("index,timestamp,present,area_fraction,max_prob\n0,0.0,1,0.1,0.93\n")
    info = read_run_info(tmp_path / "masks")
    assert info.model == "pns_plus@1.0" and info.threshold == 0.4 and info.max_prob == {0: 0.93}
    assert read_run_info(tmp_path / "nothing" / "masks").model is None
    assert is_probability(np.array([[0, 128]], np.uint8)) and not is_probability(
        np.array([[0, 255]], np.uint8)
    )


def test_thumbnail_label_marks_the_bottom_band_only():
    thumb = np.full((64, 96, 3), 150, np.uint8)
    out = label_thumbnail(thumb, "#7 00:00:00.280")
    assert np.all(out[:40] == 150), "the picture above the band is untouched"
    band = out[50:]
    assert np.any(np.all(band > 200, axis=2)) and np.any(band < 100)


def test_legend_names_the_mask_layer():
    from vpscli.render.hud import draw_legend
    from vpscli.render.palette import get_palette

    pal = get_palette("default")
    assert pal.legend_entries(False) == [("prediction", pal.pred_only, False)]
    assert pal.legend_entries(False, "ground truth")[0][0] == "ground truth"
    assert [e[0] for e in pal.legend_entries(True, "model B")] == [
        "ground truth only",
        "model B only",
        "overlap",
    ]
    short = np.zeros((240, 320, 3), np.uint8)
    wide = np.zeros((240, 320, 3), np.uint8)
    assert (
        draw_legend(wide, pal, False, "a much longer layer name")[2] > draw_legend(short, pal, False, "gt")[2]
    )
