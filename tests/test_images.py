"""Frame images cut short are refused by name, not segmented (or trained on) with grey rows."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vpscli.errors import InputError
from vpscli.io.images import cut_short, read_rgb
from vpscli.io.sources import open_source


def _image(seed=0, h=96, w=128):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 3)


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    for i in range(4):
        cv2.imwrite(str(d / f"{i:03d}.jpg"), _image(i))
    return d


def test_whole_jpeg_png_and_trailing_bytes_read_like_opencv(tmp_path):
    img = _image()
    for ext in (".jpg", ".png"):
        path = tmp_path / f"a{ext}"
        cv2.imwrite(str(path), img)
        np.testing.assert_array_equal(read_rgb(path), cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "tail.jpg").write_bytes(data + b"\x00" * 64 + b"maker notes")  # as some cameras append
    assert cut_short((tmp_path / "tail.jpg").read_bytes()) is None
    np.testing.assert_array_equal(read_rgb(tmp_path / "tail.jpg"), read_rgb(tmp_path / "a.jpg"))


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_an_image_cut_short_is_refused_by_name(tmp_path, ext):
    path = tmp_path / f"a{ext}"
    cv2.imwrite(str(path), _image())
    data = path.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    if ext == ".jpg":  # OpenCV alone decodes it, with the missing rows grey: the damage goes unseen
        grey = cv2.imread(str(cut))
        assert grey is not None and grey.shape == (96, 128, 3)
    with pytest.raises(InputError, match="cut short") as e:
        read_rgb(cut)
    assert e.value.path == str(cut) and "whole copy" in e.value.fix


def test_a_damaged_frame_in_a_folder_stops_the_video_with_its_name(folder, tmp_path):
    data = (folder / "002.jpg").read_bytes()
    (folder / "002.jpg").write_bytes(data[: len(data) // 2])
    src = open_source(folder)
    frames = []
    with pytest.raises(InputError, match="damaged frame") as e:
        frames.extend(src)
    assert e.value.path == str(folder / "002.jpg") and len(frames) == 2


def test_training_reads_frames_through_the_same_reader(folder):
    from vpscli.train import store

    data = (folder / "001.jpg").read_bytes()
    (folder / "001.jpg").write_bytes(data[:-200])
    with pytest.raises(InputError, match="cut short"):
        store.read_rgb(folder / "001.jpg")
