#!/usr/bin/env bash
# Long-sequence fine-tuning on CPU, in the background, resuming from the last state.
#   scripts/train_cpu.sh [OUT_DIR] [MINUTES]
# Starts from the shipped weights the first time; later calls resume OUT_DIR/state.
# Needs the prepared data (scripts/train_prepare.sh).  Log: OUT_DIR/train.out.
# One torch thread: a niced run with two OpenMP threads beside any other CPU job spends its
# time at thread barriers (30x slower steps on the 2-core machines; benchmarks/RESULTS.md).
# LR (default 2e-5, the seventh weights' last 2k iterations used 1e-5) is the fine-tuning rate.
set -euo pipefail
out=${1:-work_dirs/ui2c-s-long}
minutes=${2:-600}
lr=${LR:-2e-5}
mkdir -p "$out"
OMP_NUM_THREADS=1 nohup nice -n 19 python -m ui2c.training.cli --data work_dirs/data/train.zip --init ui2c/assets/ui2c-s.pt \
    -o "$out" --minutes "$minutes" --batch 4 --crop 128 --pairs 8-16 --bptt 2 --device cpu \
    --lr "$lr" >>"$out/train.out" 2>&1 &
echo "training in the background (pid $!): $out/log.jsonl"
