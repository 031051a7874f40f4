#!/usr/bin/env bash
# The encoder's drift guard measured on a whole clip (issue 14, item 5): the same weights
# and qps coded with the guard off, at several thresholds, and with a reset every 8 frames;
# prints each run's drift summary and its BD-rate / BD-PSNR against the guard-off run.
#   scripts/eval_drift_guard.sh [WEIGHTS] [OUT] [CLIP] [QPS] [GUARDS_DB]
# Scene cuts stay on (the encoder's default), as a user would run it.
set -euo pipefail
weights=${1:-ui2c/assets/ui2c-s.pt}
out=${2:-work_dirs/eval/guard}
clip=${3:-../shared/data/bikes.mp4}
qps=${4:-0,14,28,42}
guards=${5:-1 2 3}
run() { ui2c eval "$clip" -o "$out/$1" --weights "$weights" --qps "$qps" --downscale 2 --anchors "" \
    --backend torch -y "${@:2}"; }
run off
for db in $guards; do run "guard_${db}dB" --drift-guard "$db"; done
run reset_every_8 --reset-interval 8
python -m ui2c.training.drift "$out"/guard_*dB "$out/reset_every_8" --against "$out/off"
