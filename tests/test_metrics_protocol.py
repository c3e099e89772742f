"""Frame order, trimming, reading of unusual PNGs, and the frame -> sequence -> split aggregation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from tests import _metrics_oracle as oracle
from vpscli.errors import InputError, UsageError
from vpscli.metrics import read_gray, score_arrays
from vpscli.metrics.aggregate import SequenceAccumulator, aggregate_sequences
from vpscli.metrics.keys import DEFAULT_METRICS, METRIC_KEYS, PUBLISHED_METRICS, families_for, parse_metrics
from vpscli.metrics.ordering import evaluated_frames, sort_frames

SUNSEG = "case_M_20181001100941_0U62372100109341_1_005_{clip:03d}-1_a{a}_ayy_image{i:04d}.png"


def test_numeric_rule():
    names = ["10.png", "2.png", "1.png", "33.png"]
    ordered, used = sort_frames("01", names)
    assert used == "numeric" and ordered == ["1.png", "2.png", "10.png", "33.png"]
    assert evaluated_frames(ordered) == ["2.png", "10.png"]
    assert evaluated_frames(ordered, keep_ends=True) == ordered


def test_sunseg_rule_current_and_legacy():
    # Two clips in one case; legacy ignores the clip id, so frames of both clips interleave.
    names = [SUNSEG.format(clip=c, a=1, i=i) for c in (2, 1) for i in (3, 1, 2)]
    current, used = sort_frames("case10_2", names, "auto")
    assert used == "sunseg"
    assert current == [SUNSEG.format(clip=c, a=1, i=i) for c in (1, 2) for i in (1, 2, 3)]
    legacy, used = sort_frames("case10_2", names, "legacy")
    assert used == "legacy-sunseg"
    # stable sort from the listing order on equal keys: clip 2 was listed first
    assert legacy == [SUNSEG.format(clip=c, a=1, i=i) for i in (1, 2, 3) for c in (2, 1)]
    assert evaluated_frames(current)[0] != evaluated_frames(legacy)[0]  # different frames dropped


def test_sunseg_rule_uses_the_a_number_before_the_image_number():
    names = [SUNSEG.format(clip=1, a=a, i=i) for a, i in ((2, 1), (1, 5), (1, 2))]
    ordered, _ = sort_frames("case3", names)
    assert ordered == [names[2], names[1], names[0]]


def test_names_fitting_no_rule_fall_back_to_natural():
    names = ["seq1_img10.png", "seq1_img2.png", "seq1_img1.png"]
    ordered, used = sort_frames("clipA", names)
    assert used == "natural" and ordered == ["seq1_img1.png", "seq1_img2.png", "seq1_img10.png"]
    assert sort_frames("clipA", names, "name")[0] == ["seq1_img1.png", "seq1_img10.png", "seq1_img2.png"]
    with pytest.raises(InputError, match="SUN-SEG"):
        sort_frames("clipA", names, "sunseg")


def test_short_sequences_have_nothing_to_evaluate():
    assert evaluated_frames(["a.png", "b.png"]) == []
    assert evaluated_frames(["a.png"]) == []


def test_metric_parsing():
    assert parse_metrics(None) == DEFAULT_METRICS
    assert DEFAULT_METRICS == PUBLISHED_METRICS + ("maxIoU", "MAE")
    assert parse_metrics("all") == METRIC_KEYS and len(METRIC_KEYS) == 17
    assert parse_metrics("smeasure, MAXDICE,published") == (
        "Smeasure",
        "maxDice",
        "meanEm",
        "wFmeasure",
        "meanFm",
        "meanSen",
    )
    assert families_for(("maxDice", "adpEm")) == {"medical", "emeasure"}
    with pytest.raises(UsageError, match="unknown metric 'Dice'"):
        parse_metrics("Dice")


# --- reading ----------------------------------------------------------------------------------------


def test_reading_rgb_16bit_and_palette_pngs(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (8, 9, 3)).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    assert (
        np.abs(read_gray(tmp_path / "rgb.png").astype(float) - np.round(luma)).max() <= 1
    )  # OpenCV luma (±1)

    rgba = np.dstack([rgb, np.zeros((8, 9), np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(read_gray(tmp_path / "rgba.png"), read_gray(tmp_path / "rgb.png"))  # alpha dropped

    deep = rng.integers(0, 65536, (8, 9)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert np.array_equal(read_gray(tmp_path / "deep.png"), (deep >> 8).astype(np.uint8))  # high byte

    index = rng.integers(0, 2, (8, 9)).astype(np.uint8)
    pal = Image.fromarray(index, "P")
    pal.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    pal.save(tmp_path / "pal.png")
    assert np.array_equal(read_gray(tmp_path / "pal.png"), index * 255)  # expanded to colour, then gray
    davis = Image.fromarray(index, "P")
    davis.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)  # DAVIS palette: object 1 is dark red
    davis.save(tmp_path / "davis.png")
    assert read_gray(tmp_path / "davis.png").max() <= 128  # so such a GT is empty under > 128

    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png: cannot be read"):
        read_gray(tmp_path / "broken.png")


# --- aggregation -------------------------------------------------------------------------------------


def _frames(rng, n):
    out = []
    for _ in range(n):
        gt = np.zeros((16, 16), np.uint8)
        cv2.circle(gt, (int(rng.integers(4, 12)), int(rng.integers(4, 12))), int(rng.integers(2, 5)), 255, -1)
        pred = np.clip(cv2.GaussianBlur(gt, (0, 0), 2).astype(int) + rng.integers(-30, 30, gt.shape), 0, 255)
        out.append((pred.astype(np.uint8), gt))
    return out


def test_sequence_then_dataset_mean_and_max_after_averaging():
    rng = np.random.default_rng(1)
    families = families_for(METRIC_KEYS)
    sequences = {"a": _frames(rng, 3), "b": _frames(rng, 7)}
    results = []
    expected_curves, expected_s = [], []
    for name, frames in sequences.items():
        acc = SequenceAccumulator(name)
        per_frame = [oracle.all_measures(p, g) for p, g in frames]
        for p, g in frames:
            acc.add(score_arrays(p, g, families))
        results.append(acc.result())
        expected_curves.append(np.mean([f["Dice"] for f in per_frame], axis=0))
        expected_s.append(np.mean([f["Smeasure"] for f in per_frame]))
    dataset = aggregate_sequences(results)
    curve = np.mean(expected_curves, axis=0)  # each sequence weighs the same, whatever its length
    assert dataset.value("maxDice") == pytest.approx(curve.max(), abs=1e-12)
    assert dataset.value("meanDice") == pytest.approx(curve.mean(), abs=1e-12)
    assert dataset.value("Smeasure") == pytest.approx(np.mean(expected_s), abs=1e-12)
    # the max is taken after averaging, not a mean of per-sequence maxima
    assert dataset.value("maxDice") <= np.mean([c.max() for c in expected_curves]) + 1e-15
    assert results[0].value("maxDice") == pytest.approx(expected_curves[0].max(), abs=1e-12)
    assert dataset.n_sequences == 2 and dataset.n_frames == 10


def test_nan_spreads_and_empty_sequences_are_left_out():
    families = families_for(("meanSpe",))
    acc = SequenceAccumulator("full")
    acc.add(score_arrays(np.full((4, 4), 200, np.uint8), np.full((4, 4), 255, np.uint8), families))
    empty = SequenceAccumulator("short").result()
    assert empty.n_frames == 0 and np.isnan(empty.value("meanSpe"))
    dataset = aggregate_sequences([acc.result(), empty])
    assert (
        dataset.n_sequences == 1 and np.isnan(dataset.value("meanSpe")) and np.isnan(dataset.value("maxSpe"))
    )
    assert np.isnan(aggregate_sequences([empty]).value("meanSpe"))


def test_numbered_frames_in_a_named_case_sort_by_number_without_a_note():
    from vpscli.metrics.ordering import sort_frames

    names = ["000010.png", "000002.png", "000001.png"]
    assert sort_frames("demo-clip", names) == (["000001.png", "000002.png", "000010.png"], "numeric")
    assert sort_frames("demo-clip", ["a10.png", "a2.png"])[1] == "natural"
