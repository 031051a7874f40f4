#!/usr/bin/env bash
# One GPU training chunk, for a lent machine without network (torch, numpy, Pillow there).
#   scripts/train_gpu.sh MINUTES [TRAINER ARGS...]   (from the repository root; writes to $OUT)
# Installs the package into /tmp/site, runs from outside the checkout, and trains for
# MINUTES of wall time (compilation included) with a compiled, CUDA-graphed step.
# Resumes from work_dirs/gpu/state if it was carried, else starts from
# work_dirs/gpu/init.pt (weights exported by the last CPU or GPU run), else from the
# shipped weights.  Data: work_dirs/gpu/train.zip (scripts/train_prepare.sh).
# $OUT receives state/ (resumable: model shards, bf16 Adam moments, the fp16 weight
# average, state.json), weights.pt (the average, float16, exportable) and log.jsonl:
# 8 files, each under 16 MiB.  With train.zip, all of state/ is more than one call
# carries (64 MiB): carry state/ without its exp_avg* shards (Adam then restarts its
# moments, with warm-up).
set -euo pipefail
minutes=${1:?usage: scripts/train_gpu.sh MINUTES}
repo=$(pwd)
out=${OUT:?set OUT to the folder that receives the results}
if ! python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/site "$repo"; then
    echo "pip install failed: linking the pure-Python packages training needs instead" >&2
    mkdir -p /tmp/site/ui2c && cp "$repo"/ui2c/*.py /tmp/site/ui2c/
    for pkg in models training; do ln -sfn "$repo/$pkg" "/tmp/site/ui2c/$pkg"; done
fi
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
init="$repo/work_dirs/gpu/init.pt"
[ -f "$init" ] || init="$repo/ui2c/assets/ui2c-s.pt"
if [ -f "$repo/work_dirs/gpu/state/state.json" ]; then
    mkdir -p "$out" && cp -r "$repo/work_dirs/gpu/state" "$out/state"
fi
cd /tmp
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
python3 -m ui2c.training.cli --device cuda --data "$repo/work_dirs/gpu/train.zip" --init "$init" -o "$out" \
    --minutes "$minutes" --batch 16 --crop 256 --pairs 8-16 --bptt 2 --checkpoint-minutes 2 "${@:2}"
python3 - "$out" <<'PY'
import json, sys
info = json.load(open(f"{sys.argv[1]}/state/state.json"))
print("iterations", info["iteration"], "last run", json.dumps(info["runs"][-1]))
PY
