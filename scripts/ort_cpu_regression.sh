#!/usr/bin/env bash
# ONNX Runtime CPU fps of this checkout against an earlier revision, in one run:
#   scripts/ort_cpu_regression.sh [REV] [SIZE] [ROUNDS]     (defaults: 45efd71 640x360 3)
# The earlier revision is checked out into a temporary worktree and built in place
# (its extension next to its sources); both run `ui2c bench fps` with the same flags,
# alternating A/B per round so machine load hits both alike.  Prints the median
# encode/decode fps of each and the ratios new/old.  Run after `pip install -e .`.
set -euo pipefail
rev=${1:-45efd71}; size=${2:-640x360}; rounds=${3:-3}
repo=$(git rev-parse --show-toplevel)
old=$(mktemp -d -t ui2c-old.XXXXXX); out=$(mktemp -d -t ui2c-reg.XXXXXX)
trap 'git -C "$repo" worktree remove --force "$old" >/dev/null 2>&1 || true' EXIT
git -C "$repo" worktree add -q --detach "$old" "$rev"
(cd "$old" && python setup.py -q build_ext --inplace >/dev/null 2>&1)
# The old tree as an importable package: the same folder map setup.py uses.
pkg=$old/_pkg/ui2c; mkdir -p "$pkg"
for f in "$old"/ui2c/*; do ln -s "$f" "$pkg/"; done
for sub in models entropy plugins runtime export engines benchmarks training; do ln -s "$old/$sub" "$pkg/$sub"; done
flags=(bench fps --model ui2c-s --backend onnxruntime --size "$size" --frames 10)
cd "$out"
for i in $(seq "$rounds"); do
  PYTHONPATH=$old/_pkg python -c "from ui2c.cli import main; main()" "${flags[@]}" --json "old$i.json" >/dev/null 2>&1
  python -c "from ui2c.cli import main; main()" "${flags[@]}" --json "new$i.json" >/dev/null 2>&1
done
python - "$rev" "$rounds" <<'PY'
import json, statistics, sys
rev, rounds = sys.argv[1], int(sys.argv[2])
fps = {k: {s: statistics.median(json.load(open(f"{k}{i}.json"))["runs"][0][s]["fps"] for i in range(1, rounds + 1))
           for s in ("encode", "decode")} for k in ("old", "new")}
for s in ("encode", "decode"):
    print(f"{s}: {rev} {fps['old'][s]:.2f} fps, this checkout {fps['new'][s]:.2f} fps, "
          f"ratio {fps['new'][s] / fps['old'][s]:.3f}")
PY
