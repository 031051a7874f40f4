#!/usr/bin/env bash
# The one command a GPU machine runs to validate the TensorRT path:
#   scripts/gpu_check.sh [--no-install]
# installs ui2c with its dev+gpu extras (PyPI only), shows the GPU, runs the
# gpu-marked tests and prints a summary.  --no-install uses the current
# environment as is (machines without network access to PyPI).
# Environment: PYTHON (default python3), GPU_CHECK_LOG (default: a temp file).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
log="${GPU_CHECK_LOG:-$(mktemp -t ui2c-gpu-check.XXXXXX.log)}"

echo "== GPU"
if ! nvidia-smi; then
    echo "gpu_check: nvidia-smi failed: no NVIDIA driver or GPU visible" >&2
    exit 2
fi

if [[ "${1:-}" != "--no-install" ]]; then
    echo "== install .[dev,gpu]"
    # cuda-bindings' major version must not exceed the CUDA version the driver
    # supports (13.x bindings fail on a CUDA 12 driver), so pin it to the driver's.
    driver_cuda="$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\)\..*/\1/p' | head -n1)"
    pins=()
    if [[ -n "$driver_cuda" ]]; then
        pins=("cuda-bindings<$((driver_cuda + 1))")
    fi
    "$python" -m pip install --quiet "$repo[dev,gpu]" "${pins[@]}"
fi

echo "== versions"
"$python" - <<'EOF'
import importlib
for name in ("tensorrt", "tensorrt_rtx_bindings", "cuda.bindings", "onnxruntime", "torch"):
    try:
        module = importlib.import_module(name)
        print(f"{name:24s} {getattr(module, '__version__', '?')}")
    except ImportError as exc:
        print(f"{name:24s} MISSING ({exc})")
from ui2c.engines.targets import cuda_device_info
from ui2c.errors import EngineError
try:
    print(f"{'device':24s} {cuda_device_info()}")
except EngineError as exc:  # keep going: the tests report the failure in context
    print(f"{'device':24s} NOT USABLE ({exc})")
EOF

echo "== pytest -m gpu tests/gpu (log: $log)"
# Run from outside the checkout so the installed package is imported, not the
# repository's top-level ui2c/ folder (which lacks the mapped sub-packages).
status=0
(cd "$(mktemp -d)" && "$python" -m pytest "$repo/tests/gpu" -m gpu -v -rA \
    -c "$repo/pyproject.toml" --rootdir "$repo" -p no:cacheprovider) 2>&1 | tee "$log" || status=$?

echo "== summary"
grep -oE "^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)" "$log" | sort | uniq -c || true
tail -n 1 "$log"
if [[ $status -eq 0 ]] && grep -qE "[0-9]+ passed" "$log" && ! grep -qE "[0-9]+ (failed|error)" "$log"; then
    echo "gpu_check: OK"
else
    echo "gpu_check: FAILED (exit $status)" >&2
    exit 1
fi
