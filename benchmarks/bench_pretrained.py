"""How much an ImageNet-initialised backbone helps: the same model, the same data, the same number
of steps, once from ImageNet and once from random initialisation, scored on held-out clips.

Usage::

    VPS_DATA=../shared/data python benchmarks/bench_pretrained.py \\
        [--model pns-plus] [--backbone efficientnet-lite2] [--iters 300] [--size 224x160] [--lr 5e-4] \\
        [--batch 2] [--out bench-pretrained] [--json]

Both runs train with ``vps train``'s loop (:func:`vpscli.train.train`) on CVC-ClinicDB train clips
plus Kvasir-SEG stills (as pseudo-clips), seed 0, and validate once at the end with the training
validation (the ``vps evaluate`` protocol) on the CVC-ClinicDB valid clips and, for the share of
clean frames, the PolypGen polyp-free frames. The pretrained run is ``vps train``'s default for a
backbone with ImageNet weights (backbone learning rate × 0.1, frozen backbone BatchNorm statistics);
the other is ``--no-pretrained``. Needs the ``vps[train]`` extra (the ImageNet weights) and
``VPS_DATA``. Opt-in: not part of the tests (≈ 20 minutes on a 2-core CPU at the defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vpscli.train import TrainConfig, train


def run(args, data: Path, pretrained: bool) -> dict:
    h, w = _hw(args.size)
    out = Path(args.out) / ("imagenet" if pretrained else "scratch")
    cfg = TrainConfig(
        model=args.model,
        backbone=args.backbone,
        pretrained=pretrained,
        data=[str(data / "cvc-clinicdb" / "train"), str(data / "kvasir-seg")],
        val=[str(data / "cvc-clinicdb" / "valid"), str(data / "polypgen-negatives")],
        out=str(out),
        iters=args.iters,
        batch=args.batch,
        lr=args.lr,
        input_size=(h, w),
        device="cpu",
        seed=0,
        val_every=args.iters,
        save_every=args.iters,
        log_every=10,
        resume=(out / "checkpoint.pt").exists(),
    )
    result = train(cfg)
    return {
        "init": "ImageNet" if pretrained else "random",
        **result.last_val,
        "steps": result.step,
        "train_s": round(result.seconds),
    }


def _hw(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")  # WIDTHxHEIGHT, as vps train --size
    return int(h), int(w)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="pns-plus")
    p.add_argument("--backbone", default="efficientnet-lite2")
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--size", default="224x160", help="WIDTHxHEIGHT")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--out", default="bench-pretrained")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    data = Path(os.environ.get("VPS_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    if not (data / "cvc-clinicdb" / "valid").is_dir():
        print(f"no CVC-ClinicDB under {data}: set VPS_DATA", file=sys.stderr)
        return 2
    rows = [run(args, data, pretrained) for pretrained in (True, False)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    keys = ["maxDice", "meanDice", "Smeasure", "MAE", "neg_clean"]
    print(
        f"{args.model} on {args.backbone}, {args.size}, {args.iters} steps of {args.batch} clips, lr {args.lr}"
    )
    print("| init | " + " | ".join(keys) + " | train time |")
    print("|---|" + "---|" * (len(keys) + 1))
    for r in rows:
        print(
            f"| {r['init']} | "
            + " | ".join(f"{r.get(k, float('nan')):.3f}" for k in keys)
            + f" | {r['train_s']} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
