from pathlib import Path

from vpscli.io.naming import natural_key, natural_sorted


def test_numbers_compare_as_numbers():
    names = ["seq1_img10.jpg", "seq1_img2.jpg", "seq1_img1.jpg", "seq10_img1.jpg", "seq2_img3.jpg"]
    assert natural_sorted(names) == [
        "seq1_img1.jpg",
        "seq1_img2.jpg",
        "seq1_img10.jpg",
        "seq2_img3.jpg",
        "seq10_img1.jpg",
    ]


def test_unpadded_cvc_names_and_paths():
    files = [Path(f"/x/{i}.png") for i in (10, 1, 100, 2, 11)]
    assert [p.stem for p in natural_sorted(files)] == ["1", "2", "10", "11", "100"]


def test_sun_seg_names_and_case_insensitivity():
    a = "case_M_20181001100941_0U62372100109341_1_005_001-1_a13_ayy_image0009.jpg"
    b = "case_M_20181001100941_0U62372100109341_1_005_001-1_a13_ayy_image0010.jpg"
    assert natural_sorted([b, a]) == [a, b]
    assert natural_sorted(["B2", "a10", "a9"]) == ["a9", "a10", "B2"]


def test_ties_are_total_and_deterministic():
    assert natural_sorted(["01.png", "1.png", "001.png"]) == natural_sorted(["1.png", "001.png", "01.png"])
    assert natural_key("1.png") != natural_key("01.png")
