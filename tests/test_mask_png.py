"""Mask PNGs compressed around their empty rows: every reader decodes the mask's pixels, the checksums
hold, and only the foreground rows are deflated."""

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

import vpscli.io.mask_png as mask_png
from vpscli.io.mask_png import mask_png_bytes


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(type, data)`` of every chunk, each CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, out = 8, []
    while at < len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + size]
        (crc,) = struct.unpack(">I", data[at + 8 + size : at + 12 + size])
        assert crc == zlib.crc32(kind + body), kind
        out.append((kind, body))
        at += 12 + size
    return out


def _masks():
    rng = np.random.default_rng(3)
    blob = np.zeros((1080, 1920), bool)
    blob[400:651, 700:1001] = True
    yield "1080p polyp", blob
    yield "1080p empty", np.zeros((1080, 1920), bool)
    yield "1080p full", np.ones((1080, 1920), bool)
    for h in (1, 2, 3, 255, 256, 257):  # zero runs of every length around a power of two
        m = np.zeros((h + 4, 9), bool)
        m[h, 3] = True
        yield f"pixel under {h} zero rows", m
    top, bottom = np.zeros((64, 33), bool), np.zeros((64, 33), bool)
    top[0, :5], bottom[-1, -5:] = True, True
    yield "first row", top
    yield "last row", bottom
    yield "one pixel", np.ones((1, 1), bool)
    yield "one empty pixel", np.zeros((1, 1), bool)
    yield "one column", rng.random((50, 1)) > 0.7
    yield "noise", rng.random((37, 41)) > 0.5


@pytest.mark.parametrize("name,mask", list(_masks()), ids=[n for n, _ in _masks()])
def test_every_reader_decodes_the_masks_pixels(name, mask):
    data = mask_png_bytes(mask)
    want = mask.astype(np.uint8) * 255
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), want)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "L" and im.size == mask.shape[::-1]
        assert np.array_equal(np.asarray(im), want)
    chunks = _chunks(data)
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert chunks[0][1] == struct.pack(">IIBBBBB", mask.shape[1], mask.shape[0], 8, 0, 0, 0, 0)
    # zlib checks the stream's Adler-32, carried arithmetically across the zero rows
    rows = np.frombuffer(zlib.decompress(chunks[1][1]), np.uint8).reshape(mask.shape[0], mask.shape[1] + 1)
    assert not rows[:, 0].any()  # filter "none" on every row
    assert np.array_equal(rows[:, 1:], want)


def test_only_the_foreground_rows_are_deflated(monkeypatch):
    """A 1080p mask whose polyp spans rows 500-520: after the first mask of that width (which makes the
    cached zero-row segments), a mask costs the deflation of its 21 foreground rows and nothing else."""
    mask = np.zeros((1080, 1920), bool)
    mask[500:521, 900:960] = True
    mask_png_bytes(mask)
    deflated: list[int] = []
    segment = mask_png._segment

    def counting(raw) -> bytes:
        deflated.append(memoryview(raw).nbytes)
        return segment(raw)

    monkeypatch.setattr(mask_png, "_segment", counting)
    shifted = np.roll(mask, 300, axis=0)  # other zero runs: 800 and 259 rows, from the same cached segments
    mask_png_bytes(shifted)
    assert deflated == [21 * 1921]
    assert len(mask_png_bytes(shifted)) < 4096  # as small as a general encoder makes it


def test_refuses_what_is_not_a_bool_image():
    with pytest.raises(ValueError, match="bool"):
        mask_png_bytes(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="pixel"):
        mask_png_bytes(np.zeros((0, 4), bool))


@pytest.mark.parametrize("name,mask", list(_masks()), ids=[n for n, _ in _masks()])
def test_known_rows_make_the_same_file_without_a_scan(name, mask, monkeypatch):
    """The engine passes the rows of its mask box: the same bytes as scanning the mask, which is not done."""
    hit = np.flatnonzero(mask.any(axis=1))
    rows = (int(hit[0]), int(hit[-1]) + 1) if len(hit) else (0, 0)
    scanned = mask_png_bytes(mask)

    class Unscanned(np.ndarray):
        def any(self, *args, **kwargs):
            raise AssertionError("the mask was scanned")

    assert mask_png_bytes(mask.view(Unscanned), rows) == scanned


def test_refuses_rows_outside_the_mask():
    with pytest.raises(ValueError, match="rows"):
        mask_png_bytes(np.zeros((4, 4), bool), (3, 5))
    with pytest.raises(ValueError, match="rows"):
        mask_png_bytes(np.zeros((4, 4), bool), (2, 1))
