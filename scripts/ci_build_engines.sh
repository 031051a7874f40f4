#!/usr/bin/env bash
# Prove every exported graph of both presets is accepted by a TensorRT builder:
# export FP16 (strongly typed) ONNX and build TensorRT-RTX engines at 720p and 1080p.
# Fails on any parser rejection or failed build.  Usage: scripts/ci_build_engines.sh OUT_DIR
set -euo pipefail
out=${1:-build/ci}
for model in ui2c dcvc-rt; do
  ui2c export --model "$model" -o "$out/onnx/$model" --precision fp16 -y
  for manifest in $(find "$out/onnx/$model" -name manifest.json | sort); do
    dir=$(dirname "$manifest")
    ui2c build-engines --model "$model" --onnx "$dir" -o "$out/engines/$model/${dir#"$out/onnx/$model/"}" \
      --target trt-rtx --profiles 720p,1080p
  done
done
echo "all graphs of ui2c and dcvc-rt built with TensorRT-RTX"
