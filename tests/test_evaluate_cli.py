"""``vps evaluate`` end to end: layouts, outputs (table, JSON, CSV, plot), notes and bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests import _metrics_oracle as oracle
from vpscli.cli import main

H, W = 24, 32


def _gt(rng, kind="blob"):
    gt = np.zeros((H, W), np.uint8)
    if kind == "blob":
        cv2.circle(gt, (int(rng.integers(8, 24)), int(rng.integers(8, 16))), int(rng.integers(3, 7)), 255, -1)
    elif kind == "full":
        gt[:] = 255
    return gt


def _pred(rng, gt):
    pred = cv2.GaussianBlur(np.roll(gt, int(rng.integers(-3, 4)), axis=1), (0, 0), 2)
    return np.clip(pred.astype(int) + rng.integers(-10, 20, gt.shape), 0, 255).astype(np.uint8)


def make_tree(
    root: Path, cases: dict[str, int], *, methods=(".",), split="", seed=0, pred_sub="", gt_kind=None
):
    """GT under root/gt/<split>/GT/<case>/<i>.png; predictions under root/pred/<method>/<split>/<case>[/pred_sub]."""
    rng = np.random.default_rng(seed)
    truth: dict[str, list[tuple[str, np.ndarray, dict]]] = {}
    for case, n in cases.items():
        gdir = root / "gt" / split / "GT" / case
        gdir.mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            gt = _gt(rng, gt_kind(case, i) if gt_kind else "blob")
            cv2.imwrite(str(gdir / f"{i}.png"), gt)
            preds = {}
            for method in methods:
                pdir = root / "pred" / method / split / case / pred_sub
                pdir.mkdir(parents=True, exist_ok=True)
                preds[method] = _pred(rng, gt)
                cv2.imwrite(str(pdir / f"{i}.png"), preds[method])
            truth.setdefault(case, []).append((f"{i}.png", gt, preds))
    return truth


def expected_dataset(truth, method=".", keep_ends=False):
    """Oracle per frame -> mean per sequence -> mean over sequences -> max/mean of the curve."""
    seq_curves, seq_scalars = [], []
    for frames in truth.values():
        used = frames if keep_ends else frames[1:-1]
        if not used:
            continue
        per = [oracle.all_measures(preds[method], gt) for _, gt, preds in used]
        seq_curves.append(
            {k: np.mean([f[k] for f in per], axis=0) for k in ("Dice", "IoU", "Sen", "Spe", "Em", "Fm")}
        )
        seq_scalars.append(
            {k: np.mean([f[k] for f in per]) for k in ("Smeasure", "wFmeasure", "MAE", "adpEm", "adpFm")}
        )
    out = {k: float(np.mean([s[k] for s in seq_scalars])) for k in seq_scalars[0]}
    for k in seq_curves[0]:
        curve = np.mean([c[k] for c in seq_curves], axis=0)
        out["max" + k], out["mean" + k] = float(curve.max()), float(curve.mean())
    return out


def run(args, capsys):
    code = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_gt_folder_json_matches_oracle(tmp_path, capsys):
    truth = make_tree(tmp_path, {"1": 5, "2": 4, "10": 3})
    code, out, err = run(
        [tmp_path / "pred", tmp_path / "gt" / "GT", "-m", "all", "--json", tmp_path / "r.json"], capsys
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "r.json").read_text())
    assert set(doc) == {"protocol", "splits"}
    assert doc["protocol"]["trim_ends"] is True and doc["protocol"]["sort"] == "auto"
    entry = doc["splits"]["."]["."]
    assert list(entry["per_sequence"]) == ["1", "2", "10"]  # natural order of cases
    assert entry["per_sequence"]["1"]["n_frames"] == 3 and entry["per_sequence"]["10"]["n_frames"] == 1
    want = expected_dataset(truth)
    for key, value in want.items():
        assert entry["dataset"][key] == pytest.approx(value, abs=1e-9), key
    assert "Smeasure" in out and "protocol:" in out and "matched 1 split(s)" in err
    # the table shows the toolbox's 3-decimal rounding
    assert format(np.round(want["Smeasure"], 3), ".3f") in out


def test_keep_ends_and_per_sequence(tmp_path, capsys):
    truth = make_tree(tmp_path, {"1": 4, "2": 3})
    code, out, _ = run(
        [
            tmp_path / "pred",
            tmp_path / "gt",
            "--keep-ends",
            "--per-sequence",
            "-m",
            "Smeasure,maxDice",
            "--json",
            tmp_path / "r.json",
        ],
        capsys,
    )
    assert code == 0
    entry = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]
    assert entry["per_sequence"]["1"]["n_frames"] == 4
    assert entry["dataset"]["maxDice"] == pytest.approx(
        expected_dataset(truth, keep_ends=True)["maxDice"], abs=1e-9
    )
    assert "per sequence" in out


def test_dataset_root_with_splits_and_methods(tmp_path, capsys):
    for split, seed in (("TestEasyDataset/Seen", 1), ("TestHardDataset/Unseen", 2)):
        make_tree(tmp_path, {"case1": 4, "case2_1": 3}, methods=("PNSPlus", "UNet"), split=split, seed=seed)
    (tmp_path / "pred" / "notes").mkdir()  # a folder that is not a method
    code, out, err = run(
        [tmp_path / "pred", tmp_path / "gt", "--json", tmp_path / "r.json", "--csv", tmp_path / "r.csv"],
        capsys,
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "r.json").read_text())
    assert set(doc["splits"]) == {"TestEasyDataset/Seen", "TestHardDataset/Unseen"}
    assert set(doc["splits"]["TestEasyDataset/Seen"]) == {"PNSPlus", "UNet"}
    assert "TestEasyDataset-Seen" in out and "PNSPlus" in out and "UNet" in out
    assert "2 method(s)" in err and "notes" in err
    rows = list(csv.reader((tmp_path / "r.csv").open()))
    assert rows[0][:5] == ["split", "method", "level", "sequence", "n_frames"]
    assert len(rows) == 1 + 2 * 2 * (1 + 2)
    dataset_rows = [r for r in rows if r[2] == "dataset"]
    value = doc["splits"][dataset_rows[0][0]][dataset_rows[0][1]]["dataset"][rows[0][5]]
    assert float(dataset_rows[0][5]) == value  # unrounded


def test_segment_masks_layout_and_flat_folder(tmp_path, capsys):
    truth = make_tree(tmp_path, {"a": 4, "b": 4}, pred_sub="masks")
    code, _, err = run([tmp_path / "pred", tmp_path / "gt", "--json", tmp_path / "r.json"], capsys)
    assert code == 0, err
    whole = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]
    assert whole["dataset"]["Smeasure"] == pytest.approx(expected_dataset(truth)["Smeasure"], abs=1e-9)
    # one masks/ folder against a GT folder of several cases: only with --matched-only
    code, _, err = run([tmp_path / "pred" / "a" / "masks", tmp_path / "gt", "-q"], capsys)
    assert code == 1 and "GT cases without a prediction folder: b" in err and "--matched-only" in err
    code, _, err = run(
        [tmp_path / "pred" / "a" / "masks", tmp_path / "gt", "--matched-only", "--json", tmp_path / "a.json"],
        capsys,
    )
    assert code == 0, err
    assert "left out 1 GT case(s)" in err
    per = json.loads((tmp_path / "a.json").read_text())["splits"]["."]["."]["per_sequence"]
    assert list(per) == ["a"] and per["a"]["Smeasure"] == whole["per_sequence"]["a"]["Smeasure"]


def test_matlab_pred_level(tmp_path, capsys):
    make_tree(tmp_path, {"1": 3}, methods=("M",), split="CVC-300", pred_sub="")
    src = tmp_path / "pred" / "M" / "CVC-300"
    (src / "Pred").mkdir()
    (src / "1").rename(src / "Pred" / "1")
    code, out, err = run([tmp_path / "pred", tmp_path / "gt"], capsys)
    assert code == 0, err
    assert "CVC-300" in out


def test_missing_predictions(tmp_path, capsys):
    truth = make_tree(tmp_path, {"1": 5})
    (tmp_path / "pred" / "1" / "3.png").unlink()
    (tmp_path / "pred" / "1" / "1.png").unlink()  # first frame: not evaluated, so not needed
    code, _, err = run([tmp_path / "pred", tmp_path / "gt"], capsys)
    assert code == 1
    assert "1 prediction(s) missing" in err and "3.png" in err and "--allow-missing" in err
    code, _, err = run(
        [
            tmp_path / "pred",
            tmp_path / "gt",
            "--allow-missing",
            "-m",
            "maxDice",
            "--json",
            tmp_path / "r.json",
        ],
        capsys,
    )
    assert code == 0 and "scored as all-zero maps" in err
    zero = {k: v for k, v in truth.items()}
    name, gt, preds = zero["1"][2]
    zero["1"][2] = (name, gt, {".": np.zeros_like(gt)})
    got = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]["dataset"]["maxDice"]
    assert got == pytest.approx(expected_dataset(zero)["maxDice"], abs=1e-9)


def test_no_intersection_shows_both_lists(tmp_path, capsys):
    make_tree(tmp_path, {"case1": 3})
    other = tmp_path / "other" / "caseX"
    other.mkdir(parents=True)
    cv2.imwrite(str(other / "1.png"), np.zeros((H, W), np.uint8))
    code, _, err = run([tmp_path / "other", tmp_path / "gt"], capsys)
    assert code == 1
    assert "GT cases: case1" in err and "caseX" in err


def test_unreadable_prediction_is_named(tmp_path, capsys):
    make_tree(tmp_path, {"1": 3})
    (tmp_path / "pred" / "1" / "2.png").write_bytes(b"garbage")
    code, _, err = run([tmp_path / "pred", tmp_path / "gt"], capsys)
    assert code == 1 and "2.png: cannot read this mask" in err and "Traceback" not in err


@pytest.mark.parametrize("args, text", [
    (["-m", "Dice"], "unknown metric"),
    (["--sort", "random"], "unknown --sort"),
    (["--plot", "curves.jpg"], "PNG"),
])  # fmt: skip
def test_usage_errors_exit_2(tmp_path, capsys, args, text):
    make_tree(tmp_path, {"1": 3})
    code, _, err = run([tmp_path / "pred", tmp_path / "gt", *args], capsys)
    assert code == 2 and text in err


def test_missing_folders(tmp_path, capsys):
    make_tree(tmp_path, {"1": 3})
    code, _, err = run([tmp_path / "nope", tmp_path / "gt"], capsys)
    assert code == 1 and "prediction folder not found" in err and "fix: check the path" in err
    code, _, err = run([tmp_path / "pred", tmp_path / "nogt"], capsys)
    assert code == 1 and "ground-truth folder not found" in err and "fix: check the path" in err


def test_notes_for_extra_stray_and_short_sequences(tmp_path, capsys):
    make_tree(tmp_path, {"1": 4, "2": 2})
    cv2.imwrite(str(tmp_path / "pred" / "1" / "99.png"), np.zeros((H, W), np.uint8))  # extra prediction
    (tmp_path / "pred" / "3").mkdir()  # extra case folder
    (tmp_path / "gt" / "GT" / ".DS_Store").write_bytes(b"")  # hidden: ignored silently
    (tmp_path / "gt" / "GT" / "readme.txt").write_text("x")  # stray file: crashes the toolbox
    (tmp_path / "gt" / "GT" / "empty").mkdir()
    code, _, err = run([tmp_path / "pred", tmp_path / "gt", "--json", tmp_path / "r.json"], capsys)
    assert code == 0, err
    assert "ignored 1 prediction file(s) without a GT frame" in err
    assert "not GT cases: 3" in err
    assert "readme.txt" in err and "without PNG frames: empty" in err
    assert "no frame left after dropping the first and last" in err and "--keep-ends" in err
    doc = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]
    assert doc["per_sequence"]["2"] == {"n_frames": 0, **{k: None for k in doc["dataset"]}}
    assert doc["n_sequences"] == 1
    code, _, err = run([tmp_path / "pred", tmp_path / "gt", "-q"], capsys)
    assert code == 0 and err == ""


def test_findings_have_stable_codes_and_severities(tmp_path):
    from vpscli.metrics import build_plan, evaluate_plan
    from vpscli.metrics.diagnostics import NOTE, WARNING, Diagnostics
    from vpscli.metrics.result_diagnostics import diagnose_result

    make_tree(tmp_path, {"1": 4, "2": 2, "3": 5})
    (tmp_path / "gt" / "GT" / "readme.txt").write_text("x")
    (tmp_path / "gt" / "GT" / "empty").mkdir()
    (tmp_path / "pred" / "4").mkdir()
    cv2.imwrite(str(tmp_path / "pred" / "1" / "99.png"), np.zeros((H, W), np.uint8))
    (tmp_path / "pred" / "3" / "3.png").unlink()
    said = []
    plan = build_plan(tmp_path / "pred", tmp_path / "gt", allow_missing=True, on_warning=said.append)
    assert [(d.code, d.severity) for d in plan.diagnostics] == [
        ("gt-stray-files", NOTE),
        ("gt-empty-case", NOTE),
        ("pred-extra-folders", NOTE),
        ("pred-extra-files", NOTE),
        ("missing-prediction", WARNING),
    ]
    assert said == plan.diagnostics.warnings and "3/3.png" in said[0]
    assert plan.diagnostics.notes[0].startswith("ignored 1 file(s) beside the case folders")
    result = evaluate_plan(plan, ("Smeasure",))
    assert [d.code for d in diagnose_result(result)] == ["too-short-sequence"]
    with pytest.raises(ValueError, match="unknown diagnostic code"):
        Diagnostics().note("no-such-code", "a finding without a code in CODES")


def test_nan_frames_are_reported(tmp_path, capsys):
    make_tree(tmp_path, {"1": 4}, gt_kind=lambda case, i: "full" if i == 2 else "blob")
    code, out, err = run([tmp_path / "pred", tmp_path / "gt", "-m", "meanSpe,maxDice", "--json", "-"], capsys)
    assert code == 0
    assert "meanSpe = NaN" in err and "1/2.png" in err
    doc = json.loads(out)
    assert doc["splits"]["."]["."]["dataset"]["meanSpe"] is None
    assert doc["splits"]["."]["."]["dataset"]["maxDice"] > 0
    assert "Dataset" in err  # with --json -, tables go to stderr and stdout stays JSON


def test_plot_and_workers_give_identical_results(tmp_path):
    make_tree(tmp_path, {str(i): 8 for i in range(1, 9)}, methods=("A", "B"))
    base = [
        sys.executable,
        "-m",
        "vpscli",
        "evaluate",
        str(tmp_path / "pred"),
        str(tmp_path / "gt"),
        "-m",
        "all",
        "-q",
    ]
    one = subprocess.run(
        base + ["-j", "1", "--json", str(tmp_path / "1.json"), "--plot", str(tmp_path / "c.png")],
        capture_output=True,
        text=True,
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        base + ["-j", "2", "--json", str(tmp_path / "2.json")], capture_output=True, text=True
    )
    assert two.returncode == 0, two.stderr
    assert (
        json.loads((tmp_path / "1.json").read_text())["splits"]
        == json.loads((tmp_path / "2.json").read_text())["splits"]
    )
    image = cv2.imread(str(tmp_path / "c.png"))
    assert image is not None and image.shape[1] == 7 * 300 and image.std() > 10


@pytest.mark.realdata
def test_real_cvc_clips_against_the_oracle(vps_data, tmp_path, capsys):
    """CVC-ClinicDB GT clips against shifted, blurred copies of themselves."""
    src = vps_data / "cvc-clinicdb" / "valid" / "GT"
    if not src.is_dir():
        pytest.skip("cvc-clinicdb/valid/GT not found")
    clips = sorted(p for p in src.iterdir() if p.is_dir())[:2]
    truth = {}
    for clip in clips:
        frames = sorted(clip.glob("*.png"))[:6]
        (tmp_path / "pred" / clip.name).mkdir(parents=True)
        (tmp_path / "gt" / "GT" / clip.name).mkdir(parents=True)
        for f in frames:
            gt = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            pred = cv2.GaussianBlur(np.roll(gt, 9, axis=0), (0, 0), 5)
            cv2.imwrite(str(tmp_path / "gt" / "GT" / clip.name / f.name), gt)
            cv2.imwrite(str(tmp_path / "pred" / clip.name / f.name), pred)
            truth.setdefault(clip.name, []).append((f.name, gt, {".": pred}))
    code, _, err = run(
        [tmp_path / "pred", tmp_path / "gt", "-m", "all", "--json", tmp_path / "r.json"], capsys
    )
    assert code == 0, err
    got = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]["dataset"]
    for key, value in expected_dataset(truth).items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


# --- one mask reader for every command ------------------------------------------------------------------


def _rewrite_gt(root: Path, truth, write):
    """Re-encode every GT frame of ``truth`` (under root/gt/GT/<case>/) with ``write(path, gt_0_255)``."""
    for case, frames in truth.items():
        for name, gt, _ in frames:
            path = root / "gt" / "GT" / case / name
            path.unlink()
            write(path, gt)


def _write_davis_case(path: Path, gt: np.ndarray) -> None:
    # vps export --format davis's own writer: P-mode PNG, index 1 = polyp (DAVIS dark red 128,0,0)
    from vpscli.export.davis import write_davis
    from vpscli.export.instances import FrameInstances

    folder = write_davis(
        [FrameInstances(int(path.stem), gt > 0, [], None)], path.parent / "_davis", path.parent.name
    )
    (folder / f"{int(path.stem):05d}.png").rename(path)


@pytest.mark.parametrize("kind, write, note", [
    ("davis", _write_davis_case, "GT mask(s) are palette images"),
    ("0/1", lambda p, g: cv2.imwrite(str(p), (g > 0).astype(np.uint8)), "GT mask(s) are 0/1 masks"),
    ("1-bit", lambda p, g: Image.fromarray(g > 0).convert("1").save(p), "GT mask(s) are 1-bit images"),
])  # fmt: skip
def test_gt_encodings_mean_what_read_mask_says(tmp_path, capsys, kind, write, note):
    """A palette (vps's DAVIS export), 0/1 or 1-bit GT scores exactly like the 0/255 GT it encodes."""
    truth = make_tree(tmp_path, {"1": 5, "2": 4})
    _rewrite_gt(tmp_path, truth, write)
    code, _, err = run(
        [tmp_path / "pred", tmp_path / "gt", "-m", "all", "--json", tmp_path / "r.json"], capsys
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "r.json").read_text())
    got = doc["splits"]["."]["."]["dataset"]
    for key, value in expected_dataset(truth).items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    assert got["maxDice"] > 0.5
    assert f"5 {note}" in err  # evaluated frames: 3 + 2, reported once for the kind
    assert "empty GT" not in err
    conv = {"davis": "palette", "0/1": "0/1", "1-bit": "1-bit"}[kind]
    assert doc["protocol"]["conversions"] == {"gt": {conv: 5}, "predictions": {}}


def test_prediction_encodings_are_reported_once_per_kind(tmp_path, capsys):
    """16-bit (v·257) and equal-channel RGB predictions read back as the 8-bit maps they hold."""
    truth = make_tree(tmp_path, {"1": 6})
    for i, (name, _, preds) in enumerate(truth["1"]):
        path = tmp_path / "pred" / "1" / name
        if i % 2:
            cv2.imwrite(str(path), preds["."].astype(np.uint16) * 257)
        else:
            cv2.imwrite(str(path), np.dstack([preds["."]] * 3))
    code, _, err = run(
        [tmp_path / "pred", tmp_path / "gt", "-m", "Smeasure,maxDice,MAE", "--json", tmp_path / "r.json"],
        capsys,
    )
    assert code == 0, err
    got = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]["dataset"]
    want = expected_dataset(truth)
    for key in ("Smeasure", "maxDice", "MAE"):
        assert got[key] == pytest.approx(want[key], abs=1e-9), key
    assert (
        "2 prediction(s) are 16-bit images" in err
        and "2 prediction(s) are RGB images with equal channels" in err
    )
    assert err.count("16-bit images") == 1


def test_8bit_grey_inputs_have_no_conversion_note(tmp_path, capsys):
    make_tree(tmp_path, {"1": 4})
    code, _, err = run([tmp_path / "pred", tmp_path / "gt", "--json", tmp_path / "r.json"], capsys)
    assert code == 0 and " are " not in err.replace("are 0 at every", "")
    assert json.loads((tmp_path / "r.json").read_text())["protocol"]["conversions"] == {
        "gt": {},
        "predictions": {},
    }


# --- sequences too short for the protocol ---------------------------------------------------------------


def test_only_short_sequences_is_an_error_suggesting_keep_ends(tmp_path, capsys):
    truth = make_tree(tmp_path, {"1": 2, "2": 1})
    code, out, err = run([tmp_path / "pred", tmp_path / "gt"], capsys)
    assert code == 1 and "nan" not in out
    assert "all 2 sequence(s) have at most 2 frames" in err and "fix: use --keep-ends" in err
    code, _, err = run(
        [tmp_path / "pred", tmp_path / "gt", "--keep-ends", "-m", "maxDice", "--json", tmp_path / "r.json"],
        capsys,
    )
    assert code == 0, err
    got = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]["dataset"]["maxDice"]
    assert got == pytest.approx(expected_dataset(truth, keep_ends=True)["maxDice"], abs=1e-9)


# --- file names: extension case and other extensions ----------------------------------------------------


def test_prediction_extension_in_upper_case_is_scored_with_a_note(tmp_path, capsys):
    truth = make_tree(tmp_path, {"1": 5})
    for name in ("2.png", "3.png"):
        path = tmp_path / "pred" / "1" / name
        path.rename(path.with_suffix(".PNG"))
    code, _, err = run(
        [tmp_path / "pred", tmp_path / "gt", "-m", "Smeasure", "--json", tmp_path / "r.json"], capsys
    )
    assert code == 0, err
    got = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]["dataset"]["Smeasure"]
    assert got == pytest.approx(expected_dataset(truth)["Smeasure"], abs=1e-9)
    assert "2 prediction file(s) differ from the GT name only in the extension's letter case" in err
    assert "ignored" not in err  # the .PNG files are not counted as extra predictions


def test_prediction_numbers_with_other_zero_padding_are_scored_as_that_frame(tmp_path, capsys):
    # vps segment names frames 000001.png, a DAVIS folder (vps export --format davis too) 00001.png
    truth = make_tree(tmp_path, {"1": 6})
    pred = tmp_path / "pred" / "1"
    for i in range(1, 7):
        (pred / f"{i}.png").rename(pred / f"{i:06d}.png")
    code, _, err = run(
        [tmp_path / "pred", tmp_path / "gt", "-m", "Smeasure,maxDice", "--json", tmp_path / "r.json"], capsys
    )
    assert code == 0, err
    got = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]["dataset"]
    want = expected_dataset(truth)
    assert got["Smeasure"] == pytest.approx(want["Smeasure"], abs=1e-9)
    assert got["maxDice"] == pytest.approx(want["maxDice"], abs=1e-9)
    assert (
        "4 prediction file(s) carry the GT frame's number with other zero padding (e.g. 000002.png for 2.png)"
        in err
    )
    assert "ignored" not in err  # every renamed file stands for a GT frame


def test_one_frame_number_under_two_paddings_is_not_guessed(tmp_path, capsys):
    make_tree(tmp_path, {"1": 5})
    pred = tmp_path / "pred" / "1"
    (pred / "3.png").rename(pred / "03.png")
    (pred / "003.png").write_bytes((pred / "03.png").read_bytes())
    code, _, err = run([tmp_path / "pred", tmp_path / "gt"], capsys)
    assert code == 1 and "1 prediction(s) missing" in err and "3.png" in err


def test_predictions_numbered_one_higher_than_the_gt_are_named_not_guessed(tmp_path, capsys):
    # frames extracted with ffmpeg's %03d.jpg start at 001; this GT starts at 0
    make_tree(tmp_path, {"1": 6})
    gt, pred = tmp_path / "gt" / "GT" / "1", tmp_path / "pred" / "1"
    for i in range(1, 7):
        (gt / f"{i}.png").rename(gt / f"{i - 1}.png")
    for i in range(6, 0, -1):
        (pred / f"{i}.png").rename(pred / f"{i:03d}.png")
    code, _, err = run([tmp_path / "pred", tmp_path / "gt", "--keep-ends"], capsys)
    assert code == 1 and "1 prediction(s) missing" in err, err
    assert "numbered 1 higher than the ground truth's frames (001.png where GT 0.png is expected" in err
    assert "does not guess" in err
    for i in range(1, 7):  # renamed to the GT's numbers, as the fix says
        (pred / f"{i:03d}.png").rename(pred / f"{i - 1:03d}.png")
    code, _, err = run([tmp_path / "pred", tmp_path / "gt", "--keep-ends"], capsys)
    assert code == 0 and "higher" not in err, err


def test_prediction_with_another_extension_is_named_in_the_error(tmp_path, capsys):
    make_tree(tmp_path, {"1": 5})
    for name in ("2.png", "3.png", "4.png"):
        path = tmp_path / "pred" / "1" / name
        cv2.imwrite(str(path.with_suffix(".jpg")), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
        path.unlink()
    code, _, err = run([tmp_path / "pred", tmp_path / "gt"], capsys)
    assert code == 1
    assert "3 prediction(s) missing" in err and "3 of them exist with another extension (e.g. 2.jpg)" in err
    assert "fix: save the maps as PNG" in err and "2.jpg -> 2.png" in err


def test_gt_in_upper_case_png_is_not_a_frame_and_says_so(tmp_path, capsys):
    make_tree(tmp_path, {"1": 4, "2": 4})
    for path in (tmp_path / "gt" / "GT" / "2").iterdir():
        path.rename(path.with_suffix(".PNG"))
    code, _, err = run([tmp_path / "pred", tmp_path / "gt"], capsys)
    assert code == 0, err
    assert "without PNG frames: 2" in err and "ignored 4 GT file(s) ending in .PNG" in err and "rename" in err
    for case in ("1",):
        for path in (tmp_path / "gt" / "GT" / case).iterdir():
            path.rename(path.with_suffix(".PNG"))
    code, _, err = run([tmp_path / "pred", tmp_path / "gt" / "GT"], capsys)
    assert code == 1 and "fix: rename the GT files to lower-case .png" in err


# --- vps segment outputs: probs/ before masks/, partial runs ----------------------------------------------


def _segment_tree(root: Path, cases: dict[str, int], *, probs=True, masks=True):
    """root/pred/<case>/{probs,masks}/ as vps segment writes them: probs soft, masks thresholded at 0.5."""
    truth = make_tree(root, cases, pred_sub="probs")
    binary = {}
    for case, frames in truth.items():
        out = root / "pred" / case
        for name, gt, preds in frames:
            mask = np.where(preds["."] >= 128, 255, 0).astype(np.uint8)
            binary.setdefault(case, []).append((name, gt, {".": mask}))
            if masks:
                (out / "masks").mkdir(exist_ok=True)
                cv2.imwrite(str(out / "masks" / name), mask)
        if not probs:
            for f in (out / "probs").iterdir():
                f.unlink()
            (out / "probs").rmdir()
    return truth, binary


def test_segment_folder_scores_probs_before_masks(tmp_path, capsys):
    soft, binary = _segment_tree(tmp_path, {"a": 5, "b": 4})
    args = [tmp_path / "pred", tmp_path / "gt", "-m", "maxDice,meanDice", "--json", tmp_path / "r.json"]
    code, _, err = run(args, capsys)
    assert code == 0, err
    got = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]["dataset"]
    assert got["maxDice"] == pytest.approx(expected_dataset(soft)["maxDice"], abs=1e-9)
    assert (
        "scored probs/" in err
        and "2 vps segment folder(s) that also hold masks/" in err
        and "--use-masks" in err
    )
    assert expected_dataset(soft)["maxDice"] != pytest.approx(expected_dataset(binary)["maxDice"], abs=1e-6)

    code, _, err = run(args + ["--use-masks"], capsys)
    assert code == 0, err
    got = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]["dataset"]
    assert got["maxDice"] == pytest.approx(expected_dataset(binary)["maxDice"], abs=1e-9)
    assert "scored masks/ of 2 vps segment folder(s) (--use-masks)" in err and "nearly coincide" in err

    # one segment case folder given directly, against one GT case
    code, _, err = run(
        [
            tmp_path / "pred" / "a",
            tmp_path / "gt" / "GT" / "a",
            "-m",
            "maxDice",
            "--json",
            tmp_path / "a.json",
        ],
        capsys,
    )
    assert code == 0, err
    per = json.loads((tmp_path / "a.json").read_text())["splits"]["."]["."]["dataset"]["maxDice"]
    assert per == pytest.approx(expected_dataset({"a": soft["a"]})["maxDice"], abs=1e-9)


def test_segment_folder_with_masks_only_says_binary_masks_are_scored(tmp_path, capsys):
    _, binary = _segment_tree(tmp_path, {"a": 4}, probs=False)
    code, _, err = run(
        [tmp_path / "pred", tmp_path / "gt", "-m", "maxDice", "--json", tmp_path / "r.json"], capsys
    )
    assert code == 0, err
    got = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]["dataset"]["maxDice"]
    assert got == pytest.approx(expected_dataset(binary)["maxDice"], abs=1e-9)
    assert "scored masks/ of 1 folder(s) without probs/" in err and "--save-prob" in err


@pytest.mark.parametrize("record, text", [
    ({"status": "partial", "partial": {"frames_decoded": 3, "frames_expected": 9, "reason": "truncated file"}},
     "partial run (3 of 9 frames): truncated file"),
    ({"status": "interrupted", "frames": 4}, "was interrupted after 4 frames"),
])  # fmt: skip
def test_partial_segment_run_is_a_warning_even_when_quiet(tmp_path, capsys, record, text):
    make_tree(tmp_path, {"a": 4, "b": 4}, pred_sub="masks")
    (tmp_path / "pred" / "a" / "run.json").write_text(json.dumps(record))
    (tmp_path / "pred" / "b" / "run.json").write_text(json.dumps({"status": "complete"}))
    code, _, err = run([tmp_path / "pred", tmp_path / "gt", "-q", "--json", tmp_path / "r.json"], capsys)
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and text in lines[0] and str(tmp_path / "pred" / "a") in lines[0]
    assert json.loads((tmp_path / "r.json").read_text())["protocol"]["warnings"] == [
        lines[0][len("warning: ") :]
    ]
    # said before the error when the run's missing frames stop the evaluation
    (tmp_path / "pred" / "a" / "masks" / "2.png").unlink()
    code, _, err = run([tmp_path / "pred", tmp_path / "gt", "-q"], capsys)
    assert code == 1 and err.index("warning:") < err.index("error:")


def test_a_scorer_elsewhere_is_run_to_its_end_and_gives_the_local_numbers(tmp_path):
    """``vps evaluate --ray``'s contract without Ray: the scorer generator is exhausted, not left at its
    last frame (where the Ray scorer's clean-up took its finished task for an abandoned one and cancelled
    it, which now and then crashed Ray's core worker), and the numbers are a local run's."""
    from vpscli.metrics.layout import build_plan
    from vpscli.metrics.runner import evaluate_plan, score_frames

    make_tree(tmp_path, {"1": 5, "2": 6})
    plan = build_plan(tmp_path / "pred", tmp_path / "gt")
    ended = []

    def scorer(keys, tasks):
        yield from score_frames(tasks)
        ended.append(len(tasks))  # reached only when the caller asks past the last frame

    metrics = ("Smeasure", "maxDice", "MAE")
    elsewhere = evaluate_plan(plan, metrics, scorer=scorer)
    local = evaluate_plan(plan, metrics)
    assert ended == [plan.n_frames] and plan.n_frames == 3 + 4
    assert repr(elsewhere.datasets) == repr(local.datasets) and repr(elsewhere.sequences) == repr(
        local.sequences
    )
    assert "Smeasure" in repr(local.datasets)


def test_missing_predictions_warn_even_when_quiet(tmp_path, capsys):
    make_tree(tmp_path, {"1": 5})
    (tmp_path / "pred" / "1" / "3.png").unlink()
    code, _, err = run([tmp_path / "pred", tmp_path / "gt", "--allow-missing", "-m", "maxDice", "-q"], capsys)
    assert code == 0 and "warning:" in err and "scored as all-zero maps" in " ".join(err.split())


def test_probs_not_listed_in_run_json_are_not_scored(clip, weights, tmp_path, capsys):
    """A run made without --save-prob over the probs/ of an earlier run: evaluate scores its masks/, not the
    stale probabilities that run.json does not list."""
    import shutil

    from vpscli.engine import Segmenter, SegmentOptions, segment_video
    from vpscli.io.run_folder import RunFolder
    from vpscli.io.sources import open_source

    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    segment_video(seg, open_source(clip / "vid.mp4"), SegmentOptions(out_root=tmp_path / "a", overlay=False))
    folder = tmp_path / "a" / "vid"
    assert RunFolder(folder).scored_folder() == folder / "masks"
    shutil.copytree(folder / "masks", folder / "probs")  # stale maps the record does not list
    assert not RunFolder(folder).probs_listed() and RunFolder(folder).scored_folder() == folder / "masks"
    segment_video(
        seg,
        open_source(clip / "vid.mp4"),
        SegmentOptions(out_root=tmp_path / "b", overlay=False, save_prob=True),
    )
    listed = RunFolder(tmp_path / "b" / "vid")
    assert listed.probs_listed() and listed.scored_folder() == tmp_path / "b" / "vid" / "probs"


def test_unwritable_outputs_are_refused_before_scoring(tmp_path, capsys, monkeypatch):
    make_tree(tmp_path, {"1": 5})
    (tmp_path / "afile").write_text("x")
    scored = []
    import vpscli.metrics as metrics

    monkeypatch.setattr(metrics, "build_plan", lambda *a, **k: scored.append(1))
    for option in ("--json", "--csv", "--plot"):
        name = "r.png" if option == "--plot" else "r.out"
        code, _, err = run([tmp_path / "pred", tmp_path / "gt", option, tmp_path / "afile" / name], capsys)
        assert code == 1 and f"{option}:" in err and "is a file, not a folder" in err, err
    assert scored == []


def test_method_on_predictions_without_methods_does_not_suggest_cases(tmp_path, capsys):
    make_tree(tmp_path, {"1": 5, "2": 4})
    code, _, err = run([tmp_path / "pred", tmp_path / "gt", "--method", "nope"], capsys)
    err = " ".join(err.split())
    assert (
        code == 1
        and "have no method folders" in err
        and "leave out --method" in err
        and "choose among" not in err
    )


@pytest.mark.parametrize("pool", ["threads", "processes"])
def test_thread_and_process_pools_score_bit_for_bit_as_one_worker(tmp_path, monkeypatch, pool):
    from vpscli.metrics import build_plan, evaluate_plan, runner

    make_tree(tmp_path, {str(i): 6 for i in range(1, 5)}, methods=("A", "B"))
    plan = build_plan(tmp_path / "pred", tmp_path / "gt")
    keys = ("Smeasure", "wFmeasure", "maxDice", "meanEm", "MAE")
    one = evaluate_plan(plan, keys, workers=1)
    monkeypatch.setattr(runner, "MIN_FRAMES_FOR_PROCESSES", 10_000 if pool == "threads" else 2)
    two = evaluate_plan(plan, keys, workers=2)
    for key, dataset in one.datasets.items():
        for k in keys:
            assert dataset.value(k) == two.datasets[key].value(k)
