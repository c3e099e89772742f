"""What ``vps segment --tta`` (the clip and its mirror image, probabilities averaged) buys and costs:
validation scores and model time per frame, with and without it, in one run.

    VPS_DATA=../shared/data python benchmarks/bench_tta.py [--model M] [--weights FILE]
        [--negatives runs/split/neg-val/Frame] [--threads 1] [--json]

Scores the CVC-ClinicDB valid clips with ``vps train``'s validation (the ``vps segment`` inference entry
and the ``vps evaluate`` toolbox protocol: maxDice, meanDice, S-measure, MAE, maxIoU) and the share of
clean held-out polyp-free frames before the persistence filter (``neg_clean``; ``benchmarks/train_default.sh``
links the two held-out sequences into ``runs/split/neg-val/Frame``). Seconds are wall time on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    import torch

    from vpscli.engine.tta import MirrorAveraged
    from vpscli.train.sources import discover_source
    from vpscli.train.validate import validate
    from vpscli.weights.store import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--weights")
    ap.add_argument("--negatives", default="runs/split/neg-val/Frame")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = Path(os.environ.get("VPS_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    valid = data / "cvc-clinicdb" / "valid"
    if not valid.is_dir():
        print(f"no CVC-ClinicDB valid clips under {data}: set VPS_DATA", file=sys.stderr)
        return 2
    sources = [discover_source(valid)] + (
        [discover_source(args.negatives)] if Path(args.negatives).is_dir() else []
    )
    loaded = load_model(args.model, args.weights)
    rows = {}
    for name, net in (("plain", loaded.net), ("tta", MirrorAveraged(loaded.net))):
        t0 = time.perf_counter()
        result = validate(net, sources, torch.device("cpu"))
        seconds = time.perf_counter() - t0
        frames = result.n_frames + sum(len(s) for src in sources[1:] for s in src.sequences)
        rows[name] = {
            **{k: round(v, 4) for k, v in result.metrics.items()},
            "seconds": round(seconds, 1),
            "ms_per_frame": round(1000 * seconds / max(frames, 1), 1),
        }
    if args.json:
        print(json.dumps({"weights": loaded.describe(), "rows": rows}, indent=2))
        return 0
    print(f"{loaded.describe()}; {args.threads} thread(s)")
    keys = [k for k in rows["plain"] if k not in ("seconds", "ms_per_frame")]
    print("| | " + " | ".join(keys) + " | ms/frame (validation, end to end) |")
    print("|---" * (len(keys) + 2) + "|")
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.4f}" for k in keys) + f" | {r['ms_per_frame']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
