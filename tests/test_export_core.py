"""vps export: cvat-mask, coco and davis round trips, input checks and the CLI."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _export_fixtures import HEIGHT, N_FRAMES, WIDTH, copy_without, make_segmented_clip
from PIL import Image

from vpscli.errors import InputError, UsageError
from vpscli.export.coco_rle import encode_coco_rle
from vpscli.export.instances import TrackLinker, split_components
from vpscli.export.runner import export_masks
from vpscli.io.masks import write_mask


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_segmented_clip(tmp_path_factory.mktemp("export"))


def two_blob_masks(folder, n=3, size=(40, 30)):
    """Masks named 1.png… (not the segment layout) with two disjoint blobs; the second shrinks."""
    folder.mkdir(parents=True)
    masks = []
    for i in range(n):
        m = np.zeros((size[1], size[0]), bool)
        m[2:10, 3:12] = True
        m[15 : 25 - i, 20:35] = True
        m[0, 39] = True  # a 1-pixel speck in the corner
        write_mask(folder / f"{i + 1}.png", m)
        masks.append(m)
    return masks


# --- independent decoders -------------------------------------------------------------------


def decode_coco_counts(rle: dict) -> np.ndarray:
    """COCO uncompressed RLE → (H, W) bool, column-major, runs alternate starting with 0s."""
    h, w = rle["size"]
    flat = np.zeros(h * w, bool)
    pos, value = 0, False
    for run in rle["counts"]:
        flat[pos : pos + run] = value
        pos += run
        value = not value
    assert pos == h * w
    return flat.reshape((w, h)).T


# --- cvat-mask ------------------------------------------------------------------------------


def test_cvat_mask_zip_round_trip(clip, tmp_path):
    result = export_masks(clip.run_dir, "cvat-mask", tmp_path)
    assert result.path == tmp_path / "segmentation_mask.zip" and result.frames == N_FRAMES
    with zipfile.ZipFile(result.path) as z:
        names = set(z.namelist())
        labelmap = z.read("labelmap.txt").decode().splitlines()
        assert [line for line in labelmap if not line.startswith("#")] == [
            "background:0,0,0::",
            "polyp:128,0,0::",
        ]
        listed = z.read("ImageSets/Segmentation/default.txt").decode().split()
        assert listed == [f"frame_{i:06d}" for i in range(N_FRAMES)]
        colours = {
            tuple(map(int, line.split(":")[1].split(","))): k
            for k, line in enumerate(x for x in labelmap if not x.startswith("#"))
        }
        for i, expected in clip.masks.items():
            assert f"SegmentationClass/frame_{i:06d}.png" in names
            im = Image.open(io.BytesIO(z.read(f"SegmentationClass/frame_{i:06d}.png")))
            assert im.mode == "P" and im.size == (WIDTH, HEIGHT)
            index = np.asarray(im)
            assert set(np.unique(index)) <= {0, 1}  # only declared, contiguous indices
            np.testing.assert_array_equal(index == 1, expected)
            rgb = np.asarray(im.convert("RGB"))  # how a colour reader sees it
            by_colour = np.vectorize(lambda r, g, b: colours[(r, g, b)])(
                rgb[..., 0], rgb[..., 1], rgb[..., 2]
            )
            np.testing.assert_array_equal(by_colour == 1, expected)
            obj = np.asarray(Image.open(io.BytesIO(z.read(f"SegmentationObject/frame_{i:06d}.png"))))
            np.testing.assert_array_equal(obj > 0, expected)


def test_cvat_mask_instances_and_min_area(tmp_path):
    masks = two_blob_masks(tmp_path / "m")
    export_masks(tmp_path / "m", "cvat-mask", tmp_path / "all")
    export_masks(tmp_path / "m", "cvat-mask", tmp_path / "big", min_area=2)
    with zipfile.ZipFile(tmp_path / "all" / "segmentation_mask.zip") as z:
        obj = np.asarray(Image.open(io.BytesIO(z.read("SegmentationObject/frame_000000.png"))))
        assert sorted(np.unique(obj)) == [0, 1, 2, 3]
        cls = np.asarray(Image.open(io.BytesIO(z.read("SegmentationClass/frame_000002.png"))))
        np.testing.assert_array_equal(cls == 1, masks[2])
    with zipfile.ZipFile(tmp_path / "big" / "segmentation_mask.zip") as z:
        cls = np.asarray(Image.open(io.BytesIO(z.read("SegmentationClass/frame_000000.png"))))
        expected = masks[0].copy()
        expected[0, 39] = False
        np.testing.assert_array_equal(cls == 1, expected)


# --- coco -----------------------------------------------------------------------------------


def test_coco_rle_encoder_edges():
    m = np.zeros((3, 4), bool)
    assert encode_coco_rle(m) == {"size": [3, 4], "counts": [12]}
    m[0, 0] = True
    assert encode_coco_rle(m)["counts"] == [0, 1, 11]
    m[:] = True
    assert encode_coco_rle(m)["counts"] == [0, 12]
    m = np.zeros((2, 3), bool)
    m[1, 0] = True  # column-major: pixel order (0,0),(1,0),(0,1)...
    assert encode_coco_rle(m)["counts"] == [1, 1, 4]


def _coco_document(clip, tmp_path):
    result = export_masks(clip.run_dir, "coco", tmp_path)
    assert result.path == tmp_path / "annotations" / "instances_default.json"
    return json.loads(result.path.read_text())


def test_coco_round_trip_tracks_and_scores(clip, tmp_path):
    doc = _coco_document(clip, tmp_path)
    assert doc["categories"] == [{"id": 1, "name": "polyp", "supercategory": ""}]
    images = {im["id"]: im for im in doc["images"]}
    assert [im["file_name"] for im in doc["images"]] == [f"frame_{i:06d}.jpg" for i in range(N_FRAMES)]
    decoded = {i: np.zeros((HEIGHT, WIDTH), bool) for i in range(N_FRAMES)}
    tracks = {}
    for ann in doc["annotations"]:
        assert ann["iscrowd"] == 1 and ann["category_id"] == 1
        frame = images[ann["image_id"]]["frame_index"]
        m = decode_coco_counts(ann["segmentation"])
        assert ann["area"] == m.sum()
        x, y, w, h = ann["bbox"]
        ys, xs = np.nonzero(m)
        assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        decoded[frame] |= m
        tracks.setdefault(ann["attributes"]["track_id"], []).append(frame)
        assert ann["attributes"]["score"] == ann["score"] == round((200 + frame) / 255, 4)  # from probs/
    for i in range(N_FRAMES):
        np.testing.assert_array_equal(decoded[i], clip.masks[i])
    # the polyp leaves (frames 4-6) and re-enters: two tracks
    assert sorted(tracks.values()) == [[0, 1, 2, 3], [7, 8, 9, 10, 11]]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_coco_with_pycocotools(clip, tmp_path):
    mask_utils = pytest.importorskip("pycocotools.mask")
    doc = _coco_document(clip, tmp_path)
    images = {im["id"]: im for im in doc["images"]}
    for ann in doc["annotations"]:
        h, w = ann["segmentation"]["size"]
        rle = mask_utils.frPyObjects(ann["segmentation"], h, w)
        m = mask_utils.decode(rle).astype(bool)
        frame = images[ann["image_id"]]["frame_index"]
        np.testing.assert_array_equal(m, clip.masks[frame])  # one polyp per frame here
        assert mask_utils.area(rle) == ann["area"]
        assert list(mask_utils.toBbox(rle)) == ann["bbox"]


def test_coco_splits_disconnected_components(tmp_path):
    masks = two_blob_masks(tmp_path / "m")
    doc = json.loads(export_masks(tmp_path / "m", "coco", tmp_path / "o").path.read_text())
    per_image = {}
    for ann in doc["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(ann)
        assert "score" not in ann["attributes"]  # no probs, no frames.csv: unknown
    assert [len(v) for v in per_image.values()] == [3, 3, 3]
    for k, anns in enumerate(per_image.values()):
        union = np.logical_or.reduce([decode_coco_counts(a["segmentation"]) for a in anns])
        np.testing.assert_array_equal(union, masks[k])
        assert len({a["attributes"]["track_id"] for a in anns}) == 3
    assert len({a["attributes"]["track_id"] for a in doc["annotations"]}) == 3  # same 3 tracks throughout


# --- davis ----------------------------------------------------------------------------------


def test_davis_round_trip(clip, tmp_path):
    result = export_masks(clip.run_dir, "davis", tmp_path)
    assert result.path == tmp_path / "Annotations" / "clip"
    files = sorted(p.name for p in result.path.iterdir())
    assert files == [f"{i:05d}.png" for i in range(N_FRAMES)]
    for i, expected in clip.masks.items():
        im = Image.open(result.path / f"{i:05d}.png")
        assert im.mode == "P"
        assert im.getpalette()[:6] == [0, 0, 0, 128, 0, 0]
        index = np.asarray(im)
        assert set(np.unique(index)) <= {0, 1}
        np.testing.assert_array_equal(index == 1, expected)


def test_include_frames_named_to_match(clip, tmp_path):
    result = export_masks(clip.run_dir, "davis", tmp_path, video=clip.video, include_frames=True)
    assert result.source_frames == N_FRAMES
    jpgs = sorted(p.name for p in (tmp_path / "JPEGImages" / "clip").iterdir())
    assert jpgs == [f"{i:05d}.jpg" for i in range(N_FRAMES)]
    assert Image.open(tmp_path / "JPEGImages" / "clip" / "00000.jpg").size == (WIDTH, HEIGHT)
    result = export_masks(clip.run_dir, "cvat-mask", tmp_path / "c", video=clip.video, include_frames=True)
    assert sorted(p.name for p in (tmp_path / "c" / "images").iterdir()) == [
        f"frame_{i:06d}.jpg" for i in range(N_FRAMES)
    ]


# --- linking --------------------------------------------------------------------------------


def test_track_linker_overlap_and_reentry():
    a = np.zeros((10, 10), bool)
    a[1:4, 1:4] = True
    moved = np.roll(a, 1, axis=1)
    far = np.zeros_like(a)
    far[6:9, 6:9] = True
    linker = TrackLinker()
    assert linker.link([a]) == [0]
    assert linker.link(split_components(moved | far)) == [0, 1]  # equal area: top-left first
    assert linker.link([]) == []
    assert linker.link([a]) == [2]  # re-entry starts a new track


# --- inputs and edge cases ------------------------------------------------------------------


def test_frames_without_masks_are_skipped_and_counted(clip, tmp_path):
    run = copy_without(clip.run_dir, tmp_path / "run", drop=[2, 9])
    result = export_masks(run, "davis", tmp_path / "o", video=clip.video)
    assert result.frames == N_FRAMES - 2 and result.frames_without_mask == 2
    assert not (tmp_path / "o" / "Annotations" / "run" / "00002.png").exists()
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "o" / "Annotations" / "run" / "00010.png")) == 1, clip.masks[10]
    )


def test_input_errors(clip, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no mask images"):
        export_masks(tmp_path / "empty", "coco", tmp_path / "o")
    with pytest.raises(InputError, match="not found"):
        export_masks(tmp_path / "nope", "coco", tmp_path / "o")
    odd = tmp_path / "odd"
    odd.mkdir()
    write_mask(odd / "000000.png", np.zeros((10, 10), bool))
    write_mask(odd / "000001.png", np.zeros((12, 10), bool))
    with pytest.raises(InputError, match=r"000001.png: mask is 10x12 but 000000.png is 10x10"):
        export_masks(odd, "coco", tmp_path / "o")
    small = tmp_path / "small"
    small.mkdir()
    write_mask(small / "000000.png", np.zeros((32, 48), bool))
    with pytest.raises(InputError, match="masks are 48x32 but --video frames are 96x64"):
        export_masks(small, "davis", tmp_path / "o", video=clip.video)
    late = tmp_path / "late"
    late.mkdir()
    write_mask(late / "000040.png", np.zeros((HEIGHT, WIDTH), bool))
    with pytest.raises(InputError, match="mask for frame 40 but --video has 12 frames"):
        export_masks(late, "davis", tmp_path / "o", video=clip.video)
    with pytest.raises(UsageError, match="--include-frames needs --video"):
        export_masks(clip.run_dir, "davis", tmp_path / "o", include_frames=True)
    with pytest.raises(UsageError, match="unknown --format"):
        export_masks(clip.run_dir, "yolo", tmp_path / "o")


def test_all_empty_masks_export_no_annotations(tmp_path):
    folder = tmp_path / "neg"
    folder.mkdir()
    for i in range(3):
        write_mask(folder / f"{i:06d}.png", np.zeros((8, 8), bool))
    result = export_masks(folder, "coco", tmp_path / "o")
    doc = json.loads(result.path.read_text())
    assert len(doc["images"]) == 3 and doc["annotations"] == [] and result.tracks == 0


def test_cli_export_and_error_line(clip, tmp_path):
    from test_cli import vps

    r = vps("export", clip.run_dir, "--format", "coco", "-o", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert "coco: 12 frames, 9 polyp instances in 2 tracks" in r.stderr
    r = vps("export", tmp_path / "missing", "--format", "coco", "-o", tmp_path / "o")
    assert (
        r.returncode == 1 and "mask folder not found" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    )
    r = vps("export", clip.run_dir, "--format", "coco", "-o", tmp_path / "o", "--include-frames")
    assert r.returncode == 2 and "--include-frames needs --video" in r.stderr


# --- frames without a mask are named; partial runs are said -----------------------------------


def test_frame_ranges():
    from vpscli.export.mask_sequence import frame_ranges

    assert frame_ranges(list(range(52, 100))) == "52–99"
    assert frame_ranges([2, 9]) == "2, 9"
    assert frame_ranges([0, 1, 2, 5, 7, 8, 20, 30, 31, 40]) == "0–2, 5, 7–8, 20 and 3 more frames"
    assert frame_ranges([0, 2, 4, 6, 8]) == "0, 2, 4, 6 and 1 more frame"


def test_missing_frames_are_named(clip, tmp_path):
    run = copy_without(clip.run_dir, tmp_path / "run", drop=[2, 3, 4, 5, 9])
    result = export_masks(run, "coco", tmp_path / "o", video=clip.video)
    assert result.frames_without_mask == 5 and result.missing_frames == [2, 3, 4, 5, 9]
    assert result.warnings == [
        f"{run / 'masks'}: 5 source frames have no mask file and are not annotated in the "
        "export: frames 2–5, 9"
    ]
    from test_cli import vps

    r = vps("export", run, "--format", "davis", "-o", tmp_path / "d", "--video", clip.video, "-q")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == f"warning: {result.warnings[0]}"  # --quiet does not hide lost frames


@pytest.mark.parametrize("status", ["partial", "interrupted"])
def test_partial_run_is_warned_about(clip, tmp_path, status):
    from test_cli import vps

    from vpscli.io.run_record import partial_warning

    run = copy_without(clip.run_dir, tmp_path / "run", drop=[])
    record = json.loads((run / "run.json").read_text())
    record.update(
        status=status,
        frames=N_FRAMES,
        partial={"frames_expected": 30, "frames_decoded": N_FRAMES, "reason": "decoding stopped at frame 12"},
    )
    (run / "run.json").write_text(json.dumps(record))
    expected = partial_warning(run)
    assert expected and ("12 of 30 frames" in expected if status == "partial" else "interrupted" in expected)
    result = export_masks(run / "masks", "coco", tmp_path / "o")  # the masks/ folder finds run.json beside it
    assert result.warnings == [expected]
    r = vps("export", run, "--format", "coco", "-o", tmp_path / "o2", "-q")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == f"warning: {expected}"


def test_complete_run_has_no_warning(clip, tmp_path):
    result = export_masks(clip.run_dir, "coco", tmp_path / "o")
    assert result.warnings == [] and result.missing_frames == []


# --- an existing export is never replaced silently, nor destroyed by a failing one -------------


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_existing_export_is_refused_then_replaced_with_overwrite(clip, tmp_path):
    from vpscli.errors import OutputError

    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    first = export_masks(clip.run_dir, "coco", out)
    export_masks(clip.run_dir, "cvat-video", out)  # another format's files do not conflict
    before = _tree(out)
    with pytest.raises(
        OutputError,
        match=r"o: already holds a coco export \(annotations/instances_default.json\)"
        r" — fix: pass --overwrite",
    ):
        export_masks(clip.run_dir, "coco", out, min_area=50)
    assert _tree(out) == before  # nothing written, nothing left behind
    result = export_masks(clip.run_dir, "coco", out, min_area=10_000, overwrite=True)
    assert result.path == first.path and result.replaced == [Path("annotations/instances_default.json")]
    doc = json.loads(result.path.read_text())
    assert doc["annotations"] == [] and len(doc["images"]) == N_FRAMES  # the new export, not the old one
    after = _tree(out)
    assert after["notes.txt"] == b"mine" and after["annotations.xml"] == before["annotations.xml"]
    assert sorted(after) == sorted(before)  # no staging folder or backup left


def test_overwrite_replaces_a_folder_whole(clip, tmp_path):
    out = tmp_path / "o"
    export_masks(clip.run_dir, "davis", out)
    shorter = copy_without(clip.run_dir, tmp_path / "clip", drop=[10, 11])
    result = export_masks(shorter, "davis", out, overwrite=True)
    # frames 10 and 11 of the earlier export must not linger beside the new ones
    assert sorted(p.name for p in result.path.iterdir()) == [f"{i:05d}.png" for i in range(10)]


def test_failing_export_keeps_the_previous_one(clip, tmp_path, monkeypatch):
    import vpscli.export.davis as davis

    out = tmp_path / "o"
    export_masks(clip.run_dir, "davis", out, video=clip.video, include_frames=True)
    before = _tree(out)
    real, calls = davis.palette_png_bytes, []

    def fails_on_frame_5(*args):
        calls.append(1)
        if len(calls) == 5:
            raise InputError("damaged mask", path="000004.png")
        return real(*args)

    monkeypatch.setattr(davis, "palette_png_bytes", fails_on_frame_5)
    with pytest.raises(InputError, match="damaged mask"):
        export_masks(clip.run_dir, "davis", out, video=clip.video, include_frames=True, overwrite=True)
    assert _tree(out) == before  # every previous file, byte for byte
    assert sorted(p.name for p in out.iterdir()) == ["Annotations", "JPEGImages"]  # no staging folder left
    calls.clear()
    fresh = tmp_path / "fresh"
    with pytest.raises(InputError):
        export_masks(clip.run_dir, "davis", fresh)
    assert not fresh.exists()  # a failed export into a new folder leaves no empty folder


def test_cli_refuses_existing_export_and_overwrites(clip, tmp_path):
    from test_cli import vps

    out = tmp_path / "o"
    assert vps("export", clip.run_dir, "--format", "labelstudio", "-o", out).returncode == 0
    r = vps("export", clip.run_dir, "--format", "labelstudio", "-o", out)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert f"{out}: already holds a labelstudio export (tasks.json, labeling_config.xml)" in r.stderr
    assert "--overwrite" in r.stderr
    r = vps("export", clip.run_dir, "--format", "labelstudio", "-o", out, "--overwrite", "--label", "lesion")
    assert r.returncode == 0, r.stderr
    assert (
        "replaced the previous export" in r.stderr and "lesion" in (out / "labeling_config.xml").read_text()
    )


def test_failed_swap_puts_the_previous_export_back(clip, tmp_path, monkeypatch):
    import os

    from vpscli.errors import OutputError

    out = tmp_path / "o"
    export_masks(clip.run_dir, "labelstudio", out)
    before = _tree(out)
    real = os.replace

    def replace(src, dst):  # the second file of the swap cannot be moved in
        if (
            ".vps-export-" in str(src)
            and ".replaced" not in str(src)
            and Path(dst) == out / "labeling_config.xml"
        ):
            raise PermissionError(13, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError, match="cannot move the finished export into place"):
        export_masks(clip.run_dir, "labelstudio", out, label="lesion", overwrite=True)
    assert _tree(out) == before  # tasks.json, already swapped, is back to the previous version
