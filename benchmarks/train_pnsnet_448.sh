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
# Data, validation and the rest of the recipe as benchmarks/train_pnsnet_320.sh, which this runs.
set -euo pipefail
RUN=${RUN:-runs/w-pnsnet448} INIT=${INIT:-runs/w-pnsnet320/best.safetensors} \
    SIZE=448x256 ITERS=1200 LR=1.5e-4 VAL_EVERY=150 SEED=3 TIME_LIMIT=${TIME_LIMIT:-110} \
    bash "$(dirname "$0")/train_pnsnet_320.sh"
# then: vps weights import "$RUN/best.safetensors" --half --name pns-net-lite2-448 --note "…"
