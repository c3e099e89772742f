"""`vps evaluate`'s detection view: frame sensitivity/specificity, polyp episodes and time to first
detection, false alarms on polyp-free videos — on sets where every answer is known in advance."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from tests._models import scripted_stand_in
from vpscli.cli import main
from vpscli.episodes import EpisodeDetection
from vpscli.metrics.detection import DatasetDetection, sequence_detection
from vpscli.metrics.report import DETECTION_COLUMNS

H, W = 24, 32


def flags(text: str) -> list[bool]:
    return [c == "#" for c in text]


def blob(value: int) -> np.ndarray:
    a = np.zeros((H, W), np.uint8)
    cv2.circle(a, (16, 12), 5, value, -1)
    return a


def run(args, capsys):
    code = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_sequence_detection_counts_frames_episodes_and_false_alarms():
    pos = sequence_detection(
        "pos", flags("..####..###."), flags("#...##......"), fps=25.0, source="maps ≥ 0.5"
    )
    assert (pos.gt_positive, pos.true_positive, pos.false_positive) == (7, 2, 1)
    assert pos.sensitivity == 2 / 7 and pos.specificity == 4 / 5
    assert pos.episodes == [EpisodeDetection(2, 4, 2), EpisodeDetection(8, 3, None)]
    assert pos.seconds(2) == 0.08 and pos.false_alarm_episodes is None and not pos.negative
    neg = sequence_detection("neg", flags(".........."), flags(".##..#...#"), fps=25.0, source="maps ≥ 0.5")
    assert neg.negative and neg.sensitivity is None and neg.specificity == 0.6
    assert neg.false_alarm_episodes == 3 and neg.false_alarms_per_minute == pytest.approx(3 / (10 / 25 / 60))
    no_rate = sequence_detection("neg", flags("...."), flags("#..#"), fps=None, source="masks/")
    assert (
        no_rate.false_alarm_episodes == 2
        and no_rate.false_alarms_per_minute is None
        and no_rate.seconds(1) is None
    )
    pooled = DatasetDetection([pos, neg]).to_json()
    assert pooled["sensitivity"] == 2 / 7 and pooled["specificity"] == 10 / 15
    assert (pooled["polyp_episodes"], pooled["polyp_episodes_detected"]) == (2, 1)
    assert pooled["median_time_to_first_detection_frames"] == 2.0 and pooled["false_alarm_episodes"] == 3
    assert DatasetDetection([pos, no_rate]).false_alarms_per_minute is None  # a negative video without a rate
    with pytest.raises(ValueError):
        sequence_detection("x", [True], [], fps=None, source="")


@pytest.fixture
def maps(tmp_path):
    """GT and probability maps: ``pos`` (two polyp episodes, the second missed, one false positive) and
    ``neg`` (polyp-free, three false-alarm episodes). Detected frames hold a blob of 200, the others 100
    (p = 0.39: under the default 0.5, over 0.3)."""
    cases = {"pos": ("..####..###.", "#...##......"), "neg": ("..........", ".##..#...#")}
    for case, (gt, detected) in cases.items():
        (tmp_path / "gt" / "GT" / case).mkdir(parents=True)
        (tmp_path / "pred" / case).mkdir(parents=True)
        for i, (g, d) in enumerate(zip(gt, detected)):
            cv2.imwrite(
                str(tmp_path / "gt" / "GT" / case / f"{i:04d}.png"), blob(255) if g == "#" else blob(0)
            )
            cv2.imwrite(str(tmp_path / "pred" / case / f"{i:04d}.png"), blob(200 if d == "#" else 100))
    return tmp_path


def test_detection_view_in_json_csv_and_table(maps, capsys):
    code, out, err = run(
        [
            maps / "pred",
            maps / "gt" / "GT",
            "--fps",
            "25",
            "--json",
            maps / "r.json",
            "--csv",
            maps / "r.csv",
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads((maps / "r.json").read_text())
    view = doc["splits"]["."]["."]["detection"]
    assert "GT > 128" in doc["protocol"]["detection"]
    pos, neg = view["per_sequence"]["pos"], view["per_sequence"]["neg"]
    assert (pos["sensitivity"], pos["specificity"], pos["negative_video"]) == (2 / 7, 0.8, False)
    assert pos["polyp_episodes"] == [
        {
            "first_frame": 2,
            "frames": 4,
            "detected": True,
            "time_to_first_detection_frames": 2,
            "time_to_first_detection_seconds": 0.08,
        },
        {
            "first_frame": 8,
            "frames": 3,
            "detected": False,
            "time_to_first_detection_frames": None,
            "time_to_first_detection_seconds": None,
        },
    ]
    assert pos["detected_from"] == "maps ≥ 0.5" and pos["false_alarm_episodes"] is None
    assert (neg["negative_video"], neg["false_alarm_episodes"], neg["specificity"]) == (True, 3, 0.6)
    assert neg["false_alarm_episodes_per_minute"] == pytest.approx(450.0)
    assert view["dataset"]["sensitivity"] == 2 / 7 and view["dataset"]["specificity"] == 10 / 15
    rows = {r["sequence"]: r for r in csv.DictReader((maps / "r.csv").open())}
    assert list(rows[""])[-len(DETECTION_COLUMNS) :] == list(DETECTION_COLUMNS)
    assert rows["pos"]["time_to_first_detection_frames"] == "2;missed"
    assert rows["pos"]["time_to_first_detection_seconds"] == "0.08;missed"
    assert rows["neg"]["false_alarm_episodes"] == "3" and rows[""]["polyp_episodes_detected"] == "1"
    assert "detection per video" in out and "2 (0.08 s), missed" in out and "3 (450.00/min)" in out
    assert "median 2 frames" in out


def test_the_toolbox_numbers_are_the_same_with_and_without_the_detection_view(maps, capsys):
    assert (
        run(
            [
                maps / "pred",
                maps / "gt" / "GT",
                "-m",
                "all",
                "--json",
                maps / "a.json",
                "--csv",
                maps / "a.csv",
            ],
            capsys,
        )[0]
        == 0
    )
    assert (
        run(
            [
                maps / "pred",
                maps / "gt" / "GT",
                "-m",
                "all",
                "--json",
                maps / "b.json",
                "--csv",
                maps / "b.csv",
                "--no-detection",
            ],
            capsys,
        )[0]
        == 0
    )
    a, b = (json.loads((maps / f"{k}.json").read_text())["splits"]["."]["."] for k in "ab")
    assert "detection" not in b
    assert a["dataset"] == b["dataset"] and a["per_sequence"] == b["per_sequence"]  # exact floats
    rows_a = list(csv.reader((maps / "a.csv").open()))
    rows_b = list(csv.reader((maps / "b.csv").open()))
    assert [r[: len(rows_b[0])] for r in rows_a] == rows_b


def test_a_threshold_binarises_the_maps(maps, capsys):
    code, _, err = run(
        [maps / "pred", maps / "gt" / "GT", "--threshold", "0.3", "--json", maps / "r.json"], capsys
    )
    assert code == 0, err
    view = json.loads((maps / "r.json").read_text())["splits"]["."]["."]["detection"]
    # every map holds 100 ≥ 0.3 · 255: every frame is detected
    assert view["dataset"]["sensitivity"] == 1.0 and view["dataset"]["specificity"] == 0.0
    assert view["per_sequence"]["pos"]["detected_from"] == "maps ≥ 0.3"
    assert view["per_sequence"]["neg"]["false_alarm_episodes_per_minute"] is None  # no --fps: frames only


@pytest.mark.parametrize("option, value", [("--threshold", "0"), ("--threshold", "1.5"), ("--fps", "-1")])
def test_bad_detection_options_are_one_line_usage_errors(maps, capsys, option, value):
    code, _, err = run([maps / "pred", maps / "gt" / "GT", option, value], capsys)
    assert code == 2 and f"{option} must be" in err and "fix:" in err and "Traceback" not in err


def test_vps_segment_runs_are_judged_by_their_filtered_masks(tmp_path, capsys, monkeypatch):
    """Segment a 24-frame video with a model that flags known frames, --min-persistence 3, then evaluate:
    detection follows masks/ (the filter's output), not probs/, with the video's own 25 fps."""
    import vpscli.weights.store
    from vpscli.synth import SynthConfig, write_clip
    from vpscli.weights.store import LoadedModel

    pattern = "##..####..#..###...#.###"  # kept with N = 3: 4-7, 13-15, 21-23; suppressed: 0-1, 10, 19
    monkeypatch.setattr(
        vpscli.weights.store,
        "load_model",
        lambda model=None, weights=None: LoadedModel(scripted_stand_in(pattern)),
    )
    write_clip(tmp_path, SynthConfig(frames=24, width=96, height=64, seed=4), "mp4", "pos")
    shutil.copy(tmp_path / "pos.mp4", tmp_path / "neg.mp4")
    for name in ("pos", "neg"):
        assert (
            main(
                [
                    "segment",
                    str(tmp_path / f"{name}.mp4"),
                    "-o",
                    str(tmp_path / "out"),
                    "--save-prob",
                    "--no-overlay",
                    "--min-persistence",
                    "3",
                    "-q",
                ]
            )
            == 0
        )
    gt = {"pos": "...######.........###...", "neg": "." * 24}  # pos: episodes at 3-8 and 18-20
    for name, text in gt.items():
        (tmp_path / "truth" / "GT" / name).mkdir(parents=True)
        for i, c in enumerate(text):
            cv2.imwrite(
                str(tmp_path / "truth" / "GT" / name / f"{i:06d}.png"),
                np.full((64, 96), 255 if c == "#" else 0, np.uint8),
            )
    capsys.readouterr()
    code, out, err = run([tmp_path / "out", tmp_path / "truth" / "GT", "--json", tmp_path / "r.json"], capsys)
    assert code == 0, err
    view = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]["detection"]
    pos, neg = view["per_sequence"]["pos"], view["per_sequence"]["neg"]
    assert pos["detected_from"] == "masks/ (non-empty)" and pos["fps"] == 25.0
    assert (pos["detected_gt_positive"], pos["gt_positive_frames"]) == (4, 9)  # frames 4-7 of 3-8
    assert pos["detected_gt_negative"] == 6  # 13-15 and 21-23
    assert [
        (e["time_to_first_detection_frames"], e["time_to_first_detection_seconds"])
        for e in pos["polyp_episodes"]
    ] == [(1, 0.04), (None, None)]  # 18-20: frame 19 was suppressed
    assert neg["false_alarm_episodes"] == 3 and neg["false_alarm_episodes_per_minute"] == pytest.approx(187.5)
    assert "scored probs/" in err  # the toolbox numbers still come from the probability maps
    # the detection view reads the run's frames.csv (present) rather than decoding every mask again; without
    # it (or with a row missing) it decodes the PNGs, and the view is the same
    import vpscli.metrics.detection as detection

    decoded = []
    real = detection._read_flags
    monkeypatch.setattr(detection, "_read_flags", lambda *a: decoded.append(1) or real(*a))
    run([tmp_path / "out", tmp_path / "truth" / "GT", "--json", tmp_path / "r2.json"], capsys)
    assert decoded == []
    for name in ("pos", "neg"):
        (tmp_path / "out" / name / "frames.csv").unlink()
    run([tmp_path / "out", tmp_path / "truth" / "GT", "--json", tmp_path / "r3.json"], capsys)
    assert len(decoded) == 48
    assert json.loads((tmp_path / "r3.json").read_text())["splits"]["."]["."]["detection"] == view


def test_gaps_in_gt_frame_numbers_split_episodes_and_are_named():
    from vpscli.metrics.detection import frame_gaps
    from vpscli.metrics.result_diagnostics import diagnose_detection

    names = [f"{i:05d}.png" for i in (1, 2, 3, 4, 10, 11, 12, 20)]
    assert frame_gaps(names) == ([4, 7], [(5, 9), (13, 19)])
    assert frame_gaps(["a.png", "b.png"]) == ([], [])
    # GT positive on 1-4 and 10-12: two episodes, not one; the second is detected at its second frame
    seq = sequence_detection(
        "gappy", flags("#######."), flags("..#...#."), fps=25.0, source="masks/", frame_names=names
    )
    assert seq.episodes == [EpisodeDetection(0, 4, 2), EpisodeDetection(4, 3, 2)]
    assert seq.gaps == [(5, 9), (13, 19)]
    consecutive = sequence_detection("x", flags("#######."), flags("..#...#."), fps=25.0, source="masks/")
    assert consecutive.episodes == [EpisodeDetection(0, 7, 2)]
    neg = sequence_detection(
        "neg", flags("........"), flags("...##..."), fps=25.0, source="masks/", frame_names=names
    )
    assert neg.false_alarm_episodes == 2  # frames 4 and 10 are not one run
    (gap,) = diagnose_detection({(".", "."): DatasetDetection([seq])})
    assert (gap.code, gap.severity) == ("gt-gap", "note")
    assert gap.text.startswith("gappy: GT frame numbers skip 5–9, 13–19;")


def test_evaluate_names_gaps_in_gt_numbering(tmp_path, capsys):
    import numpy as np

    from vpscli.io.masks import write_mask

    gt, pred = tmp_path / "gt" / "c", tmp_path / "pred" / "c"
    for i in (1, 2, 3, 4, 10, 11, 12):
        m = np.zeros((32, 32), np.uint8)
        m[8:20, 8:20] = 255
        write_mask(gt / f"{i:05d}.png", m)
        write_mask(pred / f"{i:05d}.png", m)
    code, out, err = run([tmp_path / "pred", tmp_path / "gt", "-m", "maxDice"], capsys)
    assert code == 0, err
    assert "c: GT frame numbers skip 5–9" in " ".join(err.split())


def test_the_detection_view_reuses_what_scoring_read(maps, monkeypatch):
    """Maps binarised at a threshold: the frames the scoring pass read are judged from its flags (GT
    positivity, the map's peak), the same view as reading them again; only the dropped ends are read."""
    import vpscli.metrics.detection as detection
    from vpscli.metrics import build_plan, evaluate_plan

    plan = build_plan(maps / "pred", maps / "gt")
    result = evaluate_plan(plan, ("maxDice",), workers=1)
    assert result.flags and all(isinstance(p, int) for _, p in result.flags.values())
    plain = detection.detection_view(plan, threshold=0.5)
    reads = []
    real = detection._read_flags
    monkeypatch.setattr(detection, "_read_flags", lambda *a: reads.append(a[1]) or real(*a))
    reused = detection.detection_view(plan, threshold=0.5, known=result.flags)
    assert {k: v.to_json() for k, v in reused.items()} == {k: v.to_json() for k, v in plain.items()}
    n_frames = sum(len(q.frames) for s in plan.splits for q in s.sequences)
    assert len(reads) == n_frames - len(result.flags) == 2 * sum(len(s.sequences) for s in plan.splits)
