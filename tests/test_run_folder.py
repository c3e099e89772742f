"""RunFolder: the one definition of a ``vps segment`` output folder (names, frames.csv, run.json, finished frames),
and the sinks ``segment_video`` writes through."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from vpscli.io.atomic import partial_path
from vpscli.io.frames_csv import CSV_COLUMNS
from vpscli.io.masks import write_levels, write_mask
from vpscli.io.run_folder import (
    RunFolder,
    index_name,
    is_index_name,
    match_to_frames,
    number_files,
)
from vpscli.io.run_record import RunRecord


def _row(index: int, name: str, **cells) -> dict:
    return {
        **{c: "" for c in CSV_COLUMNS},
        "index": index,
        "name": name,
        "present": 1,
        "max_prob": "0.900000",
        **cells,
    }


def _write_csv(path: Path, rows: list[dict]) -> str:
    lines = [",".join(CSV_COLUMNS)] + [",".join(str(r[c]) for c in CSV_COLUMNS) for r in rows]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def test_index_names():
    assert index_name(0) == "000000" and index_name(123) == "000123" and index_name(1234567) == "1234567"
    assert is_index_name("000123") and is_index_name("1234567")
    assert not is_index_name("12345") and not is_index_name("case_000123") and not is_index_name("00012a")


def test_match_to_frames_by_name_index_and_order():
    by_name = [Path(f"m/case_{i}.png") for i in (1, 2, 3)]
    files, how = match_to_frames(by_name, ["case_1", "case_2", "case_3", "case_4"])
    assert how == "name" and [f.name if f else None for f in files] == [
        "case_1.png",
        "case_2.png",
        "case_3.png",
        None,
    ]
    by_index = [Path("m/000000.png"), Path("m/000002.png")]
    files, how = match_to_frames(by_index, ["a", "b", "c"])
    assert how == "index" and [f.name if f else None for f in files] == ["000000.png", None, "000002.png"]
    # same count, one frame left without a file: the folder was renamed wholesale, so natural order
    renamed = [Path("m/x1.png"), Path("m/x2.png")]
    files, how = match_to_frames(renamed, ["a", "b"])
    assert how == "order" and [f.name for f in files] == ["x1.png", "x2.png"]
    files, how = match_to_frames([Path("m/x1.png")], ["a", "b"])
    assert how == "order" and files == [Path("m/x1.png"), None]


def test_number_files_uses_indices_only_when_every_name_is_one():
    strided = [Path("000000.png"), Path("000004.png"), Path("000002.png")]
    assert number_files(strided) == [
        (0, Path("000000.png")),
        (2, Path("000002.png")),
        (4, Path("000004.png")),
    ]
    mixed = [Path("000000.png"), Path("frame.png")]
    assert number_files(mixed) == [(0, Path("000000.png")), (1, Path("frame.png"))]


def test_layout_and_which_folder_a_mask_folder_belongs_to(tmp_path):
    run = RunFolder(tmp_path / "clip")
    assert run.mask_path("000007") == tmp_path / "clip" / "masks" / "000007.png"
    assert run.prob_path("a") == tmp_path / "clip" / "probs" / "a.png"
    assert (run.frames_csv.name, run.run_json.name, run.overlay_path.name) == (
        "frames.csv",
        "run.json",
        "overlay.mp4",
    )
    assert RunFolder.of(tmp_path / "clip" / "probs").path == tmp_path / "clip"
    assert RunFolder.of(tmp_path / "clip").path == tmp_path / "clip"
    assert RunFolder.of_mask_folder(tmp_path / "clip" / "my_masks").path == tmp_path / "clip"
    assert run.is_empty()
    run.masks_dir.mkdir(parents=True)
    assert not run.is_empty() and run.scored_folder() == run.masks_dir
    run.probs_dir.mkdir()
    assert run.scored_folder() == run.probs_dir and run.scored_folder(use_masks=True) == run.masks_dir


def test_status_and_partial_warning(tmp_path):
    run = RunFolder(tmp_path / "clip")
    run.masks_dir.mkdir(parents=True)
    assert run.record() == {} and run.status() is None and run.partial_warning() is None
    run.write_record(
        RunRecord.from_json(
            {
                "status": "partial",
                "partial": {
                    "frames_decoded": 7,
                    "frames_expected": 10,
                    "reason": "decoding stopped at frame 7 of 10",
                },
            }
        )
    )
    assert json.loads(run.run_json.read_text())["status"] == "partial"
    assert run.status() == "partial" and run.run_record().is_finished
    # found from the masks/ folder as well (run.json one level up)
    masks_view = RunFolder.of_mask_folder(run.masks_dir)
    assert masks_view.record_path() == run.run_json
    assert masks_view.partial_warning() == (
        f"{run.path}: partial run (7 of 10 frames): decoding stopped at frame 7 "
        "of 10; frames after the damage have no masks"
    )
    run.write_record(RunRecord.from_json({"status": "interrupted", "frames": 4}))
    assert not run.run_record().is_finished
    assert "was interrupted after 4 frames" in run.partial_warning()
    run.run_json.write_text("{not json")
    assert run.status() is None


def test_rows_merge_the_saved_and_the_partial_file(tmp_path):
    run = RunFolder(tmp_path)
    _write_csv(run.frames_csv, [_row(0, "000000"), _row(1, "000001", flagged="")])
    text = _write_csv(partial_path(run.frames_csv), [_row(2, "000002", present=0, flagged=1, suppressed=1)])
    partial_path(run.frames_csv).write_text(text + "3,000003,0.1")  # a killed writer's unfinished line
    rows = run.rows()
    assert list(rows) == ["000000", "000001", "000002"]
    assert rows["000002"]["suppressed"] == "1"
    # a row written before the persistence filter has no flagged cell: its mask is the model's
    assert RunFolder.row_flagged(rows["000001"]) and RunFolder.row_flagged(rows["000002"])
    assert not RunFolder.row_flagged({"present": "0", "flagged": ""})
    assert run.max_probs() == {0: 0.9, 1: 0.9}  # the saved file only


def test_finished_frames_need_whole_pngs_and_a_row(tmp_path):
    run = RunFolder(tmp_path)
    run.masks_dir.mkdir()
    run.probs_dir.mkdir()
    for name in ("000000", "000001", "000002"):
        write_mask(run.mask_path(name), np.eye(4, dtype=bool))
    write_levels(run.prob_path("000000"), np.full((4, 4), 9, np.uint8))
    cut = run.mask_path("000001").read_bytes()
    run.mask_path("000001").write_bytes(cut[:-5])  # cut short: not whole
    _write_csv(run.frames_csv, [_row(0, "000000"), _row(1, "000001")])  # 000002 has PNGs but no row
    assert run.finished(with_probs=False) == {"000000"}
    assert run.finished(with_probs=True) == {"000000"}
    assert run.finished(with_probs=True, rows={"000002": {}}) == set()  # no probability map
    assert run.finished(with_probs=False, rows={"000002": {}}) == {"000002"}


def test_keep_finished_rows_keeps_rows_and_pngs_of_the_same_frames(tmp_path):
    run = RunFolder(tmp_path)
    run.masks_dir.mkdir()
    for name in ("000000", "000001", "000003"):
        write_mask(run.mask_path(name), np.eye(4, dtype=bool))
    _write_csv(run.frames_csv, [_row(1, "000001")])
    _write_csv(partial_path(run.frames_csv), [_row(0, "000000"), _row(2, "000002")])  # 000002: no PNG
    run.keep_finished_rows(with_probs=False)
    with open(run.frames_csv, newline="") as f:
        assert [r["name"] for r in csv.DictReader(f)] == ["000000", "000001"]
    assert sorted(p.name for p in run.masks_dir.iterdir()) == ["000000.png", "000001.png"]  # 000003: no row
    assert not partial_path(run.frames_csv).exists()


def test_row_writer_commits_whole_files_only(tmp_path):
    run = RunFolder(tmp_path)
    rows = run.open_rows()
    rows.write(_row(0, "000000"))
    assert not run.frames_csv.exists() and partial_path(run.frames_csv).read_text().count("\n") == 2
    rows.commit()
    assert run.rows()["000000"]["max_prob"] == "0.900000" and not partial_path(run.frames_csv).exists()


def test_a_library_sink_replaces_the_frame_outputs(clip, weights, tmp_path):
    from vpscli.engine import Segmenter, SegmentOptions, segment_video
    from vpscli.engine.run_loop import Sink, default_sinks
    from vpscli.io.sources import open_source

    class Collect(Sink):
        def __init__(self):
            self.names, self.closed, self.with_probs = [], False, []

        def write(self, frame):
            self.names.append(frame.result.name)
            self.with_probs.append(frame.result.prob is not None)

        def close(self):
            self.closed = True

    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu", threshold=0.5)
    collect = Collect()
    opts = SegmentOptions(out_root=tmp_path / "only", overlay=False, min_persistence=1)
    report = segment_video(seg, open_source(clip / "vid.mp4"), opts, sinks=lambda *args: [collect])
    run = RunFolder(tmp_path / "only" / "vid")
    assert collect.names == [index_name(i) for i in range(11)] and collect.closed
    assert report.frames == 11 and run.status() == "complete" and not any(run.masks_dir.iterdir())
    assert all(collect.with_probs)  # a sink gets the probability maps unless it says it does not use them
    masks_only = Collect()
    masks_only.uses_probs = False
    opts = SegmentOptions(out_root=tmp_path / "masks-only", overlay=False, min_persistence=1)
    segment_video(seg, open_source(clip / "vid.mp4"), opts, sinks=lambda *args: [masks_only])
    assert masks_only.names == collect.names and not any(masks_only.with_probs)
    # extending the defaults writes the usual folder as well
    both = Collect()
    opts = SegmentOptions(out_root=tmp_path / "both", overlay=False, min_persistence=1)
    segment_video(seg, open_source(clip / "vid.mp4"), opts, sinks=lambda *args: default_sinks(*args) + [both])
    run = RunFolder(tmp_path / "both" / "vid")
    assert both.names == collect.names and run.finished(with_probs=False) == set(collect.names)


def test_a_run_record_without_a_version_reads_as_the_first_layout_and_keeps_its_keys(tmp_path):
    """run.json files written before the record carried its version: layout 1, their identity's missing
    fields taken as their writer used them, and every key kept when written back."""
    from vpscli.io.run_record import RECORD_VERSION, RunRecord

    old = {
        "status": "complete",
        "started": "2026-01-02T03:04:05+00:00",
        "source_fingerprint": "abc",
        "model": "pns-plus",
        "input_size": [256, 448],
        "weights_sha256": "f00",
        "threshold": 0.5,
        "source": "clip.mp4",
        "outputs": {"masks": "masks/", "probs": None},
        "frames": 11,
        "frames_with_polyp": 4,
        "finished": "2026-01-02T03:05:00+00:00",
        "written_by_a_later_vps": True,
    }
    record = RunRecord.from_json(old)
    assert record.record_version == 1 == RECORD_VERSION and record.is_finished
    assert (record.identity.min_persistence, record.identity.tta, record.identity.presence) == (
        1,
        False,
        None,
    )
    assert record.frames == 11 and record.result.frames_with_polyp == 4
    again = record.to_json()
    assert again["record_version"] == 1 and {k: again[k] for k in old} == old
    run = RunFolder(tmp_path / "clip")
    run.path.mkdir()
    run.write_record(record)
    assert run.run_record() == record and run.record()["written_by_a_later_vps"] is True
