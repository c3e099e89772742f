"""What the persistence filter (``vps segment --min-persistence N``) buys and costs, for N = 1 … 8.

Usage::

    VPS_DATA=../shared/data python benchmarks/bench_persistence.py [--model M] [--weights FILE]
        [--threshold 0.5] [--cache runs/bench-persistence-flags.json] [--max-n 8] [--json]
        [--negatives all|held-out]

``--negatives held-out``: score only the two polyp-free sequences no bundled weights were trained on
(:data:`HELD_OUT_NEGATIVES`; ``benchmarks/train_default.sh`` trains on the other five).

Segments, once, the CVC-ClinicDB valid clips (``cvc-clinicdb/valid/Frame/<clip>/``, scored against
``GT/<clip>/``) and the PolypGen polyp-free sequences (``polypgen-negatives/Frame/<seq>/``) with
``vps segment``'s defaults (the default model and its bundled weights, threshold 0.5, CPU), and keeps
whether the model flagged each frame (its thresholded mask is non-empty) in ``--cache``; a later run
with the same model, weights and threshold reuses the cache. Then, for each N, the filter of
:func:`vpscli.episodes.persistent` — exactly what ``vps segment`` applies — is run over each clip's flags:

- **positive clips**: GT-positive frames (GT > 128 somewhere) detected before the filter and lost by it,
  frame-level sensitivity after it, and the polyp episodes (runs of GT-positive frames) still detected;
- **polyp-free sequences**: the share of frames left clean (no mask) after the filter, and the
  false-alarm episodes left.

CVC-ClinicDB frames are sampled from their videos, not consecutive, so N of them span more time than N
video frames: a run of real detections is shorter here (in frames) than in a full-rate video, and the
cost measured here is on the pessimistic side for a given N. Opt-in: not part of the tests (one
minute for the 373 frames with the bundled pns-plus on a 2-core CPU, seconds with the cache).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from vpscli.episodes import episode_detections, persistent, runs

#: the PolypGen polyp-free sequences held out of training for validation (one 1920×1080, one 720×576)
HELD_OUT_NEGATIVES = ("seq2_neg", "seq6_neg")


def segment_flags(args, data: Path) -> dict:
    """``{"positive": {clip: {"flags": [...], "gt": [...]}}, "negative": {seq: {"flags": [...]}}}`` for the
    model, weights and threshold of ``args`` (from the cache when it matches)."""
    from vpscli.engine import Segmenter
    from vpscli.engine.device import model_cpu_threads, set_cpu_threads
    from vpscli.io.sources import discover_sources
    from vpscli.metrics.frame import read_map
    from vpscli.weights import default_model

    model = args.model or default_model()
    set_cpu_threads(model_cpu_threads(None))  # as vps segment does
    seg = Segmenter(model, args.weights, device="cpu", threshold=args.threshold)
    key = {"model": model, "weights_sha256": seg.weights_sha256, "threshold": args.threshold}
    cache = Path(args.cache)
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return stored
    t0 = time.perf_counter()
    out: dict = {"key": key, "positive": {}, "negative": {}}
    valid = data / "cvc-clinicdb" / "valid"
    for source in discover_sources([str(valid / "Frame")]):
        flags, gt = [], []
        for r in seg.run(source):
            flags.append(bool(r.mask.any()))
            gt.append(bool((read_map(valid / "GT" / source.name / f"{r.name}.png")[0] > 128).any()))
        out["positive"][source.name] = {"flags": flags, "gt": gt}
    for source in discover_sources([str(data / "polypgen-negatives" / "Frame")]):
        out["negative"][source.name] = {"flags": [bool(r.mask.any()) for r in seg.run(source)]}
    out["segment_seconds"] = round(time.perf_counter() - t0, 1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out) + "\n")
    return out


def table(flags: dict, max_n: int) -> list[dict]:
    """One row per N: what the filter keeps on the positive clips and leaves on the polyp-free ones."""
    rows = []
    for n in range(1, max_n + 1):
        detected_before = detected_after = gt_frames = episodes_found = gt_episodes = 0
        for clip in flags["positive"].values():
            gt = np.array(clip["gt"])
            before = np.array(clip["flags"])
            after = np.array(persistent(clip["flags"], n))
            gt_frames += int(gt.sum())
            detected_before += int((before & gt).sum())
            detected_after += int((after & gt).sum())
            found = episode_detections(clip["gt"], list(after))
            gt_episodes += len(found)
            episodes_found += sum(not e.missed for e in found)
        neg_frames = neg_clean = episodes = 0
        for seq in flags["negative"].values():
            kept = persistent(seq["flags"], n)
            neg_frames += len(kept)
            neg_clean += len(kept) - sum(kept)
            episodes += len(runs(kept))
        rows.append(
            {
                "N": n,
                "gt_positive_frames": gt_frames,
                "detected_before": detected_before,
                "lost": detected_before - detected_after,
                "lost_share": (detected_before - detected_after) / detected_before
                if detected_before
                else 0.0,
                "sensitivity_after": detected_after / gt_frames if gt_frames else float("nan"),
                "gt_episodes": gt_episodes,
                "gt_episodes_detected": episodes_found,
                "negative_frames": neg_frames,
                "negative_clean": neg_clean / neg_frames if neg_frames else float("nan"),
                "false_alarm_episodes": episodes,
            }
        )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="default: vps segment's default model")
    p.add_argument("--weights", default=None, help="default: the model's bundled weights")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--cache", default="runs/bench-persistence-flags.json")
    p.add_argument("--max-n", type=int, default=8)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--negatives",
        choices=("all", "held-out"),
        default="all",
        help="which polyp-free sequences to score (held-out: %s)" % ", ".join(HELD_OUT_NEGATIVES),
    )
    args = p.parse_args()
    data = Path(os.environ.get("VPS_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    if not (data / "cvc-clinicdb" / "valid").is_dir() or not (data / "polypgen-negatives").is_dir():
        print(
            f"no CVC-ClinicDB valid clips or PolypGen negatives under {data}: set VPS_DATA", file=sys.stderr
        )
        return 2
    flags = segment_flags(args, data)
    if args.negatives == "held-out":
        flags = {**flags, "negative": {k: v for k, v in flags["negative"].items() if k in HELD_OUT_NEGATIVES}}
    rows = table(flags, args.max_n)
    if args.json:
        print(json.dumps({"key": flags["key"], "rows": rows}, indent=2))
        return 0
    key = flags["key"]
    n_pos = sum(len(c["flags"]) for c in flags["positive"].values())
    print(
        f"{key['model']} (weights sha256 {str(key['weights_sha256'])[:12]}), threshold {key['threshold']}: "
        f"{len(flags['positive'])} CVC-ClinicDB valid clips ({n_pos} frames, {rows[0]['gt_positive_frames']} "
        f"GT-positive), {len(flags['negative'])} PolypGen polyp-free sequences ({rows[0]['negative_frames']} "
        f"frames); segmentation {flags.get('segment_seconds', '?')} s"
    )
    print(
        "| N | GT-positive frames detected | lost by the filter | sensitivity | polyp episodes detected "
        "| polyp-free frames clean | false-alarm episodes |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['N']} | {r['detected_before'] - r['lost']} of {r['gt_positive_frames']} | {r['lost']} "
            f"({100 * r['lost_share']:.1f} %) | {r['sensitivity_after']:.3f} | {r['gt_episodes_detected']} of "
            f"{r['gt_episodes']} | {100 * r['negative_clean']:.1f} % | {r['false_alarm_episodes']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
