# Sourced by benchmarks/train_*.sh: the 5/2 split of the PolypGen polyp-free sequences every bundled model
# is trained and validated on (seq2_neg and seq6_neg are held out), as folders of links under $SPLIT.
DATA=${VPS_DATA:-../shared/data}
SPLIT=${SPLIT:-runs/split}
NEG=$(cd "$DATA/polypgen-negatives/Frame" && pwd)
mkdir -p "$SPLIT/neg-train/Frame" "$SPLIT/neg-val/Frame"
for s in 1 3 4 5 7; do ln -sfn "$NEG/seq${s}_neg" "$SPLIT/neg-train/Frame/seq${s}_neg"; done
for s in 2 6; do ln -sfn "$NEG/seq${s}_neg" "$SPLIT/neg-val/Frame/seq${s}_neg"; done
