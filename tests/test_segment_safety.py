"""`vps segment` never loses or mixes work: full disks, kills, resumes of another input, name
collisions, failed redos, bad options, unwritable folders, truncated inputs.

Each test reproduces a defect a new user found (issue "Reliable everywhere"); they failed before it.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests._media import ffmpeg
from vpscli.engine import Segmenter, SegmentOptions, segment_video
from vpscli.errors import OutputError
from vpscli.io.masks import is_complete_png, read_mask
from vpscli.io.sources import open_source
from vpscli.synth import SynthConfig, write_clip


def vps(*args, cwd, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "vpscli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=timeout,
    )


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def outputs_of(folder: Path) -> dict[str, np.ndarray]:
    """Every mask and probability PNG of a run folder, by relative path."""
    return {
        str(p.relative_to(folder)): read_mask(p).array
        for sub in ("masks", "probs")
        for p in sorted((folder / sub).glob("*.png"))
    }


def assert_same_outputs(a: Path, b: Path, n: int) -> None:
    got, want = outputs_of(a), outputs_of(b)
    assert sorted(got) == sorted(want) and len(want) >= n
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def stop_at(index: int):
    def on_frame(result):
        if result.index == index:
            raise KeyboardInterrupt

    return on_frame


@pytest.fixture(scope="module")
def seg(weights):
    return Segmenter("pns-plus", weights["pns-plus"], device="cpu")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two different 24-frame clips that share a file name, and a plain one."""
    d = tmp_path_factory.mktemp("clips")
    write_clip(d / "A", SynthConfig(frames=24, width=96, height=64, seed=21), "mp4", "clip")
    write_clip(d / "B", SynthConfig(frames=24, width=96, height=64, seed=22), "mp4", "clip")
    return d


# ---------------------------------------------------------------- defect 1: a full disk


@pytest.mark.numerics
def test_disk_full_stops_at_the_first_failed_write_and_resume_trusts_only_whole_files(
    seg, clips, tmp_path, monkeypatch
):
    import vpscli.io.masks as masks_module
    from vpscli.io.atomic import output_error

    real, calls = masks_module.write_bytes_atomic, {"n": 0}

    def fills_up(path, data):
        calls["n"] += 1
        if calls["n"] > 10:  # the disk fills after 10 PNGs
            raise output_error(Path(path), OSError(errno.ENOSPC, "No space left on device"))
        return real(path, data)

    monkeypatch.setattr(masks_module, "write_bytes_atomic", fills_up)
    opts = SegmentOptions(out_root=tmp_path / "out", save_prob=True)
    with pytest.raises(OutputError, match="disk full while writing") as e:
        segment_video(seg, open_source(clips / "A" / "clip.mp4"), opts)
    assert "free disk space" in e.value.one_line()
    out = tmp_path / "out" / "clip"
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and "disk full" in record["error"]
    assert not (out / "overlay.mp4").exists() and not list(out.rglob(".*partial*"))
    rows = read_csv(out / "frames.csv")
    assert 0 < len(rows) <= 5  # only frames whose PNGs (mask + prob) are both whole
    assert all(is_complete_png(out / "masks" / f"{r['name']}.png") for r in rows)
    # An older vps left zero-byte PNGs under real names (cv2.imwrite "succeeded"): never trusted.
    (out / "masks" / f"{rows[-1]['name']}.png").write_bytes(b"")
    monkeypatch.setattr(masks_module, "write_bytes_atomic", real)
    opts = replace(opts, resume=True)
    rep = segment_video(seg, open_source(clips / "A" / "clip.mp4"), opts)
    assert rep.status == "complete" and rep.reused_masks == len(rows) - 1
    segment_video(
        seg,
        open_source(clips / "A" / "clip.mp4"),
        SegmentOptions(out_root=tmp_path / "clean", save_prob=True, overlay=False),
    )
    assert_same_outputs(out, tmp_path / "clean" / "clip", 48)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 96 KiB file system (tmpfs), where the machine lets tests mount one (root on Linux)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mnt)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_on_a_real_small_disk(weights, tiny_tmpfs, tmp_path):
    """The user's repro: `vps segment clip.mp4 -o tiny/out` on a tiny tmpfs — one line, exit 1, no cut file;
    with space again, --resume completes."""
    write_clip(tmp_path, SynthConfig(frames=30, width=640, height=480, seed=23), "mp4", "big")
    args = [
        "segment",
        tmp_path / "big.mp4",
        "-m",
        "pns-plus",
        "-w",
        weights["pns-plus"],
        "--device",
        "cpu",
        "--save-prob",
        "-q",
        "-o",
        tiny_tmpfs / "out",
    ]
    r = vps(*args, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("running:")]  # what ran
    assert len(lines) == 1 and "disk full while writing" in lines[0], r.stderr
    assert "libpng" not in r.stderr and "Traceback" not in r.stderr
    out = tiny_tmpfs / "out" / "big"
    for png in list((out / "masks").glob("*.png")) + list((out / "probs").glob("*.png")):
        assert is_complete_png(png), png
    assert json.loads((out / "run.json").read_text())["status"] in (
        "failed",
        "running",
    )  # run.json may not fit
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_tmpfs)], check=True)
    r = vps(*args, "--resume", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (
        len(read_csv(out / "frames.csv")) == 30
        and json.loads((out / "run.json").read_text())["status"] == "complete"
    )


# ---------------------------------------------------------------- defect 2: --resume of another input


def test_resume_refuses_an_earlier_run_of_another_source_model_or_threshold(seg, weights, clips, tmp_path):
    opts = SegmentOptions(out_root=tmp_path / "o", overlay=False)
    with pytest.raises(KeyboardInterrupt):
        segment_video(seg, open_source(clips / "A" / "clip.mp4"), opts, on_frame=stop_at(9))
    kept = sorted((tmp_path / "o" / "clip" / "masks").glob("*.png"))
    before = {p.name: p.read_bytes() for p in kept}
    opts = replace(opts, resume=True)
    with pytest.raises(OutputError, match="another source file") as e:  # same name, another video
        segment_video(seg, open_source(clips / "B" / "clip.mp4"), opts)
    assert "--overwrite" in e.value.fix
    other = Segmenter("pns-plus", weights["pns-plus"], device="cpu", threshold=0.7)
    with pytest.raises(OutputError, match="another threshold"):
        segment_video(other, open_source(clips / "A" / "clip.mp4"), opts)
    with pytest.raises(OutputError, match="another model"):
        segment_video(
            Segmenter("pns-net", weights["pns-net"], device="cpu"),
            open_source(clips / "A" / "clip.mp4"),
            opts,
        )
    assert {
        p.name: p.read_bytes() for p in sorted((tmp_path / "o" / "clip" / "masks").glob("*.png"))
    } == before
    assert segment_video(seg, open_source(clips / "A" / "clip.mp4"), opts).status == "complete"
    # a finished run is not skipped for another file either: that would keep A's masks under B's name
    with pytest.raises(OutputError, match="another source file"):
        segment_video(seg, open_source(clips / "B" / "clip.mp4"), opts)
    record = json.loads((tmp_path / "o" / "clip" / "run.json").read_text())
    del record["source_fingerprint"]  # as an older vps wrote it
    (tmp_path / "o" / "clip" / "run.json").write_text(json.dumps(record))
    with pytest.raises(OutputError, match="older vps"):
        segment_video(seg, open_source(clips / "A" / "clip.mp4"), opts)


# ---------------------------------------------------------------- defect 3: same-stem inputs


def test_inputs_with_one_name_get_their_own_folders_in_any_order(weights, clips, tmp_path):
    common = [
        "-m",
        "pns-plus",
        "-w",
        weights["pns-plus"],
        "--device",
        "cpu",
        "-o",
        tmp_path / "o",
        "-q",
        "--no-overlay",
    ]
    r = vps("segment", clips / "A" / "clip.mp4", clips / "B" / "clip.mp4", *common, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name, src in (("A_clip", "A"), ("B_clip", "B")):
        record = json.loads((tmp_path / "o" / name / "run.json").read_text())
        assert record["status"] == "complete" and record["source"] == str(clips / src / "clip.mp4")
    assert not (tmp_path / "o" / "clip").exists()
    r = vps("segment", clips / "B" / "clip.mp4", clips / "A" / "clip.mp4", *common, "--resume", cwd=tmp_path)
    assert r.returncode == 0, r.stderr  # reversed order: the same folders, both finished and skipped
    # the same two run folders (beside them, the batch summary)
    assert sorted(p.name for p in (tmp_path / "o").iterdir() if p.is_dir()) == ["A_clip", "B_clip"]
    assert json.loads((tmp_path / "o" / "batch.json").read_text())["statuses"] == {"skipped": 2}


# ---------------------------------------------------------------- defect 4: --overwrite


def test_overwrite_replaces_only_once_the_new_run_has_finished(seg, clips, tmp_path):
    good = SegmentOptions(out_root=tmp_path / "o", overlay=False)
    segment_video(seg, open_source(clips / "A" / "clip.mp4"), good)
    out = tmp_path / "o" / "clip"
    before = outputs_of(out)
    record = json.loads((out / "run.json").read_text())
    (tmp_path / "lossdir").mkdir()
    (tmp_path / "lossdir" / "clip.mp4").write_bytes(os.urandom(5000))  # unreadable
    redo = SegmentOptions(out_root=tmp_path / "o", overlay=False, overwrite=True)
    with pytest.raises(Exception, match="not a readable video"):
        segment_video(seg, open_source(tmp_path / "lossdir" / "clip.mp4"), redo)
    with pytest.raises(KeyboardInterrupt):  # a redo interrupted half-way
        segment_video(seg, open_source(clips / "B" / "clip.mp4"), redo, on_frame=stop_at(12))
    assert outputs_of(out).keys() == before.keys() and all(
        np.array_equal(outputs_of(out)[k], v) for k, v in before.items()
    )
    assert json.loads((out / "run.json").read_text()) == record
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["clip"], "no staging folder left"
    rep = segment_video(seg, open_source(clips / "B" / "clip.mp4"), redo)
    assert rep.status == "complete" and rep.out_dir == out
    assert json.loads((out / "run.json").read_text())["source"] == str(clips / "B" / "clip.mp4")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["clip"]


def test_a_folder_of_other_files_is_never_taken_for_a_run_nor_replaced(seg, clips, tmp_path):
    notes = tmp_path / "o" / "clip"
    notes.mkdir(parents=True)
    (notes / "report.docx").write_bytes(b"a clinician's notes")
    for flags in ({}, {"resume": True}, {"overwrite": True}):
        opts = SegmentOptions(out_root=tmp_path / "o", overlay=False, **flags)
        with pytest.raises(OutputError, match="not a vps run") as e:
            segment_video(seg, open_source(clips / "A" / "clip.mp4"), opts)
        assert "choose another --out" in e.value.fix
    assert sorted(p.name for p in notes.iterdir()) == ["report.docx"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["clip"]


# ---------------------------------------------------------------- defect 6: kill -9 and SIGTERM


def _start(args, out: Path, n_masks: int, timeout=180):
    """Start `vps segment` in the background and return once it has written ``n_masks`` masks."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpscli", *map(str, args), "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    masks = out / "long" / "masks"
    deadline = time.time() + timeout
    while time.time() < deadline and len(list(masks.glob("*.png"))) < n_masks and proc.poll() is None:
        time.sleep(0.02)
    return proc


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("long")
    write_clip(d, SynthConfig(frames=48, width=96, height=64, seed=24), "mp4", "long")
    return d / "long.mp4"


@pytest.mark.numerics
def test_kill_9_keeps_rows_for_the_frames_written(weights, long_clip, tmp_path):
    args = [
        "segment",
        long_clip,
        "-m",
        "pns-plus",
        "-w",
        weights["pns-plus"],
        "--device",
        "cpu",
        "--save-prob",
        "--no-overlay",
    ]
    proc = _start(args, tmp_path / "cut", 20)
    proc.kill()
    proc.wait(timeout=30)
    out = tmp_path / "cut" / "long"
    rows = read_csv(next(out.glob(".frames.partial.csv")))  # a killed run leaves its rows on disk
    whole = [p for p in (out / "masks").glob("*.png") if is_complete_png(p)]
    if len(whole) == 48:
        pytest.skip("the run finished before the kill arrived")
    assert rows and all(is_complete_png(out / "masks" / f"{r['name']}.png") for r in rows)
    assert len(rows) >= len(whole) - 9  # rows follow their PNGs; at most the in-flight writes lack one
    r = vps(*args, "-o", tmp_path / "cut", "--resume", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    record = json.loads((out / "run.json").read_text())
    # PNS+ runs whole 5-frame clips: only the clips with a frame left are computed again
    assert record["resumed_with_existing_masks"] >= len(rows) and record["frames_computed"] <= 48 - 5 * (
        len(rows) // 5
    )
    r = vps(*args, "-o", tmp_path / "clean", "-q", cwd=tmp_path)
    assert_same_outputs(out, tmp_path / "clean" / "long", 96)


def test_sigterm_stops_like_ctrl_c(weights, long_clip, tmp_path):
    args = ["segment", long_clip, "-m", "pns-plus", "-w", weights["pns-plus"], "--device", "cpu"]
    proc = _start(args, tmp_path / "o", 8)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 143, err
    assert "terminated" in err and "--resume" in err and "Traceback" not in err
    out = tmp_path / "o" / "long"
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert not list(out.rglob(".*partial*"))
    assert len(read_csv(out / "frames.csv")) == len(list((out / "masks").glob("*.png"))) > 0
    r = vps(*args, "-o", tmp_path / "o", "--resume", "-q", cwd=tmp_path)
    assert r.returncode == 0 and json.loads((out / "run.json").read_text())["status"] == "complete"


# ---------------------------------------------------------------- defects 8, 9: options and folders first


@pytest.mark.parametrize("fps", ["0", "-5", "nan"])
def test_bad_fps_is_a_usage_error_before_any_work(clip, tmp_path, fps):
    r = vps("segment", clip / "Frame" / "odd", "--fps", fps, "-o", tmp_path / "o", cwd=tmp_path)
    assert r.returncode == 2 and "--fps must be" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.fixture
def make_read_only():
    """Makes a folder nobody may write in: a read-only bind mount as root (chmod does not stop root),
    else chmod 555."""
    mounted, chmoded = [], []

    def make(folder: Path) -> None:
        if os.geteuid() != 0:
            folder.chmod(0o555)
            chmoded.append(folder)
            return
        if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
            pytest.skip("cannot bind-mount here")
        mounted.append(folder)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True, capture_output=True)

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    for folder in chmoded:
        folder.chmod(0o755)


def test_unwritable_masks_folder_is_reported_before_inference(weights, clips, make_read_only, tmp_path):
    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    opts = SegmentOptions(out_root=tmp_path, overlay=False)
    with pytest.raises(KeyboardInterrupt):
        segment_video(seg, open_source(clips / "A" / "clip.mp4"), opts, on_frame=stop_at(5))
    make_read_only(tmp_path / "clip" / "masks")
    started = []
    seg.init_state = lambda source: started.append(source)  # would start decoding
    opts = replace(opts, resume=True)
    with pytest.raises(OutputError, match="cannot write in this folder") as e:
        segment_video(seg, open_source(clips / "A" / "clip.mp4"), opts)
    assert e.value.path == str(tmp_path / "clip" / "masks")
    assert "Read-only file system" in str(e.value) or "Permission denied" in str(e.value)
    assert not started, "no frame may be decoded before the outputs are known to be writable"


# ---------------------------------------------------------------- truncated inputs are partial


@pytest.fixture(scope="module")
def truncated(tmp_path_factory):
    """A constant 25 fps H.264 file of 100 frames (index at the front) cut at 55 % of its bytes."""
    d = tmp_path_factory.mktemp("trunc")
    full = d / "full.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=96x64:rate=25",
        "-frames:v",
        "100",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        str(full),
    )
    data = full.read_bytes()
    (d / "cut.mp4").write_bytes(data[: int(len(data) * 0.55)])
    return d / "cut.mp4"


def test_a_truncated_video_is_partial_with_its_own_exit_code(weights, truncated, tmp_path):
    args = [
        "segment",
        truncated,
        "-m",
        "pns-plus",
        "-w",
        weights["pns-plus"],
        "--device",
        "cpu",
        "-o",
        tmp_path,
        "--quiet",
    ]
    r = vps(*args, cwd=tmp_path)
    assert r.returncode == 4, r.stderr
    assert "decoding stopped at frame" in r.stderr and "partial" in r.stderr  # --quiet keeps warnings
    record = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert record["status"] == "partial"
    decoded = record["partial"]["frames_decoded"]
    assert record["partial"]["frames_expected"] == 100 and 0 < decoded < 100
    assert len(list((tmp_path / "cut" / "masks").glob("*.png"))) == decoded == record["frames"]
    r = vps(*args, "--resume", cwd=tmp_path)  # finished as far as it goes: skipped, not redone
    assert r.returncode == 0 and "already segmented" not in r.stderr


# ---------------------------------------------------------------- what the numbers depend on


@pytest.mark.numerics
def test_run_json_records_the_numerics_and_a_resume_that_changes_them(weights, clips, tmp_path):
    # fp32 named: torch's `auto` is bf16 on a CPU with AMX
    one = Segmenter("pns-plus", weights["pns-plus"], device="cpu", precision="fp32")
    opts = SegmentOptions(out_root=tmp_path, overlay=False)
    with pytest.raises(KeyboardInterrupt):
        segment_video(one, open_source(clips / "A" / "clip.mp4"), opts, on_frame=stop_at(12))
    import torch

    record = json.loads((tmp_path / "clip" / "run.json").read_text())
    assert record["numerics"] == {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "precision": "fp32",
        "batch": 1,
        "backend": f"torch {torch.__version__} fp32",
    }
    opts = replace(opts, resume=True)
    segment_video(
        Segmenter("pns-plus", weights["pns-plus"], device="cpu", precision="fp32", batch=2),
        open_source(clips / "A" / "clip.mp4"),
        opts,
    )
    notes = json.loads((tmp_path / "clip" / "run.json").read_text())["notes"]
    assert any("resumed with another batch" in n and "not bit for bit" in n for n in notes), notes


# ---------------------------------------------------------------- defect 12: threads set deliberately


def test_model_threads_leave_a_cpu_to_the_pipeline(monkeypatch):
    from vpscli.engine.device import model_cpu_threads, usable_cpus
    from vpscli.errors import UsageError

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert model_cpu_threads() == max(1, usable_cpus() - 1)
    monkeypatch.setattr("vpscli.engine.device.usable_cpus", lambda: 16)
    assert model_cpu_threads() == 15 and model_cpu_threads(4) == 4
    monkeypatch.setattr("vpscli.engine.device.usable_cpus", lambda: 1)
    assert model_cpu_threads() == 1
    assert model_cpu_threads(runtime="openvino") == 1
    monkeypatch.setattr("vpscli.engine.device.usable_cpus", lambda: 2)
    assert model_cpu_threads() == 1 and model_cpu_threads(runtime="onnxruntime") == 1
    assert model_cpu_threads(runtime="openvino") == 2 and model_cpu_threads(3, "openvino") == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert model_cpu_threads() is None and model_cpu_threads(runtime="openvino") is None  # the user's choice
    with pytest.raises(UsageError, match="--threads must be at least 1"):
        model_cpu_threads(0)


def test_cli_records_the_threads_it_chose(weights, clip, tmp_path):
    from vpscli.engine.device import usable_cpus

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    args = [
        "-m",
        "vpscli",
        "segment",
        str(clip / "vid.mp4"),
        "-m",
        "pns-net",
        "-w",
        str(weights["pns-net"]),
        "--device",
        "cpu",
        "-q",
        "--no-overlay",
    ]
    r = subprocess.run(
        [sys.executable, *args, "-o", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    numerics = json.loads((tmp_path / "a" / "vid" / "run.json").read_text())["numerics"]
    # torch keeps a CPU for the pipeline; OpenVINO (what --backend auto runs where installed) shares them all
    on_openvino = numerics["backend"].startswith("openvino")
    assert numerics["threads"] == (usable_cpus() if on_openvino else max(1, usable_cpus() - 1))
    r = subprocess.run(
        [sys.executable, *args, "--threads", "3", "-o", str(tmp_path / "b")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert (
        r.returncode == 0
        and json.loads((tmp_path / "b" / "vid" / "run.json").read_text())["numerics"]["threads"] == 3
    )


def test_an_interrupt_between_a_png_and_its_row_leaves_no_orphan(tmp_path):
    """A SIGTERM can land after a frame's PNG is written and before its frames.csv row: the cleanup
    keeps rows and PNGs of the same frames (the orphan is predicted again by --resume anyway)."""
    import numpy as np

    from vpscli.io.atomic import partial_path
    from vpscli.io.frames_csv import CSV_COLUMNS
    from vpscli.io.masks import write_levels, write_mask
    from vpscli.io.run_folder import RunFolder

    out = tmp_path / "run"
    for sub in ("masks", "probs"):
        (out / sub).mkdir(parents=True)
    for name in ("000000", "000001", "000002"):
        write_mask(out / "masks" / f"{name}.png", np.eye(4, dtype=bool))
        write_levels(out / "probs" / f"{name}.png", np.full((4, 4), 7, np.uint8))
    row = {c: "" for c in CSV_COLUMNS}
    lines = [",".join(CSV_COLUMNS)] + [
        ",".join(str(v) for v in {**row, "index": i, "name": f"00000{i}", "present": 1}.values())
        for i in (0, 1)
    ]
    partial_path(out / "frames.csv").write_text("\n".join(lines) + "\n")
    RunFolder(out).keep_finished_rows(with_probs=True)
    assert [r["name"] for r in read_csv(out / "frames.csv")] == ["000000", "000001"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["000000.png", "000001.png"]
    assert sorted(p.name for p in (out / "probs").iterdir()) == ["000000.png", "000001.png"]
    assert not partial_path(out / "frames.csv").exists()
