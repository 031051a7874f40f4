#!/usr/bin/env bash
# Whole-clip evaluation of training weights (issue 14): cockatoo (all 280 frames) and bikes
# (all 250), 2x area-downscaled, no periodic reset, vs x264 medium (low delay); per-frame
# PSNR/bits plots in OUT/{cockatoo,bikes}/frames.png, drift summary printed at the end.
#   scripts/train_eval.sh [WEIGHTS] [OUT] [QPS]
set -euo pipefail
weights=${1:-ui2c/assets/ui2c-s.pt}
out=${2:-work_dirs/eval/long}
qps=${3:-0,21,42,63}
data=${DATA:-../shared/data}
for clip in cockatoo bikes; do
    ui2c eval "$data/$clip.mp4" -o "$out/$clip" --weights "$weights" --qps "$qps" --downscale 2 \
        --anchors x264-medium --backend torch -y
done
python -m ui2c.training.drift "$out/cockatoo" "$out/bikes"
