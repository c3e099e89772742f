#!/usr/bin/env bash
# The GPU path's checks and figures in one prepared run (issues 13 and 15), for a CUDA machine without network.
#
# Here, first:   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#                    --platform manylinux2014_x86_64 -d .whl av imageio-ffmpeg kornia kornia-rs
#                cp -r ../shared/data-pack .data-pack          (git-ignored; carry .whl and .data-pack)
# There:         OUT=/some/folder bash benchmarks/gpu_check.sh      (about 11 minutes on an H200)
#                STEPS=train OUT=… bash benchmarks/gpu_check.sh   (only the training figures, about 3 minutes)
#
# Writes to $OUT: doctor.txt, segment_cuda.txt (every model, 1080p H.264, masks + overlay: model alone,
# end to end, stages, GPU memory short → long), pipeline_cuda.txt (--model-free), compile.txt (aen-cffm with
# CUDA graphs: --compile-mode reduce-overhead), jobs.txt (aen-cffm, 8 videos at once), identity.txt (bundled
# weights on the demo clip: CPU vs CUDA masks and probabilities), train_cuda.txt (bench_train.py at native
# size: pns-plus batch 16 and aen-cffm batch 8, store vs the old loader with 12 workers), and each step's stderr.
# A smoke test of this script on a CPU: PY=.venv/bin/python DEVICE=cpu SIZE=320x180 FRAMES=4 MODELS=pns-net \
#     STATEFUL=cffm bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-/tmp/vps-gpu-check}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-1920x1080}
FRAMES=${FRAMES:-30}
MODELS=${MODELS:-pns-net,pns-plus,cffm,aen-pns-plus,aen-cffm}
STATEFUL=${STATEFUL:-aen-cffm}
STEPS=${STEPS:-segment,train}
DATA=${DATA:-.data-pack}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
py=${PY:-python3}
step() {  # step NAME SECONDS COMMAND...: one check, bounded, its output kept even when it fails
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err"
    echo "$name: exit $? in $((SECONDS - t0)) s"
}
step doctor 60 $py -m vpscli doctor
if [[ ",$STEPS," == *,train,* ]]; then
    tb="env VPS_DATA=$DATA $py benchmarks/bench_train.py --device $DEVICE --size ${TRAIN_SIZE:-native} --workers 12"
    step train_cuda 150 $tb --models pns-plus --batch 16 --steps 10
    step train_cuda_aen 150 $tb --models aen-cffm --batch 8 --steps 10
fi
[[ ",$STEPS," == *,segment,* ]] || { echo "results in $OUT"; exit 0; }
bench="$py benchmarks/bench_segment.py --device $DEVICE --size $SIZE --frames $FRAMES"
step segment_cuda 240 $bench --models "$MODELS"
step pipeline_cuda 90 $bench --model-free --models "pns-plus,$STATEFUL"
step compile 150 $bench --models "$STATEFUL" --compile-mode reduce-overhead
step jobs 150 $bench --models "$STATEFUL" --jobs 8
demo=/tmp/vps-demo
rm -rf "$demo"
$py -m vpscli synth "$demo" --frames 48 --seed 7000 --name demo-clip --quiet
for run in "cpu fp32" "$DEVICE fp32" "$DEVICE auto"; do
    set -- $run
    $py -m vpscli segment "$demo/demo-clip.mp4" -o "$demo/$1-$2" --device "$1" --precision "$2" --save-prob \
        --no-overlay --overwrite --quiet
done
step identity 60 $py - "$demo" <<'EOF'
import sys
from pathlib import Path

import numpy as np

from vpscli.io.masks import read_mask

root = Path(sys.argv[1])
cpu = root / "cpu-fp32" / "demo-clip"
for other in sorted(p.name for p in root.iterdir() if (p / "demo-clip" / "probs").is_dir() and p.name != "cpu-fp32"):
    gpu = root / other / "demo-clip"
    worst, flipped, pixels = 0, 0, 0
    for p in sorted((cpu / "probs").iterdir()):
        a, b = (read_mask(d / "probs" / p.name).array.astype(int) for d in (cpu, gpu))
        worst = max(worst, int(np.abs(a - b).max()))
        ma, mb = (read_mask(d / "masks" / p.name).array > 0 for d in (cpu, gpu))
        flipped += int((ma != mb).sum())
        pixels += ma.size
    print(f"CPU fp32 vs {other}, bundled weights, demo clip: largest probability difference {worst} levels "
          f"(target ≤ 1), {flipped} of {pixels} mask pixels differ (target 0)")
EOF
echo "results in $OUT"
