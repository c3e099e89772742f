#!/usr/bin/env bash
# pns-net-lite2 at a larger input (320×224, twice the pixels of the bundled 224×160), fine-tuned from the
# 224×160 run's best weights. Run from the repository root, one thread, in the background, from a frozen
# copy of the source while you edit the checkout; a stopped run continues with RESUME=--resume:
#
#     git worktree add --detach /tmp/vps-train-src HEAD
#     VPS_DATA=../shared/data PYTHONPATH=/tmp/vps-train-src nohup bash benchmarks/train_pnsnet_320.sh > runs/w-pnsnet320.log 2>&1 &
#     VPS_DATA=../shared/data PYTHONPATH=/tmp/vps-train-src RESUME=--resume nohup bash benchmarks/train_pnsnet_320.sh >> runs/w-pnsnet320.log 2>&1 &
#
# Data and validation as benchmarks/train_default.sh. The other fine-tunings at a new size
# (benchmarks/train_pnsnet_448.sh) run this script with SIZE, ITERS, LR, VAL_EVERY and SEED of their own.
set -euo pipefail
RUN=${RUN:-runs/w-pnsnet320}
INIT=${INIT:-runs/w-pnsnet/best.safetensors}
SIZE=${SIZE:-320x224} ITERS=${ITERS:-2400} LR=${LR:-2e-4} VAL_EVERY=${VAL_EVERY:-200} SEED=${SEED:-2}
source "$(dirname "$0")/neg_split.sh"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} vps train \
    --data "$DATA/kvasir-seg" --data "$DATA/cvc-clinicdb/train" --data "$SPLIT/neg-train/Frame" \
    --val "$DATA/cvc-clinicdb/valid" --val "$SPLIT/neg-val/Frame" \
    --out "$RUN" --model pns-net --backbone efficientnet-lite2 --size "$SIZE" \
    --init "$INIT" --iters "$ITERS" --batch 2 --lr "$LR" --warmup 50 --val-every "$VAL_EVERY" --log-every 25 \
    --synth 30 --synth-frames 16 --seed "$SEED" --time-limit ${TIME_LIMIT:-150} ${RESUME:-} "$@"
# then: vps weights import "$RUN/best.safetensors" --half --name pns-net-lite2-320 --note "…"
