#!/usr/bin/env bash
# aen-cffm-lite2 at a larger input, fine-tuned from the bundled 224x160 weights
# (weights/aen-cffm-lite2.safetensors, benchmarks/train_aen_cffm_polyp.sh), as the PNS-Net sizes were
# (benchmarks/train_pnsnet_320.sh). The recipe otherwise is benchmarks/train_aen_cffm.sh's, which this
# runs: 2 clips per sample, backbone lr x 0.1, frozen BatchNorm statistics. SIZE, ITERS, LR and SEED
# may be set from the environment (the 448x256 run: SIZE=448x256 ITERS=400 SEED=5 RUN=runs/w-aen-cffm448).
#
# Measured (2026-12-06, both runs side by side, one thread each, stopped after 500 and 300 steps): the
# fine-tuning lowers CVC-ClinicDB valid maxDice. 320x224: 0.760, 0.664, 0.725, 0.683, 0.669 at steps
# 100-500; 448x256: 0.741, 0.720, 0.710 at steps 100-300. The same 224x160 weights, not trained further
# and run at 320x224 (their per-position weights resized, `vps weights import --size 320x224`), score
# 0.835, and that is what the bundled aen-cffm-lite2 is (weights/README.md). Not bundled.
# Run from the repository root, one thread, in the background, from a frozen copy of the source while
# you edit the checkout (as train_aen_cffm.sh says); a stopped run continues with RESUME=--resume:
#
#     VPS_DATA=../shared/data PYTHONPATH=/tmp/vps-train-src nohup bash benchmarks/train_aen_cffm_320.sh > runs/w-aen-cffm320.log 2>&1 &
#     VPS_DATA=../shared/data PYTHONPATH=/tmp/vps-train-src RESUME=--resume nohup bash benchmarks/train_aen_cffm_320.sh >> runs/w-aen-cffm320.log 2>&1 &
set -euo pipefail
RUN=${RUN:-runs/w-aen-cffm320} INIT=${INIT:-weights/aen-cffm-lite2.safetensors} \
    SIZE=${SIZE:-320x224} ITERS=${ITERS:-700} LR=${LR:-1.5e-4} SEED=${SEED:-4} TIME_LIMIT=${TIME_LIMIT:-100} \
    bash "$(dirname "$0")/train_aen_cffm.sh"
# then: vps weights import "$RUN/best.safetensors" --half --name aen-cffm-lite2-320 --note "…"
