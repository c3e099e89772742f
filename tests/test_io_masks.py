import numpy as np
import pytest
from PIL import Image

from vpscli.errors import InputError
from vpscli.io.masks import list_masks, probability_to_uint8, read_mask, write_mask, write_probability


@pytest.fixture
def blob():
    m = np.zeros((30, 40), bool)
    m[5:20, 8:30] = True
    m[0, 0] = True
    return m


def test_write_read_round_trip_is_8bit_0_255(tmp_path, blob):
    write_mask(tmp_path / "m.png", blob)
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "L" and im.size == (40, 30)
    r = read_mask(tmp_path / "m.png")
    assert r.note is None and r.array.dtype == np.uint8
    assert set(np.unique(r.array)) == {0, 255}
    assert int((r.array == 255).sum()) == int(blob.sum()) == 15 * 22 + 1
    assert not list(tmp_path.glob(".*partial*"))


def test_probability_is_floor_255p(tmp_path):
    p = np.array([[0.0, 0.5, 0.999, 1.0], [0.25, 0.1, 1.5, -0.2]])
    np.testing.assert_array_equal(probability_to_uint8(p), [[0, 127, 254, 255], [63, 25, 255, 0]])
    write_probability(tmp_path / "p.png", p)
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png").array, probability_to_uint8(p))


def test_accepts_1bit_palette_16bit_rgb_and_01_masks(tmp_path, blob):
    expected = np.where(blob, 255, 0)
    Image.fromarray(blob).convert("1").save(tmp_path / "bit.png")
    pal = Image.fromarray(blob.astype(np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)  # DAVIS: index 1 is dark red
    pal.save(tmp_path / "pal.png")
    Image.fromarray((blob * 65535).astype(np.uint16)).save(tmp_path / "16.png")
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[blob] = (200, 30, 30)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(blob.astype(np.uint8)).save(tmp_path / "01.png")
    grey3 = np.dstack([np.where(blob, 255, 0).astype(np.uint8)] * 3)
    Image.fromarray(grey3).save(tmp_path / "grey3.png")
    notes = {}
    for name in ("bit", "pal", "16", "rgb", "01", "grey3"):
        r = read_mask(tmp_path / f"{name}.png")
        np.testing.assert_array_equal(r.array, expected, err_msg=name)
        assert r.note, name
        notes[name] = r.note
    assert "palette" in notes["pal"] and "16-bit" in notes["16"] and "0/1" in notes["01"]


def test_16bit_probability_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257 * 100, 65535]], np.uint16)
    Image.fromarray(a).save(tmp_path / "p16.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "p16.png").array, [[0, 100, 255]])


def test_unreadable_and_missing_masks(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(InputError, match=r"bad.png: cannot read this mask"):
        read_mask(tmp_path / "bad.png")
    with pytest.raises(InputError, match="mask not found"):
        read_mask(tmp_path / "nope.png")
    with pytest.raises(InputError, match="mask folder not found"):
        list_masks(tmp_path / "nodir")


def test_list_masks_natural_order(tmp_path, blob):
    for i in (10, 2, 1):
        write_mask(tmp_path / f"{i}.png", blob)
    assert [p.name for p in list_masks(tmp_path)] == ["1.png", "2.png", "10.png"]
