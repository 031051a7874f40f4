#!/usr/bin/env bash
# Build libui2c, ui2c-encode and ui2c-decode (runtime/cpp) against the libtorch of the
# installed torch wheel.  Run after `pip install -e .`; needs cmake and a C++17 compiler.
# Usage: scripts/build_cpp.sh [BUILD_DIR] [extra cmake args, e.g. -DUI2C_ASAN=ON]
# The last line printed is the folder holding ui2c-encode and ui2c-decode.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build/cpp}"
shift || true
python="${PYTHON:-python}"
read -r torch_dir abi < <("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__), int(torch.compiled_with_cxx11_abi()))')
cmake -S "$root/runtime/cpp" -B "$build" -DTORCH_DIR="$torch_dir" -DTORCH_CXX11_ABI="$abi" "$@" >&2
cmake --build "$build" -j "$(nproc)" >&2
test -x "$build/ui2c-encode" && test -x "$build/ui2c-decode"
echo "$build"
