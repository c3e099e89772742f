"""Which per-frame decision separates polyp frames from polyp-free ones: "the mask at the threshold
has a pixel" (``vps segment``'s rule without a presence level) against "the frame's peak probability
reaches a level τ" (``--presence τ``), each before and after the persistence filter.

Usage::

    VPS_DATA=../shared/data python benchmarks/bench_frame_decision.py [--model M] [--weights FILE]
        [--levels 0.5,0.6,0.7,0.8,0.9,0.95] [--min-persistence 6] [--tta] [--json]

Segments, once per model and weights, the CVC-ClinicDB valid clips (every frame has a polyp in its
GT) and the two held-out PolypGen polyp-free sequences (:data:`HELD_OUT_NEGATIVES`, never trained on),
keeping each frame's peak probability, and reports for each level τ:

- **frame sensitivity**: GT-positive frames flagged, before and after the filter;
- **clean polyp-free frames**: held-out polyp-free frames left without a mask after the filter;
- the AUC of the peak probability as a polyp-frame score (valid frames against polyp-free frames).

τ = threshold is the mask rule (a mask has a pixel exactly when its peak reaches the threshold). The
levels are measured on the validation data that also picks the level, so the clean share is an
optimistic estimate; the held-out figures of the model card are the team's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from vpscli.episodes import persistent

HELD_OUT_NEGATIVES = ("seq2_neg", "seq6_neg")


def peaks(model: str | None, weights: str | None, data: Path, tta: bool = False) -> dict:
    """``{"positive": {clip: [peak…]}, "negative": {seq: [peak…]}, "model": …, "sha256": …}``."""
    from vpscli.engine import Segmenter
    from vpscli.engine.device import model_cpu_threads, set_cpu_threads
    from vpscli.io.sources import discover_sources
    from vpscli.weights import default_model

    model = model or default_model()
    set_cpu_threads(model_cpu_threads(None))
    kw = {"tta": True} if tta else {}
    seg = Segmenter(model, weights, device="cpu", **kw)
    out = {"model": model, "sha256": seg.weights_sha256, "tta": tta, "positive": {}, "negative": {}}
    for source in discover_sources([str(data / "cvc-clinicdb" / "valid" / "Frame")]):
        out["positive"][source.name] = [_features(r) for r in seg.run(source)]
    for name in HELD_OUT_NEGATIVES:
        (source,) = discover_sources([str(data / "polypgen-negatives" / "Frame" / name)])
        out["negative"][name] = [_features(r) for r in seg.run(source)]
    return out


def _features(result) -> tuple[float, float]:
    """(peak probability, mask area as a share of the frame) of one frame."""
    return float(result.max_prob), float(result.mask.mean())


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a polyp frame's peak exceeds a polyp-free frame's (ties count half)."""
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def table(p: dict, levels: list[float], n: int) -> list[dict]:
    rows = []
    for level in levels:
        pos_before = pos_after = pos_total = 0
        for clip in p["positive"].values():
            flags = [peak >= level for peak, _ in clip]
            pos_total += len(flags)
            pos_before += sum(flags)
            pos_after += sum(persistent(flags, n))
        neg_total = neg_clean_before = neg_clean_after = 0
        for seq in p["negative"].values():
            flags = [peak >= level for peak, _ in seq]
            neg_total += len(flags)
            neg_clean_before += len(flags) - sum(flags)
            neg_clean_after += len(flags) - sum(persistent(flags, n))
        rows.append(
            {
                "level": level,
                "sensitivity_before": pos_before / pos_total,
                "sensitivity_after": pos_after / pos_total,
                "clean_before": neg_clean_before / neg_total,
                "clean_after": neg_clean_after / neg_total,
                "positive_frames": pos_total,
                "negative_frames": neg_total,
            }
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--weights")
    ap.add_argument("--levels", default="0.5,0.6,0.7,0.8,0.9,0.95,0.98")
    ap.add_argument("--min-persistence", type=int, default=6)
    ap.add_argument("--tta", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data = Path(os.environ.get("VPS_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    if not (data / "cvc-clinicdb" / "valid").is_dir():
        print(f"no CVC-ClinicDB valid clips under {data}: set VPS_DATA", file=sys.stderr)
        return 2
    p = peaks(args.model, args.weights, data, args.tta)
    rows = table(p, [float(x) for x in args.levels.split(",")], args.min_persistence)
    pos = np.concatenate([np.array(v) for v in p["positive"].values()])  # (frames, 2): peak, mask area
    neg = np.concatenate([np.array(v) for v in p["negative"].values()])
    scores = {"peak": auc(pos[:, 0], neg[:, 0]), "area": auc(pos[:, 1], neg[:, 1])}
    if args.json:
        print(json.dumps({"model": p["model"], "sha256": p["sha256"], "auc": scores, "rows": rows}, indent=2))
        return 0
    print(
        f"{p['model']} (sha256 {str(p['sha256'])[:12]}{', TTA' if args.tta else ''}): {len(pos)} valid frames, "
        f"{len(neg)} held-out polyp-free frames; AUC as a polyp-frame score: peak probability {scores['peak']:.3f}, "
        f"mask area {scores['area']:.3f}; polyp-free peaks: max {neg[:, 0].max():.3f}, 95th percentile "
        f"{np.quantile(neg[:, 0], 0.95):.3f}"
    )
    print(
        f"| frame decision | sensitivity | sensitivity after N={args.min_persistence} | clean polyp-free "
        f"| clean after N={args.min_persistence} |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| peak ≥ {r['level']:.2f} | {r['sensitivity_before']:.3f} | {r['sensitivity_after']:.3f} | "
            f"{100 * r['clean_before']:.1f} % | {100 * r['clean_after']:.1f} % |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
