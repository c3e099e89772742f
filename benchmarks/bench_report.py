"""`vps report` on a long video: page size and the time Chromium takes to open it.

    python benchmarks/bench_report.py [--minutes 60] [--episodes 300] [--runs 3]

Builds a synthetic run folder as `vps segment` would write it for a video of ``--minutes`` at 25 fps
(frames.csv, run.json, a mask per frame of each episode; no overlay, so the page holds no player), writes
its page with :func:`vpscli.report.write_report` (timed), and opens it ``--runs`` times in Debian's
headless Chromium through Selenium, reporting the navigation's ``loadEventEnd`` (the page parsed, styled,
its SVG and thumbnails decoded) — the target is under 2 s for a 1-hour video, and under 20 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_run(folder: Path, minutes: float, episodes: int) -> int:
    """A run folder as ``vps segment`` writes it for ``minutes`` of 25 fps video with ``episodes`` detection
    episodes (no overlay); returns its frame count. ``tests/test_report.py`` builds its hour-long run here."""
    from vpscli.io.frames_csv import CSV_COLUMNS
    from vpscli.io.masks import write_mask

    (folder / "masks").mkdir(parents=True)
    n, h, w = int(minutes * 60 * 25), 270, 480
    present = np.zeros(n, bool)
    spacing = n // max(episodes, 1)
    for k in range(episodes):
        present[k * spacing + 10 : k * spacing + 10 + 20 + k % 30] = True
    mask = np.zeros((h, w), np.uint8)
    mask[100:160, 200:280] = 255
    with open(folder / "frames.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        for i in range(n):
            p = bool(present[i])
            out.writerow(
                [
                    i,
                    f"{i:06d}",
                    f"{i / 25:.6f}",
                    int(p),
                    f"{0.037 if p else 0:.6f}",
                    f"{0.99 if p else 0.1:.6f}",
                    *([200, 100, 80, 60] if p else ["", "", "", ""]),
                    int(p),
                    0,
                ]
            )
    for i in np.flatnonzero(present):
        write_mask(folder / "masks" / f"{i:06d}.png", mask)
    (folder / "run.json").write_text(
        json.dumps(
            {
                "status": "complete",
                "model": "pns-plus",
                "backbone": "efficientnet-lite2",
                "threshold": 0.5,
                "min_persistence": 6,
                "probe": {"kind": "video", "fps": 25.0, "frame_count": n, "width": w, "height": h},
                "source": str(folder / "gone.mp4"),
                "frames": n,
            }
        )
    )
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from vpscli.report import write_report

    work = Path(tempfile.mkdtemp(prefix="vps-report-bench-"))
    try:
        n = make_run(work / "run", args.minutes, args.episodes)
        t = time.perf_counter()
        page = write_report(work / "run")
        written = time.perf_counter() - t
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
            options.add_argument(flag)
        loads = []
        for _ in range(args.runs):
            browser = webdriver.Chrome(
                service=Service(shutil.which("chromedriver") or "chromedriver"), options=options
            )
            try:
                browser.get(page.resolve().as_uri())
                loads.append(
                    browser.execute_script(
                        "const e = performance.getEntriesByType('navigation')[0]; return e.loadEventEnd / 1000"
                    )
                )
            finally:
                browser.quit()
        print(f"| video | frames | episodes | page | written in | opens in (Chromium, {args.runs} runs) |")
        print("|---|---|---|---|---|---|")
        print(
            f"| {args.minutes:g} min at 25 fps | {n} | {args.episodes} | {page.stat().st_size / 1e6:.1f} MB | "
            f"{written:.1f} s | {min(loads):.2f}–{max(loads):.2f} s |"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
