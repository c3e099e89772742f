#!/usr/bin/env bash
# pns-net-lite2 at the papers' input size (448×256, 1.6× the pixels of 320×224), fine-tuned from the
# 320×224 run's best weights (benchmarks/train_pnsnet_320.sh). Run from the repository root, one thread,
# in the background, from a frozen copy of the source while you edit the checkout; a stopped run continues
# with RESUME=--resume:
#
#     git worktree add --detach /tmp/vps-train-src HEAD
#     VPS_DATA=../shared/data PYTHONPATH=/tmp/vps-train-src nohup bash benchmarks/train_pnsnet_448.sh > runs/w-pnsnet448.log 2>&1 &
#     VPS_DATA=../shared/data PYTHONPATH=/tmp/vps-train-src RESUME=--resume nohup bash benchmarks/train_pnsnet_448.sh >> runs/w-pnsnet448.log 2>&1 &
#
# Data and validation as benchmarks/train_default.sh.
set -euo pipefail
RUN=${RUN:-runs/w-pnsnet448}
INIT=${INIT:-runs/w-pnsnet320/best.safetensors}
source "$(dirname "$0")/neg_split.sh"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} vps train \
    --data "$DATA/kvasir-seg" --data "$DATA/cvc-clinicdb/train" --data "$SPLIT/neg-train/Frame" \
    --val "$DATA/cvc-clinicdb/valid" --val "$SPLIT/neg-val/Frame" \
    --out "$RUN" --model pns-net --backbone efficientnet-lite2 --size 448x256 \
    --init "$INIT" --iters 1200 --batch 2 --lr 1.5e-4 --warmup 50 --val-every 150 --log-every 25 \
    --synth 30 --synth-frames 16 --seed 3 --time-limit ${TIME_LIMIT:-110} ${RESUME:-}
# then: vps weights import "$RUN/best.safetensors" --half --name pns-net-lite2-448 --note "…"
