#!/usr/bin/env bash
# RD results of ui2c-s vs x264/x265 on the two held-out clips -> benchmarks/results/rd/.
#
#   scripts/eval_rd.sh [WEIGHTS]
#
# Both clips are area-downscaled 2x (washes out the sources' own coding artefacts) and cut
# to a few frames so the whole run takes ~10 min on a loaded 2-core CPU machine:
# cockatoo (640x360 4:4:4 after downscaling, fast motion) 48 frames, bikes (320x136 4:2:0)
# 64 frames (one hard cut at ~30), plus the scene-cut trace over all 250 bikes frames.
# Weights: WEIGHTS if given (e.g. a training run's weights.pt), else the shipped
# ui2c/assets/ui2c-s.pt; what was used is recorded in benchmarks/results/rd/WEIGHTS.md,
# written once the evaluations have succeeded.
# Needs ffmpeg with libx264/libx265 (Debian: apt-get install ffmpeg) and the data in
# ../shared/data (see its README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${UI2C_DATA:-../shared/data}
OUT=benchmarks/results/rd
QPS=8,24,40,56
COMMON=(--qps "$QPS" --downscale 2 --backend onnxruntime -y)

weights=${1:-ui2c/assets/ui2c-s.pt}
[[ -f "$weights" ]] || { echo "eval_rd: no weights file $weights" >&2; exit 2; }

start=$SECONDS
python -m ui2c.benchmarks.evaluation.cli "$DATA/cockatoo.mp4" --frames 48 "${COMMON[@]}" --weights "$weights" -o "$OUT/cockatoo"
python -m ui2c.benchmarks.evaluation.cli "$DATA/bikes.mp4" --frames 64 "${COMMON[@]}" --weights "$weights" -o "$OUT/bikes"
python -m ui2c.benchmarks.evaluation.cli "$DATA/bikes.mp4" --cut-plot --qps 40 --downscale 2 --backend onnxruntime -y --weights "$weights" \
    -o "$OUT/bikes_scene_cuts"
mkdir -p "$OUT"
python - "$weights" > "$OUT/WEIGHTS.md.tmp" <<'EOF'
import hashlib, sys, torch
path = sys.argv[1]
ckpt = torch.load(path, map_location="cpu", weights_only=True)
print(f"# Weights of these results\n\n- file: `{path}`")
print(f"- sha256: `{hashlib.sha256(open(path, 'rb').read()).hexdigest()}`")
for key, value in ckpt.get("meta", {}).items():
    if key == "sources":  # the data manifest: one line per kind, not one per file
        value = ", ".join(f"{len(v)} {k}" for k, v in value.items() if isinstance(v, list))
    elif key == "runs":
        value = f"{len(value)} runs on {', '.join(sorted({r['device'] for r in value}))}"
    print(f"- {key}: {value}")
EOF
mv "$OUT/WEIGHTS.md.tmp" "$OUT/WEIGHTS.md"
echo "eval_rd: done in $((SECONDS - start)) s"
