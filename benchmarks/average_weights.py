"""The mean of several checkpoints' parameters (weight averaging), written as a vps checkpoint that
``vps weights import`` takes.

    python benchmarks/average_weights.py OUT.safetensors A.safetensors B.safetensors [...]

The checkpoints must be of one model, backbone and input size: two points of one fine-tuning trajectory
(a run and the weights it started from) average into a model between them, which can keep the better of
each (validation decides, as for a training step). Floating-point tensors are averaged in float32; integer
buffers (BatchNorm's step count) are taken from the first file. The output records the recipe of every
input, the union of their training data and no validation figures (measure them on the result).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def average(out: Path, files: list[Path]) -> dict[str, str]:
    from vpscli.models import build_model
    from vpscli.models.checkpoint import (
        load_checkpoint,
        metadata_input_size,
        read_state_dict,
        save_checkpoint,
    )

    metas = [read_state_dict(f)[1] for f in files]
    kinds = {(m.get("model"), m.get("backbone"), metadata_input_size(m)) for m in metas}
    if len(kinds) != 1 or None in next(iter(kinds)):
        raise SystemExit(
            f"the checkpoints differ in model, backbone or input size (or do not record them): {kinds}"
        )
    name, backbone, size = next(iter(kinds))
    model = build_model(name, backbone=backbone, input_size=size)
    states = []
    for f in files:
        load_checkpoint(model, f)
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    mean = {
        k: (sum(s[k].float() for s in states) / len(states)).to(v.dtype) if v.is_floating_point() else v
        for k, v in states[0].items()
    }
    model.load_state_dict(mean)
    data: list[str] = []
    for m in metas:
        data += [d for d in json.loads(m.get("data", "[]")) if d not in data]
    recipe = f"mean of the parameters of {len(files)} checkpoints: " + "; ".join(
        f"{f.name} ({m.get('recipe', 'no recipe recorded')}, {m.get('steps', '?')} steps)"
        for f, m in zip(files, metas)
    )
    meta = {"recipe": recipe, "data": json.dumps(data), "steps": metas[0].get("steps", "")}
    save_checkpoint(model, out, meta)
    return meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("files", type=Path, nargs="+")
    args = ap.parse_args()
    if len(args.files) < 2:
        ap.error("give at least two checkpoints to average")
    meta = average(args.out, args.files)
    print(f"wrote {args.out}: {meta['recipe']}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
