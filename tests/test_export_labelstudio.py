"""vps export --format labelstudio: brush RLE decoded by an independent decoder, task fields."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _export_fixtures import HEIGHT, N_FRAMES, SHA, WIDTH, make_segmented_clip

from vpscli.export.labelstudio import model_version
from vpscli.export.labelstudio_rle import encode_labelstudio_rle
from vpscli.export.runner import export_masks
from vpscli.io.masks import write_mask


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_segmented_clip(tmp_path_factory.mktemp("export_ls"))


def decode_ls_rle(rle: list[int]) -> np.ndarray:
    """Label Studio brush RLE → flat uint8 array (the RGBA-flattened image), from the format spec:
    32-bit count, 5-bit word size − 1, four 4-bit run-size classes − 1, then chunks of
    [1-bit repeat flag][2-bit class][count − 1][one word | count words], MSB first."""
    bits = np.unpackbits(np.asarray(rle, dtype=np.uint8))
    pos = 0

    def take(n: int) -> int:
        nonlocal pos
        value = 0
        for b in bits[pos : pos + n]:
            value = (value << 1) | int(b)
        pos += n
        return value

    count = take(32)
    word = take(5) + 1
    sizes = [take(4) + 1 for _ in range(4)]
    out = np.zeros(count, np.uint8)
    i = 0
    while i < count:
        repeat = take(1)
        n = take(sizes[take(2)]) + 1
        if repeat:
            out[i : i + n] = take(word)
        else:
            for k in range(n):
                out[i + k] = take(word)
        i += n
    assert i == count and len(bits) - pos < 8  # only byte padding left
    return out


def decode_ls_mask(rle: list[int], height: int, width: int) -> np.ndarray:
    return decode_ls_rle(rle).reshape(height, width, 4)[:, :, 3] == 255


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (200, 400)])
def test_ls_rle_round_trip_shapes(shape):
    rng = np.random.default_rng(0)
    for mask in (np.zeros(shape, bool), np.ones(shape, bool), rng.random(shape) > 0.5):
        rle = encode_labelstudio_rle(mask)
        assert all(0 <= b <= 255 for b in rle)
        flat = decode_ls_rle(rle)
        assert flat.size == mask.size * 4
        np.testing.assert_array_equal(flat.reshape(*shape, 4), np.repeat(mask[..., None], 4, axis=2) * 255)


def test_ls_rle_header():
    rle = encode_labelstudio_rle(np.zeros((3, 2), bool))
    assert int.from_bytes(bytes(rle[:4]), "big") == 24  # 6 pixels x RGBA
    bits = "".join(f"{b:08b}" for b in rle)
    assert bits[32:37] == "00111"  # word size 8
    assert [int(bits[37 + 4 * k : 41 + 4 * k], 2) + 1 for k in range(4)] == [3, 4, 8, 16]


def test_labelstudio_tasks_round_trip(clip, tmp_path):
    result = export_masks(clip.run_dir, "labelstudio", tmp_path)
    assert result.path == tmp_path / "tasks.json"
    assert "BrushLabels" in (tmp_path / "labeling_config.xml").read_text()
    tasks = json.loads(result.path.read_text())
    assert len(tasks) == N_FRAMES  # one image task per frame, empty frames included
    for task in tasks:
        i = task["data"]["frame_index"]
        assert task["data"]["image"] == f"images/frame_{i:06d}.jpg" and task["data"]["video"] == "clip"
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == f"vps/pns_plus@{SHA[:12]}"
        assert prediction["score"] == clip.confidence[i]  # frames.csv max_prob: sortable
        decoded = np.zeros((HEIGHT, WIDTH), bool)
        for r in prediction["result"]:
            assert r["type"] == "brushlabels" and r["from_name"] == "tag" and r["to_name"] == "image"
            assert (r["original_width"], r["original_height"]) == (WIDTH, HEIGHT)
            assert r["value"]["format"] == "rle" and r["value"]["brushlabels"] == ["polyp"]
            decoded |= decode_ls_mask(r["value"]["rle"], HEIGHT, WIDTH)
        np.testing.assert_array_equal(decoded, clip.masks[i])


def test_labelstudio_include_frames_and_unknown_model(clip, tmp_path):
    export_masks(clip.run_dir, "labelstudio", tmp_path, video=clip.video, include_frames=True, label="lesion")
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    for task in tasks:
        assert (tmp_path / task["data"]["image"]).is_file()
    assert tasks[0]["predictions"][0]["result"][0]["value"]["brushlabels"] == ["lesion"]
    folder = tmp_path / "plain"
    folder.mkdir()
    write_mask(folder / "a.png", np.ones((4, 4), bool))
    tasks = json.loads(export_masks(folder, "labelstudio", tmp_path / "o").path.read_text())
    assert tasks[0]["predictions"][0]["model_version"] == "vps/unknown"
    assert "score" not in tasks[0]["predictions"][0]  # no confidence known: not made up
    assert model_version("cffm", None) == "vps/cffm"
