#!/usr/bin/env bash
# Whole-clip evaluation of training weights (issue 14): cockatoo (all 280 frames) and bikes
# (all 250), 2x area-downscaled, no periodic reset, vs x264 medium (low delay), the two clips
# side by side (one torch thread each, one per core); per-frame PSNR/bits plots in
# OUT/{cockatoo,bikes}/frames.png.  Then the qp span on the shipped demo clip (OUT/demo) and
# the drift summary, OUT/drift.md.
#   scripts/train_eval.sh [WEIGHTS] [OUT] [QPS]
# AGAINST=vN adds BD-rate against the committed results of the N-th shipped weights
# (benchmarks/results/training/{cockatoo_280f,bikes_250f}_vN): how a candidate is judged.
set -euo pipefail
weights=${1:-ui2c/assets/ui2c-s.pt}
out=${2:-work_dirs/eval/long}
qps=${3:-0,21,42,63}
data=${DATA:-../shared/data}
results=benchmarks/results/training
declare -A frames=([cockatoo]=280 [bikes]=250)  # the committed results' folder names
[[ -f "$weights" ]] || { echo "train_eval: no weights file $weights" >&2; exit 2; }
if [[ -n "${AGAINST:-}" ]]; then
    for clip in cockatoo bikes; do
        base="$results/${clip}_${frames[$clip]}f_$AGAINST"
        [[ -f "$base/results.json" ]] || { echo "train_eval: no $base/results.json" >&2; exit 2; }
    done
fi
mkdir -p "$out"
pids=()
for clip in cockatoo bikes; do
    OMP_NUM_THREADS=1 ui2c eval "$data/$clip.mp4" -o "$out/$clip" --weights "$weights" --qps "$qps" --downscale 2 \
        --anchors x264-medium --backend torch -y >"$out/$clip.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || { echo "train_eval: an eval failed, see $out/*.log" >&2; exit 1; }; done
ui2c eval ui2c/assets/bbb_320x180_16f.y4m -o "$out/demo" --weights "$weights" --qps "$qps" --anchors "" --backend torch -y
{
    python -m ui2c.training.drift "$out/demo"
    for clip in cockatoo bikes; do
        against=()
        [[ -n "${AGAINST:-}" ]] && against=(--against "$results/${clip}_${frames[$clip]}f_$AGAINST")
        python -m ui2c.training.drift "$out/$clip" "${against[@]}"
    done
} | tee "$out/drift.md"
