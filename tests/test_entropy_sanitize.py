"""Builds the C++ coder with AddressSanitizer + UBSan and runs its stress driver."""
import shutil
import subprocess
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parents[1] / "entropy" / "csrc"


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_cpu_coder_is_clean_under_asan_and_ubsan(tmp_path):
    exe = tmp_path / "rans_sanitize"
    flags = ["-std=c++17", "-O1", "-g", "-pthread", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    sources = [str(CSRC / "rans.cpp"), str(CSRC / "rans_sanitize_main.cpp")]
    subprocess.run(["g++", *flags, f"-I{CSRC}", *sources, "-o", str(exe)], check=True, timeout=240)
    run = subprocess.run([str(exe), "150"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr
    assert run.stdout.startswith("ok:")
