"""Parameters, GFLOPs and forward time per frame of every model at its native input size.

Usage: ``python benchmarks/bench_models.py [--device cpu|cuda] [--backbone res2net50|efficientnet-lite2]
[--repeats 3] [--json]``

Time is the median of ``--repeats`` steady-state steps (cache/memory/anchor warmed) under
``torch.inference_mode`` (bf16 autocast on CUDA), divided by the frames per step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from vpscli.models import available_models, build_model, count_parameters, gflops_per_frame


def bench(name: str, device: str, repeats: int, backbone: str = "res2net50") -> dict:
    model = build_model(name, backbone=backbone).eval().to(device)
    spec = model.spec
    h, w = spec.input_size
    t = spec.clip_length
    state = model.init_state()
    anchor = torch.randn(1, 3, h, w, device=device) if spec.needs_anchor else None
    times = []
    ctx = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device == "cuda"
        else torch.autocast("cpu", enabled=False)
    )
    with torch.inference_mode(), ctx:
        for i in range(repeats + 1):  # the first step warms the state (and CUDA kernels)
            clip = torch.randn(1, t, 3, h, w, device=device)
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(clip, state, anchor=anchor if i == 0 else None)
            if device == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - start)
    return {
        "name": name,
        "backbone": backbone,
        "input_size": f"{h}x{w}",
        "window": spec.window_text(),
        "params_M": round(count_parameters(model) / 1e6, 2),
        "gflops_per_frame": round(gflops_per_frame(model.cpu()), 2),
        "ms_per_frame": round(1000 * statistics.median(times) / t, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--backbone", default="res2net50", help="res2net50 or efficientnet-lite2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [bench(n, args.device, args.repeats, args.backbone) for n in available_models()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'model':<14}{'input':>9}{'params (M)':>12}{'GFLOPs/frame':>14}{'ms/frame':>10}  window")
    for r in rows:
        print(
            f"{r['name']:<14}{r['input_size']:>9}{r['params_M']:>12}{r['gflops_per_frame']:>14}"
            f"{r['ms_per_frame']:>10}  {r['window']}"
        )


if __name__ == "__main__":
    main()
