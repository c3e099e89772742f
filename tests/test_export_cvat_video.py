"""vps export --format cvat-video: CVAT for video 1.1 XML decoded back, tracks per polyp episode."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from _export_fixtures import HEIGHT, N_FRAMES, WIDTH, make_segmented_clip

from vpscli.export.cvat_rle import encode_cvat_rle
from vpscli.export.runner import export_masks
from vpscli.io.masks import write_mask


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_segmented_clip(tmp_path_factory.mktemp("export_xml"))


def decode_cvat_mask(el: ET.Element, height: int, width: int) -> np.ndarray:
    """A <mask> element → (H, W) bool: row-major runs over the box, background run first."""
    counts = [int(c) for c in el.get("rle").split(",")]
    left, top, w, h = (int(el.get(k)) for k in ("left", "top", "width", "height"))
    out = np.zeros((height, width), bool)
    offset, value = 0, False
    for run in counts:
        if value:
            for k in range(offset, offset + run):
                y, x = divmod(k, w)
                out[top + y, left + x] = True
        offset += run
        value = not value
    assert offset == w * h
    return out


def test_cvat_rle_encoder_box():
    m = np.zeros((5, 6), bool)
    m[1, 2] = m[2, 3] = m[3, 2] = True
    rle = encode_cvat_rle(m)
    assert (rle.left, rle.top, rle.width, rle.height) == (2, 1, 2, 3)
    assert rle.counts == [0, 1, 2, 2, 1]  # box rows [1,0] [0,1] [1,0] → 1,0,0,1,1,0
    assert rle.rle_text == "0, 1, 2, 2, 1"


def test_cvat_video_round_trip_two_episodes(clip, tmp_path):
    result = export_masks(clip.run_dir, "cvat-video", tmp_path)
    assert result.path == tmp_path / "annotations.xml" and result.tracks == 2
    root = ET.parse(result.path).getroot()
    assert root.findtext("version") == "1.1"
    task = root.find("meta/task")
    assert task.findtext("original_size/width") == str(WIDTH)
    assert task.findtext("original_size/height") == str(HEIGHT)
    assert task.findtext("size") == str(N_FRAMES) and task.findtext("stop_frame") == str(N_FRAMES - 1)
    assert [lab.findtext("name") for lab in task.findall("labels/label")] == ["polyp"]
    tracks = root.findall("track")
    assert len(tracks) == 2
    decoded = {i: np.zeros((HEIGHT, WIDTH), bool) for i in range(N_FRAMES)}
    inside_frames, outside_frames = [], []
    for track in tracks:
        assert track.get("label") == "polyp" and track.get("source") == "auto"
        frames = [int(m.get("frame")) for m in track.findall("mask")]
        assert frames == sorted(frames)
        inside_frames.append([int(m.get("frame")) for m in track.findall("mask") if m.get("outside") == "0"])
        outside_frames.append([int(m.get("frame")) for m in track.findall("mask") if m.get("outside") == "1"])
        for m in track.findall("mask"):
            assert m.get("keyframe") == "1"
            if m.get("outside") == "0":
                decoded[int(m.get("frame"))] |= decode_cvat_mask(m, HEIGHT, WIDTH)
    assert inside_frames == [[0, 1, 2, 3], [7, 8, 9, 10, 11]]
    # the first episode ends with an outside keyframe; the second lasts to the last frame
    assert outside_frames == [[4], []]
    for i in range(N_FRAMES):
        np.testing.assert_array_equal(decoded[i], clip.masks[i])


def test_cvat_video_simultaneous_polyps_and_trailing_outside(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    masks = []
    for i in range(4):
        m = np.zeros((20, 30), bool)
        m[2:6, 2 + i : 8 + i] = True  # moves right, stays overlapping
        if i < 2:
            m[12:18, 20:27] = True  # second polyp, gone from frame 2
        write_mask(folder / f"{i:06d}.png", m)
        masks.append(m)
    # a fifth, empty frame after the end
    write_mask(folder / "000004.png", np.zeros((20, 30), bool))
    root = ET.parse(export_masks(folder, "cvat-video", tmp_path / "o").path).getroot()
    tracks = root.findall("track")
    assert len(tracks) == 2
    summary = [[(int(m.get("frame")), m.get("outside")) for m in t.findall("mask")] for t in tracks]
    # track ids follow first appearance, largest first: the bigger, short-lived polyp is track 0
    assert summary == [[(0, "0"), (1, "0"), (2, "1")], [(0, "0"), (1, "0"), (2, "0"), (3, "0"), (4, "1")]]
    for t in tracks:
        for m in t.findall("mask"):
            if m.get("outside") == "0":
                f = int(m.get("frame"))
                assert (decode_cvat_mask(m, 20, 30) & ~masks[f]).sum() == 0
