#!/usr/bin/env bash
# Digest of what vps writes, for checking that a change to the code leaves outputs unchanged: segments
# the demo clip and the CVC-ClinicDB valid clips with each bundled model (one thread; MODELS to choose), scores
# them, and prints one sha256 per mask PNG, probability PNG (of its decoded pixels: the same image encoded
# with other PNG settings has the same digest), frames.csv and evaluate JSON. Compare two
# runs with diff (the same WORKDIR both times: evaluate's JSON names the folders it read):
#     bash benchmarks/outputs_digest.sh /tmp/digest > /tmp/before.txt
#     bash benchmarks/outputs_digest.sh /tmp/digest > /tmp/after.txt
#     diff /tmp/a.txt /tmp/b.txt && echo identical
set -euo pipefail
OUT=${1:?usage: outputs_digest.sh WORKDIR}
DATA=${VPS_DATA:-../shared/data}
export OMP_NUM_THREADS=1
rm -rf "$OUT" && mkdir -p "$OUT"
vps synth "$OUT/demo" --frames 48 --seed 7000 --name demo-clip --quiet
for m in ${MODELS:-pns-net pns-plus aen-cffm}; do
    vps segment "$OUT/demo/demo-clip.mp4" -m "$m" -o "$OUT/$m/seg-demo" --save-prob --no-overlay --quiet
    vps segment "$DATA/cvc-clinicdb/valid/Frame"/* -m "$m" -o "$OUT/$m/seg-valid" --save-prob --no-overlay --quiet
    vps evaluate "$OUT/$m/seg-demo" "$OUT/demo/GT" --keep-ends --json "$OUT/$m/eval-demo.json" --quiet
    vps evaluate "$OUT/$m/seg-valid" "$DATA/cvc-clinicdb/valid/GT" --json "$OUT/$m/eval-valid.json" --quiet
done
cd "$OUT"
find . \( -name '*.png' -o -name frames.csv -o -name 'eval-*.json' \) -path '*/*/*' -not -path './demo/*' -type f \
    | sort | python -c '
import hashlib, sys
import cv2
for name in sys.stdin.read().split():
    if name.endswith(".png"):
        a = cv2.imread(name, cv2.IMREAD_UNCHANGED)
        data = f"{a.shape} {a.dtype}".encode() + a.tobytes()
    else:
        data = open(name, "rb").read()
    print(hashlib.sha256(data).hexdigest(), "", name)
'
