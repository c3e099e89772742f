#!/usr/bin/env bash
# aen-cffm started from a backbone that already knows polyps: the first three stages of its
# EfficientNet-Lite2 come from the bundled pns-net-lite2 (trained on the same data at the same
# 224x160), the fourth stage from ImageNet, the head from the seed. Otherwise the recipe of
# benchmarks/train_aen_cffm.sh (2 clips per sample, lr 4e-4, backbone lr x 0.1, frozen BatchNorm
# statistics), 1,100 steps. Run from the repository root, one thread, in the background (from a
# frozen copy of the source while you edit the checkout, as that script says):
#
#     VPS_DATA=../shared/data nohup bash benchmarks/train_aen_cffm_polyp.sh > runs/w-aen-cffm3.log 2>&1 &
#     VPS_DATA=../shared/data RESUME=--resume nohup bash benchmarks/train_aen_cffm_polyp.sh >> runs/w-aen-cffm3.log 2>&1 &
set -euo pipefail
RUN=${RUN:-runs/w-aen-cffm3} ITERS=${ITERS:-1100} SEED=${SEED:-2} TIME_LIMIT=${TIME_LIMIT:-130} \
    INIT_BACKBONE=${INIT_BACKBONE:-weights/pns-net-lite2.safetensors} \
    bash "$(dirname "$0")/train_aen_cffm.sh"
