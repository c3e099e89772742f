"""Per-frame measures against an independent brute-force oracle, PySODMetrics, and the spec's edge cases."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from tests import _metrics_oracle as oracle
from vpscli.metrics import prepare_frame, score_arrays
from vpscli.metrics.keys import FAMILIES
from vpscli.metrics.thresholds import LINSPACE_THRESHOLDS, adaptive_threshold

ALL = frozenset(FAMILIES)
TOL = 1e-9


def scores_dict(pred, gt):
    s = score_arrays(pred, gt, ALL)
    out = dict(s.scalars)
    out.update(s.curves)
    return out


def assert_matches_oracle(pred, gt, label=""):
    mine = scores_dict(pred, gt)
    expected = oracle.all_measures(pred, gt)
    for key, want in expected.items():
        got = np.asarray(mine[key], float)
        want = np.asarray(want, float)
        assert np.array_equal(np.isnan(got), np.isnan(want)), f"{label} {key}: NaN pattern differs"
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL, equal_nan=True, err_msg=f"{label} {key}")
    return mine


def random_pair(rng, h, w, gt_kind, pred_kind):
    gt = np.zeros((h, w), np.uint8)
    if gt_kind == "blob":
        cv2.circle(
            gt,
            (int(rng.integers(0, w)), int(rng.integers(0, h))),
            int(rng.integers(1, max(2, h // 2))),
            255,
            -1,
        )
    elif gt_kind == "noise":
        gt = (rng.random((h, w)) < rng.random()).astype(np.uint8) * 255
    elif gt_kind == "gray":
        gt = rng.integers(0, 256, (h, w)).astype(np.uint8)  # binarised at > 128
    if pred_kind == "soft":
        pred = cv2.GaussianBlur(gt, (0, 0), 2)
        pred = np.clip(pred.astype(int) + rng.integers(-20, 40, (h, w)), 0, 255).astype(np.uint8)
    elif pred_kind == "uniform":
        pred = rng.integers(0, 256, (h, w)).astype(np.uint8)
    elif pred_kind == "sparse":
        pred = ((rng.random((h, w)) < 0.2) * rng.integers(1, 256)).astype(np.uint8)
    else:  # few levels: many ties between thresholds
        pred = rng.choice(np.array([0, 4, 77, 128, 235, 251, 255], np.uint8), size=(h, w))
    return pred, gt


@pytest.mark.parametrize("seed", range(4))
def test_random_frames_match_oracle(seed):
    rng = np.random.default_rng(seed)
    for gt_kind in ("blob", "noise", "gray"):
        for pred_kind in ("soft", "uniform", "sparse", "levels"):
            h, w = rng.integers(3, 40, 2)
            pred, gt = random_pair(rng, int(h), int(w), gt_kind, pred_kind)
            assert_matches_oracle(pred, gt, f"{gt_kind}/{pred_kind}")


def test_pysodmetrics_agrees_where_conventions_coincide():
    """S, wF, MAE, E and F curves, adpE/adpF: PySODMetrics uses the same conventions on ordinary frames."""
    py_sod = pytest.importorskip("py_sod_metrics")
    rng = np.random.default_rng(7)
    for _ in range(12):
        pred, gt = random_pair(rng, 48, 64, "blob", "soft")
        gt[10:20, 10:20] = 255  # a multi-pixel object away from the borders (no degenerate quadrant)
        mine = scores_dict(pred, gt)
        sm, wfm, mae = py_sod.Smeasure(), py_sod.WeightedFmeasure(), py_sod.MAE()
        em = py_sod.Emeasure()
        with pytest.warns(UserWarning):
            fm = py_sod.Fmeasure()
        for m in (sm, wfm, mae, em, fm):
            m.step(pred=pred, gt=gt)
        assert mine["Smeasure"] == pytest.approx(sm.get_results()["sm"], abs=TOL)
        assert mine["wFmeasure"] == pytest.approx(wfm.get_results()["wfm"], abs=TOL)
        assert mine["MAE"] == pytest.approx(mae.get_results()["mae"], abs=TOL)
        np.testing.assert_allclose(mine["Em"], em.get_results()["em"]["curve"], atol=TOL)
        assert mine["adpEm"] == pytest.approx(em.get_results()["em"]["adp"], abs=TOL)
        np.testing.assert_allclose(mine["Fm"], fm.get_results()["fm"]["curve"], atol=TOL)
        assert mine["adpFm"] == pytest.approx(fm.get_results()["fm"]["adp"], abs=TOL)
        pr = fm.get_results()["pr"]
        np.testing.assert_allclose(mine["Precision"], pr["p"], atol=TOL)
        np.testing.assert_allclose(mine["Recall"], pr["r"], atol=TOL)


def test_dice_iou_sen_use_float_linspace_not_histogram():
    """PySODMetrics FmeasureV2 (histogram thresholds) differs from the toolbox at ties; vps follows linspace."""
    py_sod = pytest.importorskip("py_sod_metrics")
    pred = np.full((20, 20), 77, np.uint8)  # constant: not normalised, p = 77/255 exactly
    gt = np.zeros((20, 20), np.uint8)
    gt[5:15, 5:15] = 255
    mine = scores_dict(pred, gt)
    assert mine["Sen"].mean() == pytest.approx(77 / 256, abs=1e-15)  # spec: 77/256 under L
    v2 = py_sod.FmeasureV2(
        metric_handlers={"sen": py_sod.SensitivityHandler(with_adaptive=False, with_dynamic=True)}
    )
    v2.step(pred=pred, gt=gt)
    assert v2.get_results()["sen"]["dynamic"].mean() == pytest.approx(78 / 256)  # H gives 78/256
    # Dice/IoU/Sen agree with FmeasureV2 on maps without ties (a binary 0/255 map).
    pred2 = np.where(gt > 0, 255, 0).astype(np.uint8)
    pred2[0, :5] = 255
    mine2 = scores_dict(pred2, gt)
    v2 = py_sod.FmeasureV2(metric_handlers={
        "dice": py_sod.DICEHandler(with_adaptive=False, with_dynamic=True), "iou": py_sod.IOUHandler(with_adaptive=False, with_dynamic=True),
        "sen": py_sod.SensitivityHandler(with_adaptive=False, with_dynamic=True),
    })  # fmt: skip
    v2.step(pred=pred2, gt=gt)
    res = v2.get_results()
    np.testing.assert_allclose(mine2["Dice"], res["dice"]["dynamic"], atol=TOL)
    np.testing.assert_allclose(mine2["IoU"], res["iou"]["dynamic"], atol=TOL)
    np.testing.assert_allclose(mine2["Sen"], res["sen"]["dynamic"], atol=TOL)


# --- edge cases of the spec (§6) ------------------------------------------------------------------


def test_empty_gt():
    rng = np.random.default_rng(1)
    pred = rng.integers(0, 256, (16, 20)).astype(np.uint8)
    gt = np.zeros((16, 20), np.uint8)
    s = assert_matches_oracle(pred, gt)
    p, _ = oracle.prepare(pred, gt)
    assert s["Smeasure"] == pytest.approx(1 - p.mean(), abs=TOL)
    assert s["MAE"] == pytest.approx(p.mean(), abs=TOL)
    assert s["wFmeasure"] == 0 and s["adpFm"] == 0 and not s["Fm"].any()
    for key in ("Dice", "IoU", "Sen", "Spe"):
        assert not s[key].any(), key  # zero-TP rule: 0 everywhere, Spe included
    negatives = [(~f).sum() for f in oracle.histogram_binaries(p)]
    np.testing.assert_allclose(s["Em"], np.array(negatives) / (320 - 1 + np.spacing(1)), atol=TOL)
    # a perfect (all-zero) prediction on an empty GT: E = N / (N - 1) > 1
    s0 = scores_dict(np.zeros_like(gt), gt)
    assert s0["Em"][0] == pytest.approx(320 / 319) and s0["Smeasure"] == 1.0


def test_full_gt_gives_nan_specificity():
    pred = np.random.default_rng(2).integers(0, 256, (12, 12)).astype(np.uint8)
    gt = np.full((12, 12), 255, np.uint8)
    s = assert_matches_oracle(pred, gt)
    p, _ = oracle.prepare(pred, gt)
    assert s["Smeasure"] == pytest.approx(p.mean(), abs=TOL)
    assert np.isnan(s["Spe"][-1]) and np.isnan(s["Spe"]).sum() > 200


@pytest.mark.parametrize("where", [(7, 9), (0, 0), (11, 15)])
def test_one_pixel_gt_scores_zero_smeasure(where):
    pred = cv2.GaussianBlur(np.random.default_rng(3).integers(0, 256, (12, 16)).astype(np.uint8), (3, 3), 1)
    gt = np.zeros((12, 16), np.uint8)
    gt[where] = 255
    s = assert_matches_oracle(pred, gt)
    assert s["Smeasure"] == 0.0  # ddof=1 std of one value is NaN, and max(0, NaN) is 0


def test_border_centroids():
    rng = np.random.default_rng(4)
    pred = rng.integers(0, 256, (20, 24)).astype(np.uint8)
    strip = np.zeros((20, 24), np.uint8)
    strip[:, -1] = 255  # centroid in the last column: empty quadrant -> S = 0
    assert assert_matches_oracle(pred, strip)["Smeasure"] == 0.0
    bottom = np.zeros((20, 24), np.uint8)
    bottom[-1, 5:20] = 255  # last row
    assert assert_matches_oracle(pred, bottom)["Smeasure"] == 0.0
    corner = np.zeros((20, 24), np.uint8)
    corner[0:2, 0:2] = 255  # centroid (0.5, 0.5) rounds half-to-even to 0 -> a 1-pixel quadrant
    assert assert_matches_oracle(pred, corner)["Smeasure"] == 0.0
    even = np.zeros((20, 24), np.uint8)
    even[10:12, 10:12] = 255  # centroid 10.5 rounds to 10 (half to even), not 11
    assert_matches_oracle(pred, even)


def test_all_zero_prediction():
    gt = np.zeros((10, 30), np.uint8)
    gt[2:6, 3:13] = 255
    s = assert_matches_oracle(np.zeros_like(gt), gt)
    n_fg, n = 40, 300
    assert s["Dice"][-1] == pytest.approx(2 * n_fg / (n_fg + n))  # t = 0: every pixel positive
    assert s["IoU"][-1] == pytest.approx(n_fg / n)
    assert not s["Dice"][:-1].any()
    assert s["Dice"].max() > 0


@pytest.mark.parametrize("value", [1, 51, 77, 128, 200, 255])
def test_constant_prediction(value):
    gt = np.zeros((17, 23), np.uint8)
    gt[5:9, 7:12] = 255
    pred = np.full(gt.shape, value, np.uint8)
    assert_matches_oracle(pred, gt)
    pred[gt > 0] = 255  # constant over the background quadrants: exact-mean replay in S
    assert_matches_oracle(pred, gt)


def test_zero_one_valued_gt_is_empty():
    gt = np.zeros((10, 10), np.uint8)
    gt[3:7, 3:7] = 1
    frame = prepare_frame(np.full((10, 10), 9, np.uint8), gt)
    assert frame.n_fg == 0
    gt[0, 0] = 128
    gt[0, 1] = 129  # 128 is background, 129 foreground
    assert prepare_frame(np.zeros((10, 10), np.uint8), gt).n_fg == 1


def test_size_mismatch_resizes_prediction_bilinearly():
    rng = np.random.default_rng(5)
    gt = np.zeros((30, 40), np.uint8)
    gt[8:20, 10:30] = 255
    pred = rng.integers(0, 256, (61, 83)).astype(np.uint8)
    s = score_arrays(pred, gt, ALL)
    assert s.resized
    expected = oracle.all_measures(cv2.resize(pred, (40, 30), interpolation=cv2.INTER_LINEAR), gt)
    assert s.scalars["Smeasure"] == pytest.approx(expected["Smeasure"], abs=TOL)
    np.testing.assert_allclose(s.curves["Dice"], expected["Dice"], atol=TOL)


def test_adaptive_threshold_exactly_on_a_level():
    """2·mean(p) equals a level in exact arithmetic: the last bit decides, as in numpy's full-map mean."""
    pred = np.zeros(1020, np.uint8)
    pred[:128], pred[128:383] = 255, 128
    np.random.default_rng(0).shuffle(pred)
    pred = pred.reshape(30, 34)
    gt = np.zeros((30, 34), np.uint8)
    gt[5:20, 5:20] = 255
    frame = prepare_frame(pred, gt)
    p, _ = oracle.prepare(pred, gt)
    assert adaptive_threshold(frame) == min(2 * p.mean(), 1)
    assert_matches_oracle(pred, gt)


def test_linspace_thresholds_are_numpys():
    assert np.array_equal(LINSPACE_THRESHOLDS, np.linspace(1, 0, 256))
    assert LINSPACE_THRESHOLDS[0] == 1 and LINSPACE_THRESHOLDS[-1] == 0


def test_wfmeasure_distances_match_scipy_far_from_the_object():
    """The OpenCV distance shortcut must give scipy's float64 distances (large frame, far pixels)."""
    gt = np.zeros((300, 420), np.uint8)
    gt[140:143, 200:204] = 255
    pred = np.random.default_rng(6).integers(0, 256, gt.shape).astype(np.uint8)
    p, g = oracle.prepare(pred, gt)
    assert scores_dict(pred, gt)["wFmeasure"] == pytest.approx(oracle.wfmeasure(p, g), abs=TOL)


def test_nan_keys_reports_full_gt():
    s = score_arrays(np.full((4, 4), 200, np.uint8), np.full((4, 4), 255, np.uint8), ALL)
    assert s.full_gt and "Spe" in s.nan_keys()
    assert not math.isnan(s.scalars["Smeasure"])
