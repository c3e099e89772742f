#!/usr/bin/env bash
# The training run of the bundled pns-net weights (weights/manifest.json and weights/README.md record
# its numbers). Run from the repository root, one thread, in the background; a stopped run continues
# from its snapshot with the same command plus --resume:
#
#     VPS_DATA=../shared/data nohup bash benchmarks/train_pnsnet.sh > runs/w-pnsnet.log 2>&1 &
#     VPS_DATA=../shared/data RESUME=--resume nohup bash benchmarks/train_pnsnet.sh >> runs/w-pnsnet.log 2>&1 &
#
# Data and validation as benchmarks/train_default.sh (the same 5/2 split of the PolypGen polyp-free
# sequences).
set -euo pipefail
RUN=${RUN:-runs/w-pnsnet}
source "$(dirname "$0")/neg_split.sh"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} vps train \
    --data "$DATA/kvasir-seg" --data "$DATA/cvc-clinicdb/train" --data "$SPLIT/neg-train/Frame" \
    --val "$DATA/cvc-clinicdb/valid" --val "$SPLIT/neg-val/Frame" \
    --out "$RUN" --model pns-net --backbone efficientnet-lite2 --size 224x160 \
    --iters 3000 --batch 2 --lr 5e-4 --val-every 250 --log-every 25 \
    --synth 30 --synth-frames 16 --seed 0 --time-limit 120 ${RESUME:-}
# then: vps weights import "$RUN/best.safetensors" --half --name pns-net-lite2 --note "…"
