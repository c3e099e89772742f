"""`vps segment --min-persistence`: short detections emptied, the false-alarm summary, resume, jobs, the CLI.

A scripted stand-in model flags exactly the frames a test names (a polyp-sized ellipse there, nothing
elsewhere), so every expected mask, row and count is known in advance.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from tests._models import scripted_stand_in
from vpscli.cli import main
from vpscli.engine import Segmenter, SegmentOptions, segment_many, segment_video
from vpscli.engine.frame_decision import frame_row
from vpscli.errors import OutputError
from vpscli.io.frames_csv import CSV_COLUMNS
from vpscli.io.masks import read_mask
from vpscli.io.sources import discover_sources, open_source
from vpscli.synth import SynthConfig, write_clip

#: which of the 24 frames the model flags: runs of 2 (at the start), 4, 1, 3, 1 and 3 (at the end)
PATTERN = "##..####..#..###...#.###"
KEPT_N3 = "....####.....###.....###"  # --min-persistence 3 keeps the runs of 3 and more


@pytest.fixture(scope="module")
def v24(tmp_path_factory):
    d = tmp_path_factory.mktemp("v24")
    write_clip(d, SynthConfig(frames=24, width=96, height=64, seed=4), "mp4", "v24")
    return d / "v24.mp4"


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def column(rows, key) -> str:
    return "".join("#" if r[key] == "1" else "." for r in rows)


def outputs(folder):
    """Every mask and probability PNG's pixels, and the frames.csv rows, of one output folder."""
    pngs = {
        f"{sub}/{p.name}": read_mask(p).array
        for sub in ("masks", "probs")
        for p in sorted((folder / sub).glob("*.png"))
    }
    return pngs, read_csv(folder / "frames.csv")


def assert_same_outputs(a, b):
    pngs_a, rows_a = outputs(a)
    pngs_b, rows_b = outputs(b)
    assert pngs_a.keys() == pngs_b.keys()
    for name in pngs_a:
        np.testing.assert_array_equal(pngs_a[name], pngs_b[name], err_msg=name)
    assert rows_a == rows_b


def test_short_detections_are_emptied_and_summarised(v24, tmp_path):
    seg = Segmenter(scripted_stand_in(PATTERN), device="cpu")
    opts = SegmentOptions(out_root=tmp_path / "n3", save_prob=True, min_persistence=3, expect_negative=True)
    report = segment_video(seg, open_source(v24), opts)
    raw = SegmentOptions(out_root=tmp_path / "n1", save_prob=True, min_persistence=1)
    segment_video(seg, open_source(v24), raw)
    out = tmp_path / "n3" / "v24"
    rows = read_csv(out / "frames.csv")
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert column(rows, "flagged") == PATTERN
    assert column(rows, "present") == KEPT_N3
    assert column(rows, "suppressed") == "##........#........#...."
    for i, row in enumerate(rows):
        mask = read_mask(out / "masks" / f"{i:06d}.png").array
        assert mask.any() == (KEPT_N3[i] == "#"), i
        if row["suppressed"] == "1":
            assert (
                row["area_fraction"] == "0.000000" and row["bbox_x"] == "" and float(row["max_prob"]) > 0.99
            )
        # the probability maps stay the model's raw output, suppressed frames included
        np.testing.assert_array_equal(
            read_mask(out / "probs" / f"{i:06d}.png").array,
            read_mask(tmp_path / "n1" / "v24" / "probs" / f"{i:06d}.png").array,
        )
    record = json.loads((out / "run.json").read_text())
    minutes = 24 / 25 / 60
    assert record["min_persistence"] == 3 and record["frames_with_polyp"] == 10
    assert record["false_alarm_summary"] == {
        "expect_negative": True,
        "frames": 24,
        "fps": 25.0,
        "flagged_frames_before_filter": 14,
        "flagged_frames_after_filter": 10,
        "suppressed_frames": 4,
        "episodes_before_filter": 6,
        "episodes_after_filter": 3,
        "longest_episode": {"first_frame": 4, "frames": 4, "seconds": 0.16},
        "false_alarm_episodes_per_minute_before_filter": round(6 / minutes, 4),
        "false_alarm_episodes_per_minute": round(3 / minutes, 4),
    }
    assert report.flags.flagged_after == 10 and report.frames_with_polyp == 10
    unfiltered = json.loads((tmp_path / "n1" / "v24" / "run.json").read_text())["false_alarm_summary"]
    assert (
        unfiltered["flagged_frames_after_filter"] == 14
        and unfiltered["false_alarm_episodes_per_minute"] is None
    )


@pytest.mark.parametrize("model", ["scripted", "pns-plus"])
def test_min_persistence_1_writes_exactly_what_the_model_gives(v24, weights, tmp_path, model):
    """N = 1 is today's output, bit for bit: masks, probabilities and rows are the engine's own."""
    seg = (
        Segmenter(scripted_stand_in(PATTERN), device="cpu")
        if model == "scripted"
        else Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    )
    segment_video(seg, open_source(v24), SegmentOptions(out_root=tmp_path, save_prob=True, min_persistence=1))
    out = tmp_path / "v24"
    rows = read_csv(out / "frames.csv")
    results = list(seg.run(open_source(v24)))
    assert len(rows) == len(results) == 24
    flagged = 0
    for row, r in zip(rows, results):
        np.testing.assert_array_equal(read_mask(out / "masks" / f"{r.name}.png").array > 0, r.mask)
        np.testing.assert_array_equal(read_mask(out / "probs" / f"{r.name}.png").array, r.prob)
        assert row == {k: str(v) for k, v in frame_row(r).items()}
        assert row["flagged"] == row["present"] and row["suppressed"] == "0"
        flagged += r.mask.any()
    if model == "scripted":
        assert flagged == PATTERN.count("#")


def _cut(clean, folder, keep: int) -> None:
    """``folder``: ``clean`` as an interrupt after ``keep`` written frames leaves it."""
    shutil.copytree(clean, folder)
    rows = read_csv(folder / "frames.csv")
    with open(folder / "frames.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows[:keep])
    for sub in ("masks", "probs"):
        for png in (folder / sub).glob("*.png"):
            if int(png.stem) >= keep:
                png.unlink()
    (folder / "overlay.mp4").unlink(missing_ok=True)
    record = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))


# cut inside the kept run of 4 (frames 4-7) after 2 and 3 of its frames, inside a run of 3, after a suppressed frame
@pytest.mark.parametrize("keep", [6, 7, 14, 20])
def test_resume_rebuilds_the_filter_from_the_rows_written(v24, tmp_path, keep):
    """Frames 6-7 continue a run begun before the cut: only the frames.csv flags of 4-5 tell the
    resumed run that the run is long enough to keep them."""
    seg = Segmenter(scripted_stand_in(PATTERN), device="cpu")
    opts = SegmentOptions(out_root=tmp_path / "clean", save_prob=True, overlay=False, min_persistence=3)
    segment_video(seg, open_source(v24), opts)
    _cut(tmp_path / "clean" / "v24", tmp_path / "cut" / "v24", keep)
    resumed = SegmentOptions(
        out_root=tmp_path / "cut", save_prob=True, overlay=False, min_persistence=3, resume=True
    )
    report = segment_video(seg, open_source(v24), resumed)
    assert report.status == "complete" and report.reused_masks == keep
    assert_same_outputs(tmp_path / "clean" / "v24", tmp_path / "cut" / "v24")
    assert (
        json.loads((tmp_path / "cut" / "v24" / "run.json").read_text())["false_alarm_summary"]
        == json.loads((tmp_path / "clean" / "v24" / "run.json").read_text())["false_alarm_summary"]
    )


def test_an_interrupt_drops_the_frames_the_filter_holds(v24, tmp_path):
    """Stopped after the model gave frames 13 and 14 (a run of 3 not yet complete): they are not written;
    --resume predicts them again and writes what an uninterrupted run writes."""
    seg = Segmenter(scripted_stand_in(PATTERN), device="cpu")
    opts = SegmentOptions(out_root=tmp_path / "clean", save_prob=True, min_persistence=3)
    segment_video(seg, open_source(v24), opts)
    engine_run = seg.run

    def stop_after_14(*args, **kwargs):
        for result in engine_run(*args, **kwargs):
            yield result
            if result.index == 14:
                raise KeyboardInterrupt

    seg.run = stop_after_14
    cut = SegmentOptions(out_root=tmp_path / "cut", save_prob=True, min_persistence=3)
    with pytest.raises(KeyboardInterrupt):
        segment_video(seg, open_source(v24), cut)
    folder = tmp_path / "cut" / "v24"
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    rows = read_csv(folder / "frames.csv")
    assert 1 <= len(rows) <= 13 and rows == read_csv(tmp_path / "clean" / "v24" / "frames.csv")[: len(rows)]
    assert sorted(p.stem for p in (folder / "masks").glob("*.png")) == [f"{i:06d}" for i in range(len(rows))]
    seg.run = engine_run
    cut = replace(cut, resume=True)
    assert segment_video(seg, open_source(v24), cut).status == "complete"
    assert_same_outputs(tmp_path / "clean" / "v24", folder)


def test_jobs_filter_each_video_as_one_at_a_time(v24, tmp_path):
    for k in range(2):
        shutil.copy(v24, tmp_path / f"v{k}.mp4")
    sources = discover_sources([str(tmp_path / "v0.mp4"), str(tmp_path / "v1.mp4")])
    seg = Segmenter(scripted_stand_in(PATTERN), device="cpu")
    for jobs in (1, 2):
        reports, failures = segment_many(
            seg,
            sources,
            SegmentOptions(out_root=tmp_path / f"j{jobs}", overlay=False, min_persistence=3),
            jobs=jobs,
        )
        assert not failures and [r.flags.flagged_after for r in reports] == [10, 10]
    for k in range(2):
        assert_same_outputs(tmp_path / "j1" / f"v{k}", tmp_path / "j2" / f"v{k}")
        assert column(read_csv(tmp_path / "j2" / f"v{k}" / "frames.csv"), "present") == KEPT_N3


def test_resume_refuses_another_min_persistence(v24, tmp_path):
    seg = Segmenter(scripted_stand_in(PATTERN), device="cpu")
    opts = SegmentOptions(out_root=tmp_path, overlay=False, min_persistence=3)
    segment_video(seg, open_source(v24), opts)
    _cut(tmp_path / "v24", tmp_path / "old" / "v24", 10)
    with pytest.raises(
        OutputError, match=r"--min-persistence 3.*fix: pass --min-persistence 3 to continue it"
    ):
        segment_video(
            seg,
            open_source(v24),
            SegmentOptions(out_root=tmp_path / "old", overlay=False, min_persistence=2, resume=True),
        )
    # a run written before the filter existed has no min_persistence: its masks are unfiltered, as N = 1 writes
    record = json.loads((tmp_path / "old" / "v24" / "run.json").read_text())
    del record["min_persistence"]
    (tmp_path / "old" / "v24" / "run.json").write_text(json.dumps(record))
    with pytest.raises(OutputError, match="made with --min-persistence 1"):
        segment_video(
            seg,
            open_source(v24),
            SegmentOptions(out_root=tmp_path / "old", overlay=False, min_persistence=3, resume=True),
        )


@pytest.mark.parametrize("value", ["0", "31", "-2"])
def test_cli_refuses_a_min_persistence_out_of_range(v24, tmp_path, capsys, value):
    code = main(["segment", str(v24), "-o", str(tmp_path), "--min-persistence", value])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        "--min-persistence must be between 1 and 30 frames" in err
        and "fix:" in err
        and "Traceback" not in err
    )
    assert not (tmp_path / "v24").exists()


def _scripted_cli(monkeypatch, pattern: str):
    """``vps segment`` in this process with the scripted model in place of the bundled weights."""
    import vpscli.weights.store
    from vpscli.weights.store import LoadedModel

    # the loader the CLI calls once per model: the scripted model in place of the bundled weights
    monkeypatch.setattr(
        vpscli.weights.store,
        "load_model",
        lambda model=None, weights=None: LoadedModel(scripted_stand_in(pattern)),
    )


def test_cli_summary_and_false_alarm_warning(v24, tmp_path, capsys, monkeypatch):
    _scripted_cli(monkeypatch, PATTERN)
    monkeypatch.setenv("COLUMNS", "250")
    code = main(
        [
            "segment",
            str(v24),
            "-o",
            str(tmp_path / "a"),
            "--min-persistence",
            "3",
            "--expect-negative",
            "--no-overlay",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    header, row = [line.split("  ") for line in out.splitlines()]  # piped: plain lines, cells 2 spaces apart
    cells = dict(zip([h.strip() for h in header if h.strip()], [c.strip() for c in row if c.strip()]))
    assert (cells["with polyp"], cells["flagged by model"], cells["episodes"]) == ("10", "14", "3")
    assert (
        cells["longest episode"] == "4 frames (0.16 s) from frame 4" and cells["false alarms/min"] == "187.50"
    )
    warning = "v24: 3 false-alarm episode(s) (187.50 per minute) on a video said to be polyp-free"
    assert warning in err
    # --quiet drops the table but never the warning
    code = main(
        [
            "segment",
            str(v24),
            "-o",
            str(tmp_path / "b"),
            "--min-persistence",
            "3",
            "--expect-negative",
            "--no-overlay",
            "--quiet",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0 and out == "" and warning in err
    # without --expect-negative flagged frames are detections: no warning, no false-alarm column
    code = main(["segment", str(v24), "-o", str(tmp_path / "c"), "--min-persistence", "3", "--no-overlay"])
    out, err = capsys.readouterr()
    assert (
        code == 0 and "false-alarm" not in err and "false alarms/min" not in out and "flagged by model" in out
    )


def test_edge_warning_names_what_the_edges_cleared():
    from vpscli.episodes import edge_warning, persistent

    def warn(pattern, n):
        flags = [c == "#" for c in pattern]
        return edge_warning(flags, persistent(flags, n), n)

    assert warn("##..####..#..###...#.###", 3) == (
        "2 flagged frames at the start (2 frames) were cleared: the video starts within a run shorter than "
        "--min-persistence 3; pass --min-persistence 1 to keep every detection"
    )
    assert "at the start (2 frames) and at the end (3 frames)" in warn("##..####..###", 4)
    assert "5 flagged frames" in warn("##..####..###", 4) and "starts or ends" in warn("##..####..###", 4)
    assert warn("#####", 6) == (
        "the video has 5 frames, fewer than --min-persistence 6, so none of its 5 flagged "
        "frames can be kept: pass --min-persistence 5 (or 1) to keep them"
    )
    # one frame: singular words, and one --min-persistence to name
    assert warn("#", 6) == (
        "the video has 1 frame, fewer than --min-persistence 6, so none of its 1 flagged frame can be kept: "
        "pass --min-persistence 1 to keep them"
    )
    assert warn("#.####", 3).startswith("1 flagged frame at the start (1 frame) was cleared")
    assert warn("..#..####..", 3) is None  # a short run inside the video: the filter's ordinary work
    assert warn("##..####..###", 1) is None and warn(".....", 6) is None and warn("", 6) is None


def test_a_clip_shorter_than_the_filter_warns_even_when_quiet(tmp_path, monkeypatch, capsys):
    """5 frames, all flagged, default --min-persistence 6: no mask can be kept, and vps says so on stderr
    (also under --quiet) and in run.json."""
    from vpscli.weights.store import LoadedModel

    write_clip(tmp_path, SynthConfig(frames=5, width=96, height=64, seed=71), "mp4", "five")
    monkeypatch.setattr(
        "vpscli.weights.store.load_model",
        lambda model=None, weights=None: LoadedModel(scripted_stand_in("#####")),
    )
    code = main(
        [
            "segment",
            str(tmp_path / "five.mp4"),
            "-o",
            str(tmp_path / "out"),
            "--no-overlay",
            "-q",
            "--device",
            "cpu",
        ]
    )
    assert code in (0, None)
    err = " ".join(capsys.readouterr().err.split())
    assert "the video has 5 frames, fewer than --min-persistence 6" in err and "--min-persistence 5" in err
    record = json.loads((tmp_path / "out" / "five" / "run.json").read_text())
    assert record["frames_with_polyp"] == 0 and any(
        "fewer than --min-persistence 6" in n for n in record["notes"]
    )


def _peaked_stand_in(peaks: str):
    """A stand-in whose ellipse on frame i peaks at probability 0.97 ("H"), 0.7 ("l") or nothing (".")."""
    import math

    import torch

    from vpscli.models.registry import get_spec
    from vpscli.models.stand_in import StandInModel

    level = {"H": 0.97, "l": 0.7}

    class Peaked(StandInModel):
        def step(self, clip, state, indices, anchor):
            logits = super().step(clip, state, indices, anchor)
            shift = torch.tensor(
                [
                    math.log(level[peaks[i]] / (1 - level[peaks[i]])) - 8.0 if peaks[i] in level else -16.0
                    for i in indices
                ]
            )
            return logits + shift[None, :, None, None, None]

    return Peaked(get_spec("pns-plus"))


def test_presence_level_decides_frames_before_the_filter(v24, tmp_path):
    """--presence 0.9: frames whose mask exists but whose peak stays below 0.9 are not flagged (empty mask,
    flagged 0), and the persistence filter then runs on what remains."""
    peaks = "HHHlHHHHllll....HHHHHHH."
    seg = Segmenter(_peaked_stand_in(peaks), device="cpu")
    plain = segment_video(
        seg, open_source(v24), SegmentOptions(out_root=tmp_path / "mask", min_persistence=3)
    )
    report = segment_video(
        seg, open_source(v24), SegmentOptions(out_root=tmp_path / "peak", min_persistence=3, presence=0.9)
    )
    rows = read_csv(tmp_path / "peak" / "v24" / "frames.csv")
    assert column(rows, "flagged") == "###.####........#######."
    assert column(rows, "present") == "###.####........#######."
    assert column(read_csv(tmp_path / "mask" / "v24" / "frames.csv"), "present") == "############....#######."
    for i, row in enumerate(rows):
        mask = read_mask(tmp_path / "peak" / "v24" / "masks" / f"{i:06d}.png").array
        assert mask.any() == (row["present"] == "1")
    assert report.frames_with_polyp == 14 and plain.frames_with_polyp == 19
    record = json.loads((tmp_path / "peak" / "v24" / "run.json").read_text())
    assert record["presence"] == 0.9
    with pytest.raises(OutputError, match="--presence"):
        segment_video(
            seg, open_source(v24), SegmentOptions(out_root=tmp_path / "peak", min_persistence=3, resume=True)
        )


def test_the_weights_calibrated_level_decides_when_presence_is_left_out(v24, tmp_path, monkeypatch):
    """Weights whose model card calibrates a presence level (0.9) get it without --presence: the same
    frames as --presence 0.9, recorded in run.json; --presence at the threshold gives back the mask rule,
    and a threshold above the card's level leaves the mask rule at that threshold."""
    peaks = "HHHlHHHHllll....HHHHHHH."
    monkeypatch.setattr(Segmenter, "card_presence", property(lambda self: 0.9))
    seg = Segmenter(_peaked_stand_in(peaks), device="cpu")
    segment_video(seg, open_source(v24), SegmentOptions(out_root=tmp_path / "card", min_persistence=3))
    segment_video(
        seg, open_source(v24), SegmentOptions(out_root=tmp_path / "rule", min_persistence=3, presence=0.5)
    )
    card = read_csv(tmp_path / "card" / "v24" / "frames.csv")
    assert column(card, "present") == "###.####........#######."
    assert column(read_csv(tmp_path / "rule" / "v24" / "frames.csv"), "present") == "############....#######."
    assert json.loads((tmp_path / "card" / "v24" / "run.json").read_text())["presence"] == 0.9
    assert json.loads((tmp_path / "rule" / "v24" / "run.json").read_text())["presence"] == 0.5
    strict = Segmenter(_peaked_stand_in(peaks), device="cpu", threshold=0.95)
    segment_video(strict, open_source(v24), SegmentOptions(out_root=tmp_path / "strict", min_persistence=3))
    assert json.loads((tmp_path / "strict" / "v24" / "run.json").read_text())["presence"] is None
    assert (
        column(read_csv(tmp_path / "strict" / "v24" / "frames.csv"), "present") == "###.####........#######."
    )


def test_cli_says_when_the_model_card_sets_the_frame_decision(v24, tmp_path, capsys, monkeypatch):
    """`vps segment` with weights whose card calibrates a level: one line says which level decides and how
    to get the mask rule; --presence given, nothing to say."""
    import vpscli.weights.store
    from vpscli.weights import WeightsEntry
    from vpscli.weights.store import LoadedModel

    card = WeightsEntry.from_json(
        {"file": "carded.safetensors", "model": "pns-plus", "sha256": "0" * 64, "presence": 0.9}, tmp_path
    )
    monkeypatch.setattr(
        vpscli.weights.store,
        "load_model",
        lambda model=None, weights=None: LoadedModel(
            _peaked_stand_in("HHHlHHHHllll....HHHHHHH."), entry=card
        ),
    )
    assert (
        main(["segment", str(v24), "-o", str(tmp_path / "a"), "--min-persistence", "3", "--no-overlay"]) == 0
    )
    err = capsys.readouterr().err
    assert "peak probability reaches 0.9, the level calibrated for carded.safetensors" in err
    assert "--presence 0.5: every frame whose mask has a pixel" in err
    record = json.loads((tmp_path / "a" / "v24" / "run.json").read_text())
    assert record["presence"] == 0.9 and record["frames_with_polyp"] == 14
    args = ["segment", str(v24), "-o", str(tmp_path / "b"), "--min-persistence", "3", "--no-overlay"]
    assert main([*args, "--presence", "0.5"]) == 0
    assert "level calibrated" not in capsys.readouterr().err
    assert json.loads((tmp_path / "b" / "v24" / "run.json").read_text())["frames_with_polyp"] == 19


def test_bundled_presence_levels_are_probabilities_above_the_threshold(tmp_path):
    """The manifest's calibrated levels: the default weights carry one, each lies above the default
    threshold, and a level that is not a probability is a malformed manifest, not a silent mask rule."""
    from vpscli.engine.options import ModelConfig
    from vpscli.errors import InputError
    from vpscli.weights import WeightsEntry, bundled_entries
    from vpscli.weights.manifest import default_entry

    default = default_entry()
    if default is None:
        pytest.skip("no weights bundled")
    assert default.presence is not None and ModelConfig.threshold < default.presence <= 1.0
    for entry in bundled_entries():
        assert entry.presence is None or ModelConfig.threshold < entry.presence <= 1.0, entry.file
    base = {"file": "x.safetensors", "model": "pns-net", "sha256": "0" * 64}
    assert WeightsEntry.from_json(base, tmp_path).presence is None
    assert WeightsEntry.from_json({**base, "presence": 0.85}, tmp_path).presence == 0.85
    for bad in ("high", 1.5, 0, float("nan")):
        with pytest.raises(InputError, match="presence level"):
            _ = WeightsEntry.from_json({**base, "presence": bad}, tmp_path).presence


def test_the_card_a_run_carries_is_found_without_loading_the_model(tmp_path):
    """What a Ray batch's driver reads to say which level decides: the card of the bundled weights a model
    name runs, of a bundled file named by its path or copied elsewhere, and none for other weights."""
    import shutil

    from vpscli.weights.manifest import default_entry
    from vpscli.weights.store import weights_card

    default = default_entry()
    if default is None:
        pytest.skip("no weights bundled")
    assert weights_card(default.model) == default and weights_card() == default
    copy = shutil.copy(default.path, tmp_path / "renamed.safetensors")
    assert weights_card(default.model, copy) == default
    other = tmp_path / "other.safetensors"
    other.write_bytes(default.path.read_bytes()[:-1] + b"x")  # another sha256
    assert weights_card(default.model, other) is None


def test_a_ray_driver_hashes_each_weights_file_once(tmp_path, monkeypatch):
    """The driver's "running" line and frame-decision notes of a batch whose videos share one weights file
    at two thresholds: the file is hashed once, and the card is still found for both."""
    import shutil

    import vpscli.weights.manifest as manifest
    import vpscli.weights.store as store
    from vpscli.batch.events import BatchEvents
    from vpscli.batch.jobs import VideoJob
    from vpscli.batch.runner import _say_what_runs_on_ray
    from vpscli.engine import ModelConfig, SegmentOptions
    from vpscli.weights.manifest import default_entry

    default = default_entry()
    if default is None:
        pytest.skip("no weights bundled")
    copy = shutil.copy(default.path, tmp_path / "renamed.safetensors")
    hashed = []
    real = manifest.sha256_file
    counting = lambda path, *a: hashed.append(str(path)) or real(path, *a)  # noqa: E731
    monkeypatch.setattr(manifest, "sha256_file", counting)
    monkeypatch.setattr(store, "sha256_file", counting)

    class Said(BatchEvents):
        def __init__(self):
            self.lines = []

        def running(self, message):
            self.lines.append(message)

        def notice(self, message):
            self.lines.append(message)

    jobs = [
        VideoJob(None, ModelConfig(weights=copy, threshold=t), SegmentOptions())  # type: ignore[arg-type]
        for t in (0.5, 0.4)
    ]
    said = Said()
    _say_what_runs_on_ray(jobs, said)
    assert hashed == [str(copy)]
    assert len(said.lines) == 3 and said.lines[0].startswith(f"{default.model} on ")
    assert all(f"the level calibrated for {default.file}" in line for line in said.lines[1:])


def test_presence_below_the_threshold_is_refused(v24, tmp_path):
    from vpscli.errors import UsageError

    with pytest.raises(UsageError, match="between the threshold"):
        segment_video(
            Segmenter(scripted_stand_in("#"), device="cpu", threshold=0.5),
            open_source(v24),
            SegmentOptions(out_root=tmp_path, presence=0.3),
        )
    assert not (tmp_path / "v24").exists()
    code = main(["segment", str(v24), "-o", str(tmp_path / "cli"), "--presence", "1.5"])
    assert code == 2 and not (tmp_path / "cli").exists()
