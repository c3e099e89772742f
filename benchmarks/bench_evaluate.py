"""``vps evaluate`` speed and memory against the reference toolbox's per-frame computation.

Generates a SUN-SEG-like set (sequences of soft predictions against moving elliptic polyps) at 352x352
and 1920x1080, then in one process times:

- vps: the whole evaluation (reading, all 17 metrics, aggregation) with 1 worker and with ``--workers``;
- the reference: GewelsJI/VPS ``eval/metrics.py`` (fetched into a scratch folder *outside* the repo and
  passed with ``--ref``; never copied here) on a sample of the same frames — read both maps, resize,
  then the six metric modules' ``step``, exactly what its evaluator does per frame;

prints a table with the per-frame times and the speed ratio, checks that per-frame values agree (max abs
difference over every scalar and curve), and measures peak RSS for a 10,000-frame run (``--rss-frames``).

    git clone https://github.com/GewelsJI/VPS /tmp/VPS   # or any copy of its eval/ folder
    python benchmarks/bench_evaluate.py --ref /tmp/VPS/eval
    python benchmarks/bench_evaluate.py --ref /tmp/VPS/eval --cli     # the command end to end

``--cli`` times what a user waits for: the ``vps evaluate PRED GT`` command in a fresh process (start-up,
matching, scoring with its default workers, the detection view, tables), on 204 frames (4 × 51) and
1,020 frames (20 × 51) at 352×352, against the reference's per-frame time on a sample of the same
frames times the frames it would score.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from vpscli.metrics import build_plan, evaluate_plan, score_files
from vpscli.metrics.keys import FAMILIES, METRIC_KEYS


def make_set(root: Path, n_seq: int, n_frames: int, width: int, height: int, seed: int = 0) -> Path:
    """SUN-SEG-like GT and predictions: root/gt/GT/caseN/<frame>.png and root/pred/<same>."""
    rng = np.random.default_rng(seed)
    for s in range(n_seq):
        case = f"case{s + 1}"
        gdir, pdir = root / "gt" / "GT" / case, root / "pred" / case
        gdir.mkdir(parents=True, exist_ok=True)
        pdir.mkdir(parents=True, exist_ok=True)
        cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
        ax, ay = rng.uniform(0.05, 0.18) * width, rng.uniform(0.05, 0.18) * height
        for f in range(n_frames):
            name = f"case_M_20181001100941_0U62372100109341_1_005_001-1_a{s % 9 + 1}_ayy_image{f + 1:04d}.png"
            gt = np.zeros((height, width), np.uint8)
            centre = (int(cx + 0.01 * width * f * np.cos(s)), int(cy + 0.01 * height * np.sin(f / 7)))
            cv2.ellipse(gt, centre, (int(ax), int(ay)), 15.0 * s, 0, 360, 255, -1)
            shift = np.float32([[1, 0, rng.normal(0, 0.02 * width)], [0, 1, rng.normal(0, 0.02 * height)]])
            prob = cv2.warpAffine(gt, shift, (width, height)).astype(np.float32)
            prob = cv2.GaussianBlur(prob, (0, 0), 0.01 * width)
            prob += rng.normal(0, 6, prob.shape).astype(np.float32) * (rng.random() < 0.5)  # haze on half
            cv2.imwrite(str(gdir / name), gt)
            cv2.imwrite(str(pdir / name), np.clip(prob, 0, 255).astype(np.uint8))
    return root


def load_reference(ref: Path):
    spec = importlib.util.spec_from_file_location("vps_reference_metrics", ref / "metrics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_frame(module, gt_path: Path, pred_path: Path) -> dict:
    """The reference evaluator's work for one frame; returns its per-frame values."""
    pred = cv2.imread(str(pred_path), cv2.IMREAD_GRAYSCALE)
    gt = cv2.imread(str(gt_path), cv2.IMREAD_GRAYSCALE)
    if pred.shape != gt.shape:
        pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]))
    names = ("Smeasure", "WeightedFmeasure", "MAE", "Emeasure", "Fmeasure", "Medical")
    mods = {n: getattr(module, n)(length=1) for n in names}
    for m in mods.values():
        m.step(pred=pred, gt=gt, idx=0)
    md = mods["Medical"]
    return {
        "Smeasure": mods["Smeasure"].sms[0], "wFmeasure": mods["WeightedFmeasure"].weighted_fms[0],
        "MAE": mods["MAE"].maes[0], "adpEm": mods["Emeasure"].adaptive_ems[0],
        "Em": mods["Emeasure"].changeable_ems[0], "adpFm": mods["Fmeasure"].adaptive_fms[0],
        "Fm": mods["Fmeasure"].changeable_fms[0], "Dice": md.threshold_Dice[0], "IoU": md.threshold_IoU[0],
        "Sen": md.threshold_Sensitivity[0], "Spe": md.threshold_Specificity[0],
    }  # fmt: skip


def time_vps(root: Path, workers: int) -> tuple[float, int]:
    plan = build_plan(root / "pred", root / "gt", keep_ends=True)
    first = next(plan.frame_jobs())
    score_files(first[3], first[4]["."], frozenset(FAMILIES))  # warm-up: imports and caches
    start = time.perf_counter()
    evaluate_plan(plan, METRIC_KEYS, workers=workers)
    return time.perf_counter() - start, plan.n_frames


def reference_per_frame(reference, root: Path, k: int) -> float:
    """Mean seconds of the reference's per-frame work on ``k`` frames of ``root``."""
    gts = sorted((root / "gt" / "GT").rglob("*.png"))
    sample = gts[:: max(1, len(gts) // k)][:k]
    start = time.perf_counter()
    for g in sample:
        reference_frame(reference, g, root / "pred" / g.parent.name / g.name)
    return (time.perf_counter() - start) / len(sample)


def cli_rows(work: Path, reference, k: int) -> list[dict]:
    """The command end to end on 204 and 1,020 frames against the reference (see the module doc)."""
    rows = []
    for seqs in (4, 20):
        root = work / f"cli-{seqs}x51"
        if not (root / "gt").exists():
            make_set(root, seqs, 51, 352, 352)
        scored = build_plan(root / "pred", root / "gt").n_frames  # the toolbox drops each sequence's ends
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "vpscli", "evaluate", str(root / "pred"), str(root / "gt"), "-q"],
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - start
        ref = reference_per_frame(reference, root, k) * scored
        rows.append(
            {
                "frames": seqs * 51,
                "scored": scored,
                "reference_s": ref,
                "vps_s": seconds,
                "ratio": ref / seconds,
            }
        )
    return rows


def max_rss_mib_of(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB of the largest process) of a command run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(before, after) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--ref", type=Path, help="folder with the reference toolbox's metrics.py (outside the repo)"
    )
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seqs", type=int, default=20)
    ap.add_argument("--frames", type=int, default=50, help="frames per sequence at 352x352")
    ap.add_argument("--hd-frames", type=int, default=10, help="frames per sequence at 1920x1080")
    ap.add_argument("--ref-sample", type=int, default=40, help="frames timed with the reference at 352x352")
    ap.add_argument("--ref-sample-hd", type=int, default=6, help="frames timed with the reference at 1080p")
    ap.add_argument("--rss-frames", type=int, default=10_000, help="frames of the memory run (0: skip)")
    ap.add_argument("--cli", action="store_true", help="only the command end to end against the reference")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    work = args.work or Path(tempfile.mkdtemp(prefix="vps-bench-"))
    reference = load_reference(args.ref) if args.ref else None
    if args.cli:
        if reference is None:
            sys.exit("--cli needs --ref (the reference toolbox's eval/ folder)")
        print("| frames (352×352) | scored by the toolbox | reference | vps evaluate (command) | ratio |")
        print("|---|---|---|---|---|")
        for r in cli_rows(work, reference, args.ref_sample):
            print(
                f"| {r['frames']} | {r['scored']} | {r['reference_s']:.1f} s | {r['vps_s']:.2f} s | "
                f"{r['ratio']:.0f}× |"
            )
        return
    if reference is None:
        print("no --ref given: timing vps only")

    rows = []
    for label, (w, h), n_frames in (
        ("352x352", (352, 352), args.frames),
        ("1920x1080", (1920, 1080), args.hd_frames),
    ):
        root = work / label
        if not (root / "gt").exists():
            t = time.perf_counter()
            make_set(root, args.seqs, n_frames, w, h)
            print(f"generated {label}: {args.seqs} x {n_frames} frames in {time.perf_counter() - t:.0f} s")
        one, n = time_vps(root, 1)
        many, _ = time_vps(root, args.workers)
        row = {"size": label, "frames": n, "vps_1": one / n, "vps_n": many / n}
        if reference is not None:
            gts = sorted((root / "gt" / "GT").rglob("*.png"))
            k = args.ref_sample if w < 1000 else args.ref_sample_hd
            sample = gts[:: max(1, len(gts) // k)][:k]
            # Interleaved, frame by frame, so that both see the same machine load.
            ref_time = vps_time = worst = 0.0
            for g in sample:
                p = root / "pred" / g.parent.name / g.name
                t0 = time.perf_counter()
                want = reference_frame(reference, g, p)
                t1 = time.perf_counter()
                got = score_files(g, p, frozenset(FAMILIES))
                t2 = time.perf_counter()
                ref_time, vps_time = ref_time + t1 - t0, vps_time + t2 - t1
                mine = {**got.scalars, **got.curves}
                for key, value in want.items():
                    a, b = np.asarray(value, float), np.asarray(mine[key], float)
                    same_nan = np.array_equal(np.isnan(a), np.isnan(b))
                    diff = np.nanmax(np.abs(a - b)) if np.isfinite(a).any() else 0.0
                    worst = max(worst, diff if same_nan else np.inf)
            row["ref"] = ref_time / len(sample)
            row["same_frame_ratio"] = ref_time / vps_time
            row["maxdiff"] = worst
        rows.append(row)

    print()
    print(
        f"{'size':>10} {'frames':>7} {'reference':>12} {'vps 1 proc':>12} {'vps ' + str(args.workers) + ' procs':>12}"
        f" {'ratio 1':>8} {'ratio ' + str(args.workers):>8} {'same-frame':>10} {'max |diff|':>11}"
    )
    for r in rows:
        ref = r.get("ref")
        print(
            f"{r['size']:>10} {r['frames']:>7} "
            + (f"{ref * 1e3:>9.1f} ms" if ref else f"{'-':>12}")
            + f" {r['vps_1'] * 1e3:>9.2f} ms {r['vps_n'] * 1e3:>9.2f} ms"
            + (
                f" {ref / r['vps_1']:>7.0f}x {ref / r['vps_n']:>7.0f}x {r['same_frame_ratio']:>9.0f}x"
                f" {r['maxdiff']:>11.2g}"
                if ref
                else ""
            )
        )
    print(
        "(per-frame times; reference = read + 6 metric modules of GewelsJI/VPS eval/metrics.py, one process;"
    )
    print(" ratio N = reference / whole vps run with N processes; same-frame = both timed frame by frame,")
    print(" interleaved on the reference's sample, one process each — robust to other load on the machine)")

    if args.rss_frames:
        src = work / "352x352"
        big = work / f"rss-{args.rss_frames}"
        if not (big / "gt").exists():  # hard links to the generated frames: 10,000 files, little disk
            pairs = sorted((src / "gt" / "GT").rglob("*.png"))
            per_case = 100
            for i in range(args.rss_frames):
                g = pairs[i % len(pairs)]
                case = f"case{i // per_case + 1}"
                name = f"{i % per_case + 1:05d}.png"
                for kind, source in (("gt/GT", g), ("pred", src / "pred" / g.parent.name / g.name)):
                    d = big / kind / case
                    d.mkdir(parents=True, exist_ok=True)
                    os.link(source, d / name)
        for workers in (1, args.workers):
            cmd = [
                sys.executable,
                "-m",
                "vpscli",
                "evaluate",
                str(big / "pred"),
                str(big / "gt"),
                "-m",
                "all",
                "-q",
                "-j",
                str(workers),
            ]
            seconds, rss = max_rss_mib_of(cmd)
            print(
                f"{args.rss_frames} frames, 352x352, all metrics, {workers} worker(s): {seconds:.1f} s, "
                f"peak RSS of the largest process {rss:.0f} MiB"
            )


if __name__ == "__main__":
    main()
