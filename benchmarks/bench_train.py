"""`vps train` speed: samples/s and frames/s per model, data time vs step time, the device-resident
store against the loader it replaced (in the same run), on the CPU or on CUDA.

    VPS_DATA=../shared/data python benchmarks/bench_train.py [--models pns-plus,aen-cffm]
        [--backbone res2net50] [--size 224x160] [--batch 2] [--steps 6] [--device cpu]
        [--workers 0] [--loaders legacy,store,store-nchw] [--compile-mode default] [--json]

    python benchmarks/bench_train.py --store-memory          # the store at every model's native size
    python benchmarks/bench_train.py --curve --iters 300     # validation after 300 steps, both loaders

For each model and loader:

- **data**: seconds to make one batch on the training device (legacy: ``DataLoader`` over the
  per-sample file decoding and OpenCV augmentation of :mod:`legacy_loader`, with ``--workers``
  processes, then the copy to the device; store: :meth:`vpscli.train.dataset.TrainSamples.batch`);
- **step**: seconds of one optimiser step on a batch already on the device;
- **end to end**: samples/s of the two together, as ``vps train`` runs them (on CUDA the store's
  batches are queued while the previous step runs; the legacy loader's workers prefetch);
  frames/s = samples/s × frames per sample (the PNS+ anchor counted).

The models are untrained (speed does not depend on the weights). ``--curve`` trains pns-plus on
EfficientNet-Lite2 from ImageNet (``bench_pretrained.py``'s recipe) with each loader through
:func:`vpscli.train.train` and reports the validation scores: the new loader must not change
what a run learns (issue 15: within ±0.03 maxDice after 300 CPU steps).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from legacy_loader import LegacyAugmentConfig, LegacyTrainSet  # noqa: E402

from vpscli.engine.device import Placement, place_model, resolve_device  # noqa: E402
from vpscli.models import build_model, get_spec  # noqa: E402
from vpscli.train.augment import AugmentConfig  # noqa: E402
from vpscli.train.dataset import TrainSamples  # noqa: E402
from vpscli.train.finetune import make_optimizer  # noqa: E402
from vpscli.train.sources import discover_source  # noqa: E402
from vpscli.train.step import train_step  # noqa: E402
from vpscli.train.store import build_store, store_size  # noqa: E402
from vpscli.train.windows import window_for  # noqa: E402


def data_root() -> Path:
    return Path(os.environ.get("VPS_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def training_sources(root: Path):
    return [
        discover_source(root / "cvc-clinicdb" / "train"),
        discover_source(root / "kvasir-seg"),
        discover_source(root / "polypgen-negatives"),
    ]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class LegacyBatches:
    """The replaced loader behind the same interface as :class:`TrainSamples` (``set_epoch``,
    ``len``, ``batch``): ``DataLoader`` workers decode and augment, then the batch is copied."""

    def __init__(self, sources, window, size, seed, augment: bool, device, workers: int = 0, batch: int = 2):
        self.ds = LegacyTrainSet(
            sources, window, size, seed=seed, augment=LegacyAugmentConfig(enabled=augment)
        )
        self.device, self.workers, self.batch_size = device, workers, batch
        self._it, self._next = None, None

    def set_epoch(self, epoch: int) -> None:
        self.ds.set_epoch(epoch)
        self._it = None

    def __len__(self) -> int:
        return len(self.ds)

    def batch(self, ks) -> dict:
        ks = list(ks)
        if self.workers == 0:
            from torch.utils.data import default_collate

            b = default_collate([self.ds[k] for k in ks])
        else:  # an epoch's loader, started at the first requested sample, with its workers prefetching
            if self._it is None or self._next != ks[0]:
                from torch.utils.data import DataLoader

                self._it = iter(
                    DataLoader(
                        self.ds,
                        batch_size=len(ks),
                        sampler=range(ks[0], len(self.ds)),
                        num_workers=self.workers,
                        drop_last=True,
                        pin_memory=self.device.type == "cuda",
                    )
                )
            b = next(self._it)
            self._next = ks[-1] + 1
        return {k: v.to(self.device, non_blocking=True) for k, v in b.items()}


def measure(args, name: str, loader: str, sources, device, size, amp: bool) -> dict:
    torch.manual_seed(0)
    model = build_model(name, backbone=args.backbone, input_size=size)
    placement = Placement.for_training(device, torch.bfloat16 if amp else None)
    if loader == "legacy" or loader.endswith("-nchw"):
        # the replaced training ran in the default memory format on the CPU (channels-last on CUDA only)
        placement = dataclasses.replace(placement, channels_last=device.type == "cuda" and loader == "legacy")
    model, forward = place_model(model, placement, training=True, mode=args.compile_mode)
    window = window_for(model.spec)
    optimizer = make_optimizer(model, 1e-5, 0.1, fused=device.type == "cuda")
    if loader.startswith("store"):
        t0 = time.perf_counter()
        store, cached = build_store(sources, store_size(size), args.cache)
        build_s = time.perf_counter() - t0
        feed = TrainSamples(store.to(device), window, size, seed=0, augment=AugmentConfig())
    else:
        build_s, cached = 0.0, False
        feed = LegacyBatches(sources, window, size, 0, True, device, args.workers, args.batch)
    b = args.batch
    n_batches = len(feed) // b

    def batch(i):
        return feed.batch(range((i % n_batches) * b, (i % n_batches + 1) * b))

    for i in range(args.warmup):  # first calls: allocator, oneDNN/cuDNN plans, compilation
        train_step(model, optimizer, batch(i), window, 1.0, amp, forward)
    sync(device)
    t0 = time.perf_counter()
    batches = [batch(args.warmup + i) for i in range(args.steps)]
    sync(device)
    data_s = (time.perf_counter() - t0) / args.steps
    t0 = time.perf_counter()
    for bt in batches:
        values = train_step(model, optimizer, bt, window, 1.0, amp, forward)
    sync(device)
    step_s = (time.perf_counter() - t0) / args.steps
    del batches
    t0 = time.perf_counter()
    for i in range(args.steps):
        values = train_step(model, optimizer, batch(2 * args.steps + i), window, 1.0, amp, forward)
    values.tolist()  # waits for the device
    total_s = time.perf_counter() - t0
    frames = window.n_frames + int(window.needs_anchor)
    sps = args.steps * b / total_s
    return {
        "model": name,
        "backbone": args.backbone,
        "device": str(device),
        "loader": loader,
        "workers": args.workers if loader == "legacy" else 0,
        "batch": b,
        "size": f"{size[1]}x{size[0]}",
        "samples_per_s": sps,
        "frames_per_s": sps * frames,
        "data_ms": 1000 * data_s,
        "step_ms": 1000 * step_s,
        "data_share": data_s / (data_s + step_s),
        "store_build_s": build_s,
        "store_cached": cached,
        "compile_mode": args.compile_mode,
        "amp": amp,
        "channels_last": placement.channels_last,
        "gpu_peak_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }


def store_memory(args, sources) -> list[dict]:
    rows = []
    for name in ("pns-plus", "aen-cffm"):
        size = get_spec(name).input_size
        t0 = time.perf_counter()
        store, cached = build_store(sources, store_size(size), args.cache)
        rows.append(
            {
                "model": name,
                "input": f"{size[1]}x{size[0]}",
                "store": f"{store.size[1]}x{store.size[0]}",
                "frames": int(store.frames.shape[0]),
                "mib": store.nbytes / 2**20,
                "seconds": time.perf_counter() - t0,
                "cached": cached,
            }
        )
        del store
    return rows


def curve(args, root: Path) -> list[dict]:
    """300 steps of pns-plus on EfficientNet-Lite2 (ImageNet) with each loader, then validation."""
    from vpscli.train import TrainConfig, start, train

    rows = []
    size = parse_size(args.size)
    for loader in ("legacy", "store"):
        out = Path(args.out) / loader
        cfg = TrainConfig(
            model="pns-plus",
            backbone="efficientnet-lite2",
            pretrained=True,
            data=[str(root / "cvc-clinicdb" / "train"), str(root / "kvasir-seg")],
            val=[str(root / "cvc-clinicdb" / "valid"), str(root / "polypgen-negatives")],
            out=str(out),
            iters=args.iters,
            batch=args.batch,
            lr=5e-4,
            input_size=size,
            device=args.device,
            seed=0,
            val_every=args.iters,
            save_every=args.iters,
            log_every=10,
            cache_dir=args.cache,
            resume=(out / "checkpoint.pt").exists(),
        )
        real_samples, real_store = start.TrainSamples, start._load_store
        if loader == "legacy":
            start._load_store = lambda cfg_, sources, size_, reporter: _Unplaced(sources)
            start.TrainSamples = lambda store, window, size_, seed, augment: LegacyBatches(
                store.sources, window, size_, seed, augment.enabled, resolve_device(args.device)[0]
            )
        try:
            result = train(cfg)
        finally:
            start.TrainSamples, start._load_store = real_samples, real_store
        rows.append(
            {
                "loader": loader,
                **result.last_val,
                "steps": result.step,
                "train_s": round(result.seconds),
                "samples_per_s": result.samples_per_s,
            }
        )
    return rows


class _Unplaced:
    """Stands for the store in the legacy run: the sources, for :class:`LegacyBatches`."""

    def __init__(self, sources):
        self.sources = sources

    def to(self, device):
        return self


def _cell(v) -> str:
    return "" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")  # WIDTHxHEIGHT, as vps train --size
    return int(h), int(w)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="pns-plus")
    p.add_argument("--backbone", default="res2net50")
    p.add_argument("--size", default="224x160", help="WIDTHxHEIGHT, or 'native'")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=0, help="legacy loader processes")
    p.add_argument(
        "--loaders",
        default="legacy,store",
        help="legacy (the replaced loader and placement), store "
        "(vps train today), store-nchw (store without channels-last: the memory format's share)",
    )
    p.add_argument("--compile-mode", default=None)
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--cache", default=None, help="store cache folder (default: a temporary one)")
    p.add_argument("--store-memory", action="store_true")
    p.add_argument("--curve", action="store_true")
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--out", default="bench-train")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    root = data_root()
    if not (root / "cvc-clinicdb" / "train").is_dir():
        print(
            f"no training data under {root}: set VPS_DATA (../shared/data or ../shared/data-pack)",
            file=sys.stderr,
        )
        return 2
    tmp = tempfile.TemporaryDirectory()
    args.cache = args.cache or tmp.name
    sources = training_sources(root)
    if args.store_memory:
        rows = store_memory(args, sources)
    elif args.curve:
        rows = curve(args, root)
    else:
        device, _ = resolve_device(args.device)
        amp = device.type == "cuda" and not args.no_amp
        rows = []
        for name in args.models.split(","):
            size = get_spec(name).input_size if args.size == "native" else parse_size(args.size)
            for loader in args.loaders.split(","):
                rows.append(measure(args, name, loader, sources, device, size, amp))
            legacy = next((r for r in rows if r["model"] == name and r["loader"] == "legacy"), None)
            for r in rows:
                if legacy and r["model"] == name:
                    r["vs_legacy"] = r["samples_per_s"] / legacy["samples_per_s"]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(_cell(r.get(k)) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
