"""Where does AOTInductor loading break on a GPU image?  One short run that reports it.

Measured before: on the H100 image (Python 3.12, torch 2.11+cu130) a package compiled
fine but ``aoti_load_package`` segfaulted inside ``_load_aoti``, even for one
convolution.  This probe compiles a one-conv module for CPU and for CUDA, then loads
each in a fresh subprocess (a segfault becomes a return code plus the faulthandler
stack, not a dead probe), with and without CUDA initialised first, and through the C++
``AOTIModelPackageLoader`` in a tiny program when a compiler is there.  It also lists
unresolved libraries of the package's shared object.  The last lines are a summary.

With ``--bench`` and a CUDA load that works, it then builds the ui2c-s stage packages
for CUDA fp16 (shipped weights, ``--jobs 8``) and times every stage at 1920x1088
against ``torch.compile`` of the same module (network only, CUDA events), in a
subprocess with its own time limit.

    python scripts/aoti_gpu_probe.py [--out /tmp/aoti_probe] [--timeout 60] [--bench 150]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

COMPILE = textwrap.dedent("""
    import sys, time, torch
    device, path = sys.argv[1], sys.argv[2]
    model = torch.nn.Conv2d(3, 8, 3, padding=1).to(device).eval()
    x = torch.randn(1, 3, 64, 64, device=device)
    start = time.perf_counter()
    with torch.no_grad():
        ep = torch.export.export(model, (x,))
        torch._inductor.aoti_compile_and_package(ep, package_path=path)
    torch.save({"x": x.cpu(), "y": model(x).detach().cpu()}, path + ".ref")
    print(f"compiled in {time.perf_counter() - start:.1f}s")
""")

LOAD = textwrap.dedent("""
    import sys, torch
    path, device, variant = sys.argv[1], sys.argv[2], sys.argv[3]
    if variant == "cuda-init-first":
        torch.cuda.init(); torch.zeros(1, device="cuda"); torch.cuda.synchronize()
    kwargs = {"device_index": 0} if variant == "device-index-0" else {}
    model = torch._inductor.aoti_load_package(path, **kwargs)
    ref = torch.load(path + ".ref")
    with torch.no_grad():
        y = model(ref["x"].to(device))
    y = y[0] if isinstance(y, (list, tuple)) else y
    print(f"max abs diff vs eager {float((y.cpu() - ref['y']).abs().max()):.2e}")
""")

BENCH = textwrap.dedent("""
    import sys, time, torch
    from ui2c.engines import aoti
    out, height, width = sys.argv[1], 1088, 1920
    stages = ("adaptor", "context", "encoder", "prior", "spatial_prior", "decoder", "recon")
    start = time.perf_counter()
    aoti.build_aoti("ui2c-s", out, "cuda", "fp16", only=stages, jobs=8)
    print(f"built the CUDA fp16 stage packages in {time.perf_counter() - start:.0f}s", flush=True)
    network, _ = aoti._network("ui2c-s", None, False)
    network = network.to("cuda", torch.float16)
    from ui2c.models.stages import stage_inputs

    def timed(fn, iters=30):
        for _ in range(3):
            fn()
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(); begin.record()
        for _ in range(iters):
            fn()
        end.record(); torch.cuda.synchronize()
        return begin.elapsed_time(end) / iters

    totals = {"aoti": [0.0, 0.0], "torch.compile": [0.0, 0.0]}
    print(f"{'stage':14s} {'aoti ms':>8s} {'compile ms':>10s}  (1920x1088 fp16, {torch.cuda.get_device_name()})")
    for name, stage in network.stages().items():
        feed = stage_inputs(stage.inputs, height, width, torch.float16, seed=0, device="cuda")
        package = torch._inductor.aoti_load_package(str(aoti.package_path(out, name, "cuda")))
        compiled = torch.compile(stage.module)
        with torch.inference_mode():
            ms = {"aoti": timed(lambda: package(*feed)), "torch.compile": timed(lambda: compiled(*feed))}
        for kind, value in ms.items():
            totals[kind][0] += value * stage.encode_calls
            totals[kind][1] += value * stage.decode_calls
        print(f"{name:14s} {ms['aoti']:8.3f} {ms['torch.compile']:10.3f}", flush=True)
    for kind, (enc, dec) in totals.items():
        print(f"{kind}: network-only fps (pair = 2 frames) encode {2000 / enc:.0f}, decode {2000 / dec:.0f}")
""")

CPP = textwrap.dedent("""
    #include <ATen/ATen.h>
    #include <torch/csrc/inductor/aoti_package/model_package_loader.h>
    #include <iostream>
    int main(int argc, char** argv) {
      const bool cuda = std::string(argv[2]) == "cuda";
      torch::inductor::AOTIModelPackageLoader loader(argv[1]);
      auto opts = at::TensorOptions().device(cuda ? at::kCUDA : at::kCPU);
      auto out = loader.run({at::randn({1, 3, 64, 64}, opts)});
      std::cout << "C++ loader ran: output " << out[0].sizes() << std::endl;
      return 0;
    }
""")


def run(cmd: list[str], timeout: float) -> dict:
    start = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        rc, stdout, stderr = p.returncode, p.stdout.strip(), p.stderr.strip()
    except subprocess.TimeoutExpired as exc:
        rc = "timeout"
        stdout = (exc.stdout or b"").decode(errors="replace").strip() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = ""
    tail = "\n".join((stdout.splitlines() + stderr.splitlines()[-20:])[-40:])
    status = "ok" if rc == 0 else ("SEGFAULT" if rc == -11 else f"failed rc={rc}")
    return {"status": status, "seconds": round(time.perf_counter() - start, 1), "tail": tail}


def report(name: str, result: dict) -> None:
    print(f"--- {name}: {result['status']} ({result['seconds']}s)")
    if result["tail"]:
        print(textwrap.indent(result["tail"], "    "))


def environment() -> dict:
    import torch

    env = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda_runtime": torch.version.cuda,
           "cuda_available": torch.cuda.is_available(), "cxx11_abi": torch.compiled_with_cxx11_abi()}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    for tool in ("g++", "c++", "nvcc", "cmake"):
        env[tool] = shutil.which(tool) or "absent"
    return env


def unresolved(package: Path, work: Path) -> list[str]:
    """`ldd` lines saying 'not found' for every shared object inside the package (with the
    wheel's libraries on the search path, as they are once torch is imported)."""
    import os

    from torch.utils import cpp_extension

    if not shutil.which("ldd"):
        return ["ldd absent"]
    env = {**os.environ, "LD_LIBRARY_PATH": ":".join(cpp_extension.library_paths())}
    out = []
    with zipfile.ZipFile(package) as z:
        for name in z.namelist():
            if name.endswith(".so"):
                so = Path(z.extract(name, work / "unzipped"))
                lines = subprocess.run(["ldd", str(so)], capture_output=True, text=True, env=env).stdout.splitlines()
                out += [f"{so.name}: {l.strip()}" for l in lines if "not found" in l]
    return out


def cpp_loader(work: Path, timeout: float) -> tuple[Path | None, dict]:
    """Compile the C++ probe against the wheel's libtorch, if a compiler is present."""
    import torch
    from torch.utils import cpp_extension

    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        return None, {"status": "skipped (no C++ compiler)", "seconds": 0, "tail": ""}
    src, exe = work / "probe.cpp", work / "probe_loader"
    src.write_text(CPP)
    libs = ["-ltorch", "-ltorch_cpu", "-lc10"] + (["-ltorch_cuda", "-lc10_cuda"] if torch.cuda.is_available() else [])
    lib_dir = cpp_extension.library_paths()[0]
    cmd = [cxx, "-std=c++17", "-O1", "-w", str(src), "-o", str(exe),
           *[f"-I{p}" for p in cpp_extension.include_paths()], f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}",
           "-Wl,--no-as-needed", *libs, f"-D_GLIBCXX_USE_CXX11_ABI={int(torch.compiled_with_cxx11_abi())}"]
    result = run(cmd, timeout * 3)
    return (exe if result["status"] == "ok" else None), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--timeout", type=float, default=90, help="seconds per step")
    parser.add_argument("--bench", type=float, default=0, metavar="SECONDS",
                        help="then time the ui2c-s CUDA packages vs torch.compile, within SECONDS")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="aoti_probe_"))
    work.mkdir(parents=True, exist_ok=True)
    env = environment()
    print("environment:", json.dumps(env))
    summary = {}
    devices = ["cpu"] + (["cuda"] if env["cuda_available"] else [])
    exe, built = cpp_loader(work, args.timeout)
    report("C++ probe build", built)
    for device in devices:
        package = work / f"conv_{device}.pt2"
        result = run([sys.executable, "-c", COMPILE, device, str(package)], args.timeout)
        report(f"{device}: compile", result)
        summary[f"{device} compile"] = result["status"]
        if result["status"] != "ok":
            continue
        missing = unresolved(package, work)
        print(f"--- {device}: unresolved libraries: {missing or 'none'}")
        variants = ["plain"] + (["cuda-init-first", "device-index-0"] if device == "cuda" else [])
        for variant in variants:
            result = run([sys.executable, "-X", "faulthandler", "-c", LOAD, str(package), device, variant], args.timeout)
            report(f"{device}: python load ({variant})", result)
            summary[f"{device} python load ({variant})"] = result["status"]
        if exe is not None:
            result = run([str(exe), str(package), device], args.timeout)
            report(f"{device}: C++ AOTIModelPackageLoader", result)
            summary[f"{device} C++ load"] = result["status"]
    if args.bench and summary.get("cuda python load (plain)") == "ok":
        result = run([sys.executable, "-X", "faulthandler", "-c", BENCH, str(work / "ui2c-s-cuda")], args.bench)
        report("ui2c-s CUDA fp16 packages vs torch.compile", result)
        summary["ui2c-s bench"] = result["status"]
    elif args.bench:
        summary["ui2c-s bench"] = "skipped (no working CUDA load)"
    print("summary:")
    for name, status in summary.items():
        print(f"  {name:40s} {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
