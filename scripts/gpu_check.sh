#!/usr/bin/env bash
# The one command a GPU machine runs to check the GPU paths and measure them:
#   scripts/gpu_check.sh [RESULTS_DIR] [SIZE]      (defaults: benchmarks/results, 1920x1080)
# 1. installs this tree non-editable, without dependencies (no package registry is
#    needed: torch, triton, onnxruntime, pytest come with the machine);
# 2. runs the gpu-marked tests with TRITON_INTERPRET=0 (Triton kernels on the device,
#    CUDA encode -> decode bit-exact here and in a fresh process, CPU == CUDA latent
#    codec, C++ == Triton coder); TensorRT tests skip with a line saying it is absent;
# 3. runs scripts/triton_gpu_diag.py (where the Triton coder first differs from the C++ one)
#    and the entropy coder benchmark (entropy_cuda.json/.md: ms per 1080p step);
# 4. benchmarks `ui2c` end to end at SIZE, fp16, torch.compile + CUDA graphs, with the
#    C++ and then the Triton entropy coder, next to the network-only ceiling of the same
#    run, and writes RESULTS_DIR/gpu_check_ui2c*.json and gpu_check.md naming the device.
# Every step has a time limit, so the whole check ends within 9 minutes (one device call).
# Files: gpu_check.md, gpu_check_ui2c*.json, entropy_cuda.{json,md}, gpu_check_logs.tar.gz (every step's output).
# Runs from outside the checkout so the installed package is what gets imported.
# Environment: PYTHON (default python3), FRAMES (default 32).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
results="$(mkdir -p "${1:-$repo/benchmarks/results}" && cd "${1:-$repo/benchmarks/results}" && pwd)"
size="${2:-1920x1080}"
python="${PYTHON:-python3}"
site="$(mktemp -d -t ui2c-site.XXXXXX)"
work="$(mktemp -d -t ui2c-gpu.XXXXXX)"
status=0

step() { echo "== $1 ($(date +%T))"; }
# logged NAME SECONDS CMD...: runs CMD under a time limit, its output also kept in
# $logs/NAME.log; the logs (and the Triton kernel dumps) end as one archive,
# RESULTS_DIR/gpu_check_logs.tar.gz, since a lent machine returns at most 8 files.
logs="$results/gpu_check_logs"
mkdir -p "$logs"
logged() { timeout "$2" "${@:3}" 2>&1 | tee "$logs/$1.log"; return "${PIPESTATUS[0]}"; }

step "GPU"
nvidia-smi -L || { echo "gpu_check: nvidia-smi failed: no NVIDIA driver or GPU visible" >&2; exit 2; }

step "install (non-editable, no dependencies)"
"$python" -m pip install -q --no-deps --no-build-isolation --no-compile --target "$site" "$repo" || exit 2
export PYTHONPATH="$site" TRITON_INTERPRET=0
cd "$work" || exit 2

pytest=("$python" -m pytest -q -rfEs --tb=short -p no:cacheprovider -c "$repo/pyproject.toml" --rootdir "$repo")
step "gpu tests (runtime)"
logged tests_runtime 180 "${pytest[@]}" --durations=10 "$repo/tests/gpu" || status=1
step "gpu tests (Triton coder; opt-in until these pass on a GPU)"
logged tests_triton 45 "${pytest[@]}" "$repo/tests/test_entropy_triton.py" "$repo/tests/test_entropy_coder.py" || status=1

step "Triton coder vs C++ coder, kernel by kernel (first differing stage, ballot off and on)"
logged triton_diag 75 "$python" "$repo/scripts/triton_gpu_diag.py" --out "$logs/triton_diag.json" --deadline 50 || status=1
step "entropy coder benchmark (ms per 1080p step, C++ and Triton coders)"
logged entropy_bench 45 "$python" -m ui2c.benchmarks.entropy_bench --device cuda --repeats 3 --out "$results" || status=1

step "benchmark ui2c $size (C++ entropy coder, the default)"
bench() { logged "$1" "$2" "$python" -m ui2c.cli bench fps --model ui2c --backend torch --device cuda --precision fp16 \
    --compile --size "$size" --frames "${FRAMES:-32}" --warmup 2 "${@:3}" --md "$results/gpu_check.md"; }
bench bench_cpp 130 --json "$results/gpu_check_ui2c.json" || status=1
step "benchmark ui2c $size (Triton entropy coder)"
bench bench_triton 50 --entropy triton --json "$results/gpu_check_ui2c_triton.json" || status=1

tar -czf "$results/gpu_check_logs.tar.gz" -C "$results" gpu_check_logs && rm -rf "$logs"
step "done"
[[ $status -eq 0 ]] && echo "gpu_check: OK" || echo "gpu_check: FAILED" >&2
exit $status
