"""Video I/O: probe, readers and the H.264 writer, on files made by the bundled ffmpeg."""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest

from tests._media import decode_with_ffmpeg, ffmpeg, make_testsrc, make_truncated_clip, smooth_frames
from vpscli.errors import InputError
from vpscli.io.sources import FrameFolderSource, VideoFileSource, discover_sources, open_source
from vpscli.io.writer import VideoWriter


def write_video(path, frames, fps):
    with VideoWriter(path, fps, (frames[0].shape[1], frames[0].shape[0])) as w:
        for f in frames:
            w.write(f)
    return w


def test_writer_round_trip_count_size_fps_and_fidelity(tmp_path):
    frames = smooth_frames(12, 96, 64)
    path = tmp_path / "out.mp4"
    w = write_video(path, frames, Fraction(30000, 1001))
    assert w.frames_written == 12 and not w.padded
    src = open_source(path)
    probe = src.probe()
    assert (probe.width, probe.height, probe.frame_count) == (96, 64, 12)
    assert probe.fps == Fraction(30000, 1001)  # exact rational rate, not 29.97
    assert probe.codec == "h264" and probe.pix_fmt == "yuv420p" and not probe.vfr
    decoded = list(src)
    assert len(decoded) == 12 and src.truncation is None
    err = np.mean([np.abs(d.image.astype(int) - f.astype(int)).mean() for d, f in zip(decoded, frames)])
    assert err < 3.0, err
    assert [d.name for d in decoded[:2]] == ["000000", "000001"]
    assert decoded[3].timestamp == pytest.approx(3 * 1001 / 30000, abs=1e-3)
    data = path.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat"), "+faststart: moov atom must precede the media data"
    assert not list(tmp_path.glob(".*partial*")), "temporary file left behind"


def test_odd_size_is_padded_never_rescaled(tmp_path):
    frames = smooth_frames(6, 101, 75)
    w = write_video(tmp_path / "odd.mp4", frames, 25)
    assert w.padded
    decoded = [f.image for f in open_source(tmp_path / "odd.mp4")]
    assert len(decoded) == 6 and decoded[0].shape == (76, 102, 3)
    # the original pixels keep their place (a rescale would shift the gradient); the pad is black
    err = np.abs(decoded[2][:75, :101].astype(int) - frames[2].astype(int)).mean()
    assert err < 3.0, err
    assert decoded[2][75, :101].mean() < 40 and decoded[2][:75, 101].mean() < 40


def decoded_timestamps(path) -> list[float]:
    """Every frame's presentation time (pts × time base, from the stream's start), decoded by PyAV."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        start = stream.start_time or 0
        return [float((f.pts - start) * stream.time_base) for f in c.decode(stream)]


def test_writer_keeps_per_frame_timestamps(tmp_path):
    """Variable frame rate out: each frame is shown at its own time (10 fps, then 25 fps, then a pause)."""
    stamps = [i / 10 for i in range(10)] + [1.0 + i / 25 for i in range(10)] + [2.5, 2.54]
    frames = smooth_frames(len(stamps), 101, 75)  # odd size: padded, as without timestamps
    path = tmp_path / "vfr.mp4"
    with VideoWriter(path, 25, (101, 75)) as w:
        for f, t in zip(frames, stamps):
            w.write(f, timestamp=t + 7.0)  # counted from the first frame: the video starts at 0
    assert w.frames_written == len(stamps) and w.padded and w.timestamped
    np.testing.assert_allclose(decoded_timestamps(path), stamps, atol=1e-3)
    probe = open_source(path).probe()
    assert probe.vfr and probe.codec == "h264" and probe.pix_fmt == "yuv420p"
    assert (probe.width, probe.height) == (102, 76)
    decoded = [f.image for f in open_source(path)]
    assert np.abs(decoded[12][:75, :101].astype(int) - frames[12].astype(int)).mean() < 3.0
    data = path.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat") and not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("threads", [1, 2])
def test_writer_runs_the_encoder_on_the_threads_asked(tmp_path, threads):
    """libx264 writes its settings into the stream (an SEI message): the thread count given is the one it ran."""
    import re

    path = tmp_path / "t.mp4"
    with VideoWriter(path, 25, (96, 64), preset="ultrafast", threads=threads) as w:
        for f in smooth_frames(4, 96, 64):
            w.write(f)
    if w.encoder != "libx264":
        pytest.skip("the settings are libx264's SEI")
    found = re.search(rb"(?<![_a-z])threads=(\d+)", path.read_bytes())
    assert found is not None and int(found.group(1)) == threads


def test_writer_timestamps_all_or_none(tmp_path):
    w = VideoWriter(tmp_path / "x.mp4", 25, (32, 32))
    w.write(np.zeros((32, 32, 3), np.uint8), timestamp=0.0)
    with pytest.raises(ValueError, match="every frame or with none"):
        w.write(np.zeros((32, 32, 3), np.uint8))
    w.abort()
    assert not list(tmp_path.iterdir()), "abort leaves nothing behind"


@pytest.mark.parametrize("timestamped", [False, True])
def test_writer_disk_full_is_one_line_error_and_leaves_nothing(tmp_path, timestamped):
    from vpscli.errors import OutputError

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    w = VideoWriter(tmp_path / "x.mp4", 25, (64, 48))
    w._tmp.symlink_to("/dev/full")  # every write to the temporary file fails with ENOSPC
    with pytest.raises(OutputError, match="disk full") as e:
        for i, frame in enumerate(smooth_frames(30, 64, 48)):
            w.write(frame, timestamp=i / 25 if timestamped else None)
        w.close()
    assert str(tmp_path / "x.mp4") in str(e.value) and "fix:" in str(e.value)
    assert not list(tmp_path.iterdir())


def test_rotation_metadata_is_applied_once(tmp_path):
    plain = make_testsrc(tmp_path / "plain.mp4", 1, 10)
    rotated = tmp_path / "rot.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(plain), "-c", "copy", str(rotated))
    probe = open_source(rotated).probe()
    assert probe.rotation == 90 and (probe.width, probe.height) == (120, 160)
    ours = np.stack([f.image for f in open_source(rotated)])
    reference = decode_with_ffmpeg(rotated, 120, 160)  # ffmpeg's own autorotation
    assert ours.shape == reference.shape == (10, 160, 120, 3)
    assert np.abs(ours.astype(int) - reference.astype(int)).mean() < 2.0


def test_variable_frame_rate_detected_and_true_timestamps(tmp_path):
    a = make_testsrc(tmp_path / "a.mp4", 1, 10, extra=["-video_track_timescale", "1000"])
    make_testsrc(tmp_path / "b.mp4", 1, 25, extra=["-video_track_timescale", "1000"])
    (tmp_path / "list.txt").write_text("file a.mp4\nfile b.mp4\n")
    vfr = tmp_path / "vfr.mp4"
    ffmpeg("-f", "concat", "-i", str(tmp_path / "list.txt"), "-c", "copy", str(vfr))
    probe = open_source(vfr).probe()
    assert probe.vfr and probe.frame_count == 35
    ts = np.array([f.timestamp for f in open_source(vfr)])
    assert len(ts) == 35
    np.testing.assert_allclose(np.diff(ts[:10]), 0.1, atol=2e-3)
    np.testing.assert_allclose(np.diff(ts[11:]), 0.04, atol=2e-3)
    assert not open_source(a).probe().vfr


@pytest.mark.parametrize(
    "suffix,codec",
    [
        ("avi", ["-c:v", "mjpeg", "-q:v", "3"]),
        ("mkv", ["-c:v", "libx265", "-pix_fmt", "yuv420p", "-x265-params", "log-level=none"]),
        ("webm", ["-c:v", "libvpx-vp9", "-b:v", "200k"]),
        ("mov", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
        ("mpg", ["-c:v", "mpeg2video", "-q:v", "4"]),
        (
            "mp4",
            [
                "-c:v",
                "libx265",
                "-pix_fmt",
                "yuv420p10le",
                "-tag:v",
                "hvc1",
                "-x265-params",
                "log-level=none",
            ],
        ),
    ],
)
def test_containers_and_codecs(tmp_path, suffix, codec):
    path = make_testsrc(tmp_path / f"clip.{suffix}", 1, 25, codec=codec)
    src = open_source(path)
    frames = list(src)
    assert len(frames) == 25 == src.probe().frame_count
    assert frames[0].image.shape == (120, 160, 3)
    reference = decode_with_ffmpeg(path, 160, 120)
    assert np.abs(frames[5].image.astype(int) - reference[5].astype(int)).mean() < 4.0


def test_odd_sized_stream_decodes_at_its_size(tmp_path):
    path = make_testsrc(tmp_path / "odd.avi", 0.4, 25, size="161x121", codec=["-c:v", "mjpeg", "-q:v", "3"])
    frames = [f.image for f in open_source(path)]
    assert len(frames) == 10 and frames[0].shape == (121, 161, 3)
    assert np.abs(frames[4].astype(int) - decode_with_ffmpeg(path, 161, 121)[4].astype(int)).mean() < 2.0


def test_truncated_video_decodes_what_is_there_and_reports_where_it_stopped(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "full.mp4"
    write_video(path, [rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in range(40)], 25)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    src = open_source(cut)
    n = sum(1 for _ in src)
    assert 0 < n < 40
    assert src.truncation is not None and src.truncation.decoded == n and src.truncation.expected == 40
    assert f"stopped at frame {n} of 40" in src.truncation.message(str(cut))


def test_truncated_constant_rate_file_keeps_its_rate_and_is_reported_damaged(tmp_path):
    import av

    full, cut = make_truncated_clip(tmp_path)
    with av.open(str(cut)) as c:  # the cut leaves holes among the reordered frames' timestamps
        pts = np.sort([p.pts for p in c.demux(c.streams.video[0]) if p.pts is not None])
    assert np.diff(pts).max() > np.diff(pts).min(), "precondition: timestamps with holes"
    probe = open_source(cut).probe()
    assert probe.fps == Fraction(25) and not probe.vfr
    assert probe.damaged and probe.header_frame_count == 100 and probe.expected_frames == 100
    assert "index lists 100 frames" in probe.stream_error and probe.frame_count < 100
    assert str(cut) in probe.damage_message() and "--decode" in probe.damage_message()
    clean = open_source(full).probe()
    assert (
        clean.fps == Fraction(25) and not clean.vfr and not clean.damaged and clean.damage_message() is None
    )
    src = open_source(cut)
    stamps = [f.timestamp for f in src]
    assert src.truncation is not None and src.truncation.expected == 100
    np.testing.assert_allclose(stamps, np.arange(len(stamps)) / 25, atol=1e-9)  # exact pts × time base


def test_millisecond_time_base_at_29_97_fps_is_constant_rate(tmp_path):
    path = make_testsrc(tmp_path / "ntsc.mkv", 3, "30000/1001")  # Matroska: 1 ms ticks, steps of 33 and 34
    probe = open_source(path).probe()
    assert not probe.vfr and probe.fps == Fraction(30000, 1001) and probe.time_base == Fraction(1, 1000)
    assert probe.frame_count == 90 and probe.header_frame_count is None  # Matroska has no frame count
    stamps = np.array([f.timestamp for f in open_source(path)])
    assert set(np.round(np.diff(stamps) * 1000).astype(int)) == {33, 34}
    np.testing.assert_allclose(stamps, np.arange(90) * 1001 / 30000, atol=0.6e-3)


def test_reorder_depth_and_timing_rule():
    from vpscli.io.probe import PacketListing, reorder_depth, timing

    assert reorder_depth(np.array([0, 1, 2, 3])) == 0
    assert reorder_depth(np.array([0, 4, 2, 1, 3, 8, 6, 5, 7])) == 2  # B-pyramid: P4 and B2 wait for B1
    # a cut after P8: 5, 6, 7 are lost; 8 is set aside with the last reordered timestamps
    listing = PacketListing(6, np.array([0, 4, 2, 1, 3, 8]) * 40, Fraction(1, 1000), ())
    fps, vfr, used = timing(listing, damaged=True, declared=None)
    assert (fps, vfr, list(used)) == (Fraction(25), False, [0, 40, 80, 120])
    fps, vfr, _ = timing(listing, damaged=False, declared=None)
    assert vfr and fps < 25  # what the holes would say if they were taken for frame durations
    vfr_list = PacketListing(7, np.array([0, 100, 200, 300, 340, 380, 420]), Fraction(1, 1000), ())
    assert timing(vfr_list, damaged=False, declared=Fraction(25))[1]


def test_garbage_empty_missing_and_unsupported_inputs(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(4096))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    cases = {
        garbage: "not a readable video",
        empty: "empty file",
        tmp_path / "missing.mp4": "not found",
        notes: "unsupported file type",
    }
    for path, text in cases.items():
        with pytest.raises(InputError) as e:
            open_source(path).probe()
        assert text in str(e.value) and str(path) in str(e.value) and "fix:" in str(e.value)


def test_frame_folder_natural_order_timestamps_and_size_check(tmp_path):
    import cv2

    folder = tmp_path / "clip"
    folder.mkdir()
    for i in (1, 2, 10, 11, 3):
        img = np.full((24, 32, 3), i * 10, np.uint8)
        cv2.imwrite(str(folder / f"seq1_img{i}.png"), img)
    (folder / "notes.txt").write_text("ignored")
    src = FrameFolderSource(folder, fps=10)
    frames = list(src)
    assert [f.name for f in frames] == ["seq1_img1", "seq1_img2", "seq1_img3", "seq1_img10", "seq1_img11"]
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30, 100, 110]
    assert frames[3].timestamp == pytest.approx(0.3)
    cv2.imwrite(str(folder / "seq1_img12.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(
        InputError, match=r"seq1_img12.png: frame is 10x10 but the folder's first frame is 32x24"
    ):
        list(FrameFolderSource(folder))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no frames in folder"):
        FrameFolderSource(tmp_path / "empty")
    (folder / "seq1_img13.png").write_bytes(b"not a png")
    (folder / "seq1_img12.png").unlink()
    with pytest.raises(InputError, match="seq1_img13.png: cannot read this image"):
        list(FrameFolderSource(folder))


def test_discovery_sun_seg_root_video_folder_and_glob(tmp_path):
    import cv2

    for case in ("case10", "case2"):
        d = tmp_path / "root" / "Frame" / case
        d.mkdir(parents=True)
        cv2.imwrite(str(d / "1.jpg"), np.zeros((8, 8, 3), np.uint8))
    sources = discover_sources([str(tmp_path / "root")])
    assert [s.name for s in sources] == ["case2", "case10"]
    assert all(isinstance(s, FrameFolderSource) for s in sources)
    vids = tmp_path / "vids"
    vids.mkdir()
    make_testsrc(vids / "b.mp4", 0.2, 10)
    make_testsrc(vids / "a.mp4", 0.2, 10)
    assert [s.name for s in discover_sources([str(vids)])] == ["a", "b"]
    globbed = discover_sources([str(vids / "*.mp4"), str(vids / "a.mp4")])
    assert [s.name for s in globbed] == ["a", "b"]  # the same file twice is one source
    assert all(isinstance(s, VideoFileSource) for s in globbed)
    with pytest.raises(InputError, match="no file matches"):
        discover_sources([str(tmp_path / "*.mkv")])
    with pytest.raises(InputError, match="single image"):
        discover_sources([str(tmp_path / "root" / "Frame" / "case2" / "1.jpg")])


def test_folder_of_case_folders_is_one_source_per_case(tmp_path):
    """``TestDataset/Frame/`` given directly works like its parent (SUN-SEG root)."""
    import cv2

    for case in ("case10", "case2", "case1"):
        for sub in ("Frame", "GT"):
            d = tmp_path / "TestDataset" / sub / case
            d.mkdir(parents=True)
            cv2.imwrite(str(d / "1.png"), np.zeros((8, 8, 3), np.uint8))
    direct = discover_sources([str(tmp_path / "TestDataset" / "Frame")])
    assert [s.name for s in direct] == ["case1", "case2", "case10"]
    assert all(isinstance(s, FrameFolderSource) for s in direct)
    assert [s.path for s in direct] == [s.path for s in discover_sources([str(tmp_path / "TestDataset")])]
    (tmp_path / "TestDataset" / "Frame" / "case3").mkdir()  # a case without frames: named, as from the root
    for given in ("TestDataset", "TestDataset/Frame"):
        with pytest.raises(InputError, match=r"Frame/case3: no frames in folder"):
            discover_sources([str(tmp_path / given)])
    with pytest.raises(InputError, match=r"ground-truth folder.*fix: pass .*TestDataset/Frame"):
        discover_sources([str(tmp_path / "TestDataset" / "GT")])
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(InputError, match="no frames, videos or case folders of frames found"):
        discover_sources([str(tmp_path / "empty")])


@pytest.mark.realdata
def test_real_data_frame_folders(vps_data):
    """PolypGen negatives need natural order; CVC-ClinicDB is a SUN-SEG root of 384×288 clips."""
    seq = vps_data / "polypgen-negatives" / "Frame" / "seq1_neg"
    src = FrameFolderSource(seq)
    names = src.frame_names
    numbers = [int(n.split("img")[1]) for n in names]
    assert numbers == sorted(numbers) and names[:3] == ["seq1_img1", "seq1_img2", "seq1_img3"]
    first = next(iter(src))
    assert first.image.ndim == 3 and (src.probe().width, src.probe().height) == first.size
    cases = discover_sources([str(vps_data / "cvc-clinicdb" / "valid")])
    assert len(cases) == 6 and all(isinstance(c, FrameFolderSource) for c in cases)
    direct = discover_sources([str(vps_data / "cvc-clinicdb" / "valid" / "Frame")])
    assert [c.path for c in direct] == [c.path for c in cases]
    assert sum(c.probe().frame_count for c in cases) == 123
    assert {(c.probe().width, c.probe().height) for c in cases} == {(384, 288)}
