#!/usr/bin/env bash
# The training run of the bundled default weights (weights/manifest.json and the README's model card
# record its numbers). Run from the repository root:
#
#     VPS_DATA=../shared/data bash benchmarks/train_default.sh          # ≈ 95 min on a 2-core CPU, 1 thread
#
# Data: Kvasir-SEG (stills as pseudo-clips), CVC-ClinicDB train clips, 5 of the 7 PolypGen polyp-free
# sequences and 30 `vps synth` clips; validation: CVC-ClinicDB valid clips and the 2 held-out polyp-free
# sequences (seq2_neg, seq6_neg: `bench_persistence.py --negatives held-out` scores them).
set -euo pipefail
RUN=${RUN:-runs/w-pnsplus}
source "$(dirname "$0")/neg_split.sh"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} vps train \
    --data "$DATA/kvasir-seg" --data "$DATA/cvc-clinicdb/train" --data "$SPLIT/neg-train/Frame" \
    --val "$DATA/cvc-clinicdb/valid" --val "$SPLIT/neg-val/Frame" \
    --out "$RUN" --model pns-plus --backbone efficientnet-lite2 --size 224x160 \
    --iters 2800 --batch 2 --lr 5e-4 --val-every 250 --log-every 25 \
    --synth 30 --synth-frames 16 --seed 0 --time-limit 125
# then: vps weights import "$RUN/best.safetensors" --half --name pns-plus-lite2 --note "…"
