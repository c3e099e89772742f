"""`vps report`: review pages read from what `vps segment` wrote — episodes, timeline, thumbnails, what ran —
checked as data and, in headless Chromium, as a person uses them (click, seek, offline, screenshot)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests._models import scripted_stand_in
from vpscli.cli import main
from vpscli.engine import Segmenter, SegmentOptions, segment_video
from vpscli.io.sources import open_source
from vpscli.report import render_report, write_index, write_report
from vpscli.report.data import read_run
from vpscli.synth import SynthConfig, write_clip

#: 39 frames at 25 fps; with --min-persistence 3 the kept episodes are frames 4-10, 18-21 and 28-34
PATTERN = "##..#######.#.....####....#.#######...."
EPISODES = [(4, 10), (18, 21), (28, 34)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    write_clip(d, SynthConfig(frames=len(PATTERN), width=128, height=96, seed=5), "mp4", "clip")
    seg = Segmenter(scripted_stand_in(PATTERN), device="cpu")
    segment_video(seg, open_source(d / "clip.mp4"), SegmentOptions(out_root=d / "out", min_persistence=3))
    return d


def _rows(folder: Path) -> list[dict]:
    with open(folder / "frames.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_episodes_are_the_runs_of_written_masks(run_dir):
    folder = run_dir / "out" / "clip"
    run = read_run(folder)
    assert [(e.start, e.end) for e in run.episodes] == EPISODES
    rows = _rows(folder)
    for e in run.episodes:
        assert e.start_s == pytest.approx(float(rows[e.start]["timestamp"]))
        assert e.end_s == pytest.approx(float(rows[e.end]["timestamp"]) + 1 / 25)
        assert e.peak == pytest.approx(max(float(r["max_prob"]) for r in rows[e.start : e.end + 1]))
        areas = [float(r["area_fraction"]) for r in rows[e.start : e.end + 1]]
        assert e.largest == e.start + int(np.argmax(areas)) and e.largest_area == pytest.approx(max(areas))


def test_page_shows_every_episode_the_timeline_and_what_ran(run_dir):
    folder = run_dir / "out" / "clip"
    html = render_report(folder)
    assert html.count('class="episode-row"') == 3
    assert len(re.findall(r'<rect class="episode" data-episode="\d+"', html)) == 3
    assert '<video id="player"' in html and 'src="overlay.mp4"' in html
    assert html.count("data:image/jpeg;base64,") == 6  # each episode: the frame and the crop
    assert "a network run without trained weights" in html
    assert "Complete: 39 frames." in html and "lasts 3 frames or more" in html
    # nothing the page loads is outside it or the run folder
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert all(s == "overlay.mp4" or s.startswith("data:") or s == "#" for s in sources), sources
    assert "http://" not in html and "https://" not in html


def test_user_text_is_escaped_and_a_run_without_overlay_has_no_player(run_dir, tmp_path):
    folder = tmp_path / "<b onmouseover=alert(1)>clip"
    shutil.copytree(run_dir / "out" / "clip", folder)
    (folder / "overlay.mp4").unlink()
    record = json.loads((folder / "run.json").read_text())
    record["notes"] = ['<img src=x onerror="alert(2)">']
    (folder / "run.json").write_text(json.dumps(record))
    html = render_report(folder)
    assert "<b onmouseover" not in html and "&lt;b onmouseover=alert(1)&gt;clip" in html
    assert "<img src=x onerror" not in html and "&lt;img src=x onerror" in html
    assert "<video" not in html and "No overlay video was written" in html
    assert html.count('class="episode-row"') == 3  # thumbnails from the source video instead


def test_partial_and_interrupted_runs_say_so(run_dir, tmp_path):
    for status, said in (
        ("partial", "Partial: the video ended early"),
        ("interrupted", "Interrupted: the run was stopped after 39 of 39"),
    ):
        folder = tmp_path / status
        shutil.copytree(run_dir / "out" / "clip", folder)
        record = json.loads((folder / "run.json").read_text())
        record["status"] = status
        (folder / "run.json").write_text(json.dumps(record))
        html = render_report(folder)
        assert said in html and f"status-{status}" in html


def test_ground_truth_adds_the_toolbox_numbers_and_marks_gt_frames(run_dir):
    folder = run_dir / "out" / "clip"
    html = render_report(folder, gt=run_dir / "GT" / "clip")
    assert 'id="gt-metrics"' in html and "maxDice" in html and 'class="gt"' in html
    assert "frame sensitivity" in html


def test_cli_report_for_a_batch_writes_pages_and_an_index(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(run_dir / "out", out)
    shutil.copytree(out / "clip", out / "second")
    assert main(["report", str(out), "-q"]) == 0
    assert (out / "clip" / "report.html").is_file() and (out / "second" / "report.html").is_file()
    index = (out / "index.html").read_text()
    assert 'href="clip/report.html"' in index and 'href="second/report.html"' in index
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert main(["report", str(out), "--gt", str(run_dir / "GT" / "clip")]) == 2  # --gt takes one video


def test_segment_report_flag_writes_the_page(run_dir, tmp_path, monkeypatch):
    from vpscli.weights.store import LoadedModel

    monkeypatch.setattr(
        "vpscli.weights.store.load_model",
        lambda model=None, weights=None: LoadedModel(scripted_stand_in(PATTERN)),
    )
    assert (
        main(
            [
                "segment",
                str(run_dir / "clip.mp4"),
                "-o",
                str(tmp_path / "o"),
                "--report",
                "-q",
                "--min-persistence",
                "3",
            ]
        )
        == 0
    )
    assert (tmp_path / "o" / "clip" / "report.html").read_text().count('class="episode-row"') == 3


def test_an_hour_long_video_page_stays_small(tmp_path):
    """90,000 frames (1 hour at 25 fps), 300 episodes: the page (thumbnails inline) stays under 20 MB
    (its opening time in a browser is measured by benchmarks/bench_report.py)."""
    from benchmarks.bench_report import make_run

    folder = tmp_path / "hour"
    assert make_run(folder, minutes=60, episodes=300) == 90_000
    page = write_report(folder)
    html = page.read_text()
    assert html.count('class="episode-row"') == 300 and html.count("data:image/jpeg") == 600
    assert page.stat().st_size < 20e6


# ---------------------------------------------------------------- in a real browser


def _browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver)")
    selenium = pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    del selenium
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.mark.browser
def test_page_in_a_browser_click_seek_offline_screenshot(run_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    folder = run_dir / "out" / "clip"
    page = write_report(folder, gt=run_dir / "GT" / "clip")
    run = read_run(folder)
    browser = _browser()
    try:
        browser.get(page.resolve().as_uri())
        WebDriverWait(browser, 30).until(
            lambda b: b.execute_script("return document.getElementById('player').readyState >= 1")
        )
        rows = browser.find_elements(By.CSS_SELECTOR, ".episode-row")
        assert len(rows) == len(run.episodes) == 3
        assert browser.find_element(By.ID, "episode-count").text == "3"
        for row, episode in zip(rows, run.episodes):
            row.click()
            now = browser.execute_script("return document.getElementById('player').currentTime")
            assert now == pytest.approx(episode.start_s, abs=0.01)
            assert "current" in row.get_attribute("class")
        # a click on the timeline seeks to the time under the pointer
        box = browser.find_element(By.ID, "timeline-box")
        width = box.size["width"]
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(browser).move_to_element_with_offset(
            box, int(width * 0.25) - width // 2, 0
        ).click().perform()
        now = browser.execute_script("return document.getElementById('player').currentTime")
        assert now == pytest.approx(0.25 * run.duration_s, abs=0.06)
        # offline: everything the page loaded is the page itself, inline data, or the overlay beside it
        loaded = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".concat([document.getElementById('player').currentSrc])"
        )
        assert loaded and all(u.startswith(("file:", "data:")) for u in loaded), loaded
        shot = tmp_path / "report.png"
        browser.save_screenshot(str(shot))
        # a narrow screen (a phone): the page reflows instead of scrolling sideways
        browser.set_window_size(400, 900)
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, overflow
    finally:
        browser.quit()
    import cv2

    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] >= 1000 and image.std() > 20


@pytest.mark.browser
def test_index_page_links_each_video(run_dir, tmp_path):
    from selenium.webdriver.common.by import By

    out = tmp_path / "out"
    shutil.copytree(run_dir / "out", out)
    shutil.copytree(out / "clip", out / "second")
    pages = [write_report(out / name) for name in ("clip", "second")]
    index = write_index(out, [out / "clip", out / "second"])
    browser = _browser()
    try:
        browser.get(index.resolve().as_uri())
        links = browser.find_elements(By.CSS_SELECTOR, "#videos a")
        assert [link.text for link in links] == ["clip", "second"]
        links[1].click()
        assert browser.current_url == pages[1].resolve().as_uri()
        assert len(browser.find_elements(By.CSS_SELECTOR, ".episode-row")) == 3
    finally:
        browser.quit()


def test_a_failed_run_with_no_frame_gets_a_page_that_says_so(tmp_path, weights):
    """A video that fails before its first frame: run.json says failed, frames.csv is empty; the page says
    what failed and shows no episode (nothing to draw, nothing invented)."""
    from vpscli.errors import InputError

    write_clip(tmp_path, SynthConfig(frames=30, width=96, height=64, seed=2), "mp4", "full")
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    with pytest.raises(InputError):
        segment_video(seg, open_source(tmp_path / "cut.mp4"), SegmentOptions(out_root=tmp_path / "out"))
    html = render_report(tmp_path / "out" / "cut")
    assert "Failed: " in html and "0 frames were written before it stopped" in html
    assert 'class="episode-row"' not in html and "No episode" in html and "<video" not in html
