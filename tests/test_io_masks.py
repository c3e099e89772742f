import numpy as np
import pytest
from PIL import Image

from vpscli.errors import InputError
from vpscli.io.masks import (
    CONVERSIONS,
    list_masks,
    probability_to_uint8,
    read_mask,
    write_mask,
    write_probability,
)


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


def test_empty_masks_of_each_size_are_whole_8bit_pngs(tmp_path, blob):
    """Empty masks (most frames) are the bytes of one encoding per size; every mask stores its rows
    unfiltered (filter type 0), which keeps 0/255 rows small."""
    import zlib

    for name, shape in (("a", (30, 40)), ("b", (30, 40)), ("c", (7, 5)), ("d", (30, 40))):
        write_mask(tmp_path / f"{name}.png", np.zeros(shape, np.uint8) if name != "d" else blob)
        with Image.open(tmp_path / f"{name}.png") as im:
            assert im.mode == "L" and im.size == shape[::-1]
        assert (read_mask(tmp_path / f"{name}.png").array == (255 * blob if name == "d" else 0)).all()
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    for name, (h, w) in (("a", (30, 40)), ("d", (30, 40))):
        data = (tmp_path / f"{name}.png").read_bytes()
        at, idat = 8, b""
        while at < len(data):  # the IDAT chunks' bytes, in order
            size = int.from_bytes(data[at : at + 4], "big")
            idat += data[at + 8 : at + 8 + size] if data[at + 4 : at + 8] == b"IDAT" else b""
            at += 12 + size
        rows = zlib.decompress(idat)
        assert len(rows) == h * (w + 1) and rows[:: w + 1] == bytes(
            h
        )  # each row: filter byte 0, then w bytes


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


def test_kinds_name_each_conversion(tmp_path, blob):
    """``kind`` lets a command count conversions; 8-bit grey (0/255 or levels) has none."""
    Image.fromarray(blob).convert("1").save(tmp_path / "bit.png")
    pal = Image.fromarray(blob.astype(np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
    pal.save(tmp_path / "pal.png")
    Image.fromarray((blob * 40000).astype(np.uint16)).save(tmp_path / "16.png")
    Image.fromarray(blob.astype(np.uint16)).save(tmp_path / "16-01.png")
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(tmp_path / "16-zero.png")
    Image.fromarray(blob.astype(np.uint8)).save(tmp_path / "01.png")
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[blob] = (200, 30, 30)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([blob.astype(np.uint8) * 7] * 3)).save(tmp_path / "grey3.png")
    write_probability(tmp_path / "prob.png", np.linspace(0, 1, 12).reshape(3, 4))
    kinds = {p.stem: read_mask(p).kind for p in tmp_path.glob("*.png")}
    assert kinds == {
        "bit": "1-bit",
        "pal": "palette",
        "16": "16-bit",
        "16-01": "0/1",
        "16-zero": "16-bit",
        "01": "0/1",
        "rgb": "colour",
        "grey3": "grey-rgb",
        "prob": None,
    }
    assert set(kinds.values()) - {None} <= set(CONVERSIONS)


def test_8bit_grey_png_is_the_toolbox_array(tmp_path):
    """8-bit grey PNGs (the SUN-SEG toolbox's only input) read byte for byte as cv2.imread and Pillow do —
    including interlaced files and a 0/1 check that only a map whose maximum is 1 trips."""
    import cv2

    rng = np.random.default_rng(3)
    levels = rng.integers(0, 256, (37, 53)).astype(np.uint8)
    Image.fromarray(levels).save(tmp_path / "levels.png")
    Image.fromarray(levels).save(tmp_path / "interlaced.png", interlace=1)
    for name in ("levels", "interlaced"):
        r = read_mask(tmp_path / f"{name}.png")
        with Image.open(tmp_path / f"{name}.png") as im:
            assert im.mode == "L"
            np.testing.assert_array_equal(r.array, np.asarray(im))
        np.testing.assert_array_equal(
            r.array, cv2.imread(str(tmp_path / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        )
        assert r.kind is None and r.array.dtype == np.uint8 and r.array.flags.writeable
    low = np.minimum(levels, 2)  # values 0..2: a faint map, not a 0/1 mask
    Image.fromarray(low).save(tmp_path / "low.png")
    assert read_mask(tmp_path / "low.png").kind is None
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "zero.png")
    assert read_mask(tmp_path / "zero.png").kind is None
    ones = np.ones((5, 5), np.uint8)
    Image.fromarray(ones).save(tmp_path / "ones.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "ones.png").array, ones * 255)


def test_damaged_8bit_png_after_a_valid_header_is_an_input_error(tmp_path):
    """The header says 8-bit grey but the data is cut: OpenCV gives up, and the error names the file."""
    write_probability(tmp_path / "p.png", np.linspace(0, 1, 400).reshape(20, 20))
    data = (tmp_path / "p.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut.png: cannot read this mask"):
        read_mask(tmp_path / "cut.png")
