#!/usr/bin/env bash
# The training run of the bundled aen-cffm weights (weights/manifest.json and weights/README.md record
# its numbers). Run from the repository root, one thread, in the background; a stopped run continues
# from its snapshot with the same command plus --resume (bit-identical to an uninterrupted run):
#
#     VPS_DATA=../shared/data nohup bash benchmarks/train_aen_cffm.sh > runs/w-aen-cffm.log 2>&1 &
#     VPS_DATA=../shared/data RESUME=--resume nohup bash benchmarks/train_aen_cffm.sh >> runs/w-aen-cffm.log 2>&1 &
#
# Two clips per sample (--aen-clips 2: 6 frames, the memory read from one earlier clip) instead of the
# default four: a step costs 0.43 samples/s instead of 0.16 on one thread (benchmarks/README.md), and
# the memory read is a softmax over however many frames are stored, so inference keeps the paper's
# memory of 3 clips. Data and validation as benchmarks/train_default.sh.
#
# While you keep working in the same checkout, run it from a frozen copy of the source, so that edits
# cannot reach the running process's later imports (validation imports modules lazily):
#     git worktree add --detach /tmp/vps-train-src HEAD
#     VPS_DATA=../shared/data PYTHONPATH=/tmp/vps-train-src nohup bash benchmarks/train_aen_cffm.sh > runs/w-aen-cffm.log 2>&1 &
set -euo pipefail
RUN=${RUN:-runs/w-aen-cffm}
source "$(dirname "$0")/neg_split.sh"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} vps train \
    --data "$DATA/kvasir-seg" --data "$DATA/cvc-clinicdb/train" --data "$SPLIT/neg-train/Frame" \
    --val "$DATA/cvc-clinicdb/valid" --val "$SPLIT/neg-val/Frame" \
    --out "$RUN" --model aen-cffm --backbone efficientnet-lite2 --size ${SIZE:-224x160} --aen-clips 2 \
    --iters ${ITERS:-1400} --batch 2 --lr ${LR:-4e-4} --val-every ${VAL_EVERY:-100} --log-every 10 \
    --synth 30 --synth-frames 16 --seed ${SEED:-0} --time-limit ${TIME_LIMIT:-110} ${INIT_BACKBONE:+--init-backbone "$INIT_BACKBONE"} ${INIT:+--init "$INIT"} ${RESUME:-}
# then: vps weights import "$RUN/best.safetensors" --half --name aen-cffm-lite2 --note "…"
