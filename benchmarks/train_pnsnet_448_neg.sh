#!/usr/bin/env bash
# pns-net-lite2-448 fine-tuned further at 448×256 with the training polyp-free sequences seen NEG_COPIES
# times as often (each of seq1/3/4/5/7 linked NEG_COPIES times under $SPLIT/neg-train/Frame), to ask
# whether more polyp-free clips in training clear the confident false alarms on folds that the persistence
# filter keeps. Validation and the rest of the recipe as benchmarks/train_pnsnet_320.sh, which this runs;
# a snapshot and a validation every 75 steps, so the frame decision can be measured on each. Run from the
# repository root, one thread, in the background, from a frozen copy of the source:
#
#     git worktree add --detach /tmp/vps-train-src HEAD
#     NEG_COPIES=4 VPS_DATA=../shared/data PYTHONPATH=/tmp/vps-train-src nohup bash benchmarks/train_pnsnet_448_neg.sh > runs/w-pnsnet448-neg4.log 2>&1 &
set -euo pipefail
NEG_COPIES=${NEG_COPIES:-4}
export SPLIT=${SPLIT:-runs/split-neg$NEG_COPIES}
source "$(dirname "$0")/neg_split.sh"
for s in 1 3 4 5 7; do
    for ((k = 2; k <= NEG_COPIES; k++)); do ln -sfn "$NEG/seq${s}_neg" "$SPLIT/neg-train/Frame/seq${s}_neg_copy$k"; done
done
RUN=${RUN:-runs/w-pnsnet448-neg$NEG_COPIES} INIT=${INIT:-weights/pns-net-lite2-448.safetensors} \
    SIZE=448x256 ITERS=${ITERS:-450} LR=${LR:-1e-4} VAL_EVERY=75 SEED=${SEED:-4} TIME_LIMIT=${TIME_LIMIT:-60} \
    bash "$(dirname "$0")/train_pnsnet_320.sh" --save-every 75
