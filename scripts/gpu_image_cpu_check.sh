#!/usr/bin/env bash
# The GPU machine's software on this CPU machine: catch what torch 2.11+cu130 and
# triton 3.6 (the lent H100 image; the package pins torch 2.13) break before a GPU
# session spends its minutes on it.
#   scripts/gpu_image_cpu_check.sh [VENV_DIR]      (default /tmp/ui2c-gpu-image; ~5 GB)
# Installs the tree as gpu_check.sh does (non-editable, --target, no dependencies), builds
# libui2c against that torch in its own folder, and runs the suite from outside the
# checkout: the Triton tests in the interpreter, the rest as CI does.  numpy stays below
# 2.3: triton 3.6's interpreter turns scalar loads into 1-element arrays that newer numpy
# refuses to convert (compiled kernels are not affected).  Left out, each for a reason that
# is not ours: test_export (ONNX export is supported on the pinned torch only; 2.11's
# exporter stops on a data-dependent guard in the DCVC-RT adaptor) and the installed-wheel
# check (a --target install is not in site-packages).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-/tmp/ui2c-gpu-image}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch==2.11.0 triton==3.6.0 "numpy>=1.26,<2.3" onnx==1.23.2 onnxscript==0.7.2 \
    "onnxruntime==1.30.*" "av>=14,<20" tqdm pytest scipy constriction==0.5.0 polygraphy==0.53.6 \
    pybind11==3.1.0 wheel "setuptools>=69,<82" matplotlib
fi
site="$venv/ui2c-site"
rm -rf "$site"
"$venv/bin/python" -m pip install -q --no-deps --no-build-isolation --no-compile --target "$site" "$root"
cpp="$(PYTHON="$venv/bin/python" bash "$root/scripts/build_cpp.sh" "$venv/cpp" | tail -n 1)"
scratch="$(mktemp -d)"
cd "$scratch"
PATH="$site/bin:$venv/bin:$PATH" PYTHONPATH="$site" UI2C_CPP_BIN="$cpp" TRITON_INTERPRET=1 \
  python -m pytest -q -rfEs -p no:cacheprovider --rootdir "$root" -c "$root/pyproject.toml" "$root/tests" \
  --ignore="$root/tests/test_export.py" --deselect tests/test_packaging.py::test_the_installed_wheel_is_under_test
