"""Hostile inputs through the command line, as a user (or an attacker) would give them.

Every case runs ``ui2c`` in a subprocess and checks the CLI's promise: exit status 2,
exactly one line on stderr that names the problem, and no file left behind (no
output, no hidden ``.part``).  Stream cases mutate a real stream's header or packet
fields and recompute the CRCs, so they reach the checks behind the checksum.  The
memory cases run under an address-space limit (``ulimit -v``) that the old code's
header-sized allocations (tens of GiB) could not get past.
"""
from __future__ import annotations

import functools
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import pytest

from ui2c.shipped import DEMO_CLIP

CLI = [sys.executable, "-c", "import sys; from ui2c.cli import main; sys.exit(main())"]
CODEC_HEADROOM = 2 << 30  # decoding the demo stream adds under 1 GiB to the imports (the test below checks room)
_FIXED = ">IIIIIB"      # width, height, frame count, fps num, fps den, chroma (runtime/CONTAINER.md §1)
_PACKET = ">4sIBBBBII"  # sync, first frame, frames, qp0, qp1, flags, length, crc (§2)


@functools.cache
def memory_limit() -> int:
    """The address-space limit of the memory cases: what the CLI's imports map, plus room for
    a loaded codec.  Relative, because a CUDA build of torch maps gigabytes more than the CPU
    build at import: under a fixed 3 GiB one spun in the allocator until the case timed out."""
    probe = "import torch, ui2c.cli; print(open('/proc/self/statm').read().split()[0])"
    pages = subprocess.run([sys.executable, "-c", probe], cwd=tempfile.gettempdir(), capture_output=True,
                           text=True, check=True).stdout
    return int(pages) * resource.getpagesize() + CODEC_HEADROOM


def run(*args: str | Path, cwd: Path, limit_as: int | None = None, limit_fsize: int | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    def limits() -> None:
        if limit_as is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))
        if limit_fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_fsize, limit_fsize))

    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limits)


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_refused(result: subprocess.CompletedProcess, mentions: str, root: Path, before: set[str]) -> None:
    """Exit 2, one stderr line naming the problem, nothing printed or left behind."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("ui2c") and "error" in lines[0], result.stderr[-2000:]
    assert mentions.lower() in lines[0].lower(), lines[0]
    assert result.stdout == ""
    assert files(root) == before


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def stream(work: Path) -> bytes:
    """A real 16-frame stream of the shipped clip (also the happy path of encode)."""
    result = run("encode", DEMO_CLIP, "-o", "good.ui2c", "--qp", "30", cwd=work)
    assert result.returncode == 0, result.stderr
    return (work / "good.ui2c").read_bytes()


@pytest.fixture
def case(tmp_path: Path):
    """Run one hostile command in an empty directory and check the promise."""
    def check(*args: str | Path, mentions: str, **kw) -> None:
        before = files(tmp_path)
        assert_refused(run(*args, cwd=tmp_path, **kw), mentions, tmp_path, before)
    return check


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize("args, mentions", [
    (["--qp", "64"], "qp must be in 0..63"),
    (["--qp", "-1"], "qp must be in 0..63"),
    (["--qp", "1000"], "qp must be in 0..63"),
    (["--qp", "x"], "--qp"),
    (["--qp", "8", "--model", "dcvc-rt"], "--model"),
    (["--qp", "8", "--model", "nope"], "--model"),
    (["--qp", "8", "--threads", "0"], "--threads"),
    (["--qp", "8", "--threads", "-1"], "--threads"),
    (["--qp", "8", "--bits-per-lane", "0"], "--bits-per-lane"),
    (["--qp", "8", "--bits-per-lane", str(1 << 32)], "--bits-per-lane"),
    (["--qp", "8", "--reset-interval", "-1"], "--reset-interval"),
    (["--qp", "8", "--scene-cut", "nan"], "--scene-cut"),
    (["--qp", "8", "--scene-cut", "2"], "--scene-cut"),
    (["--qp", "8", "--frames", "0"], "--frames"),
    (["--qp", "8", "--size", "0x0"], "--size"),
])
def test_encode_options_are_checked_when_parsed(case, args, mentions):
    case("encode", DEMO_CLIP, "-o", "out.ui2c", *args, mentions=mentions)


@pytest.mark.parametrize("args, mentions", [
    (["--size", "320x180"], "--size is for raw .yuv input"),
    (["--compile"], "--compile applies to the torch backend"),
    (["--engines", "engines"], "--engines applies to the tensorrt and aoti backends"),
    (["--backend", "tensorrt"], "--backend tensorrt runs on a GPU"),
])
def test_encode_options_the_setup_would_ignore_are_refused(case, args, mentions):
    case("encode", DEMO_CLIP, "-o", "out.ui2c", "--qp", "8", *args, mentions=mentions)


@pytest.mark.parametrize("args, mentions", [
    (["eval", str(DEMO_CLIP), "-o", "res", "--qps", "8,64"], "qp must be in 0..63"),
    (["eval", str(DEMO_CLIP), "-o", "res", "--qps", "8,24,8"], "qp 8 is listed twice"),
    (["eval", str(DEMO_CLIP), "-o", "res", "--model", "dcvc-rt"], "--model"),
    (["eval", str(DEMO_CLIP), "-o", "res", "--anchors", "x266-fast"], "unknown anchor"),
    (["decode", "in.ui2c", "-o", "out.y4m", "--model", "foo"], "unrecognized arguments"),
    (["decode", "in.ui2c", "-o", "out.y4m", "--from-reset", "-1"], "--from-reset"),
    (["complexity", "--model", "foo"], "--model"),
    (["complexity", "--size", "1080q"], "size must look like 1920x1080 or one of 360p"),
    (["bench", "fps", "--size", "641x360"], "size must be even"),
])
def test_other_options_are_checked_when_parsed(case, args, mentions):
    case(*args, mentions=mentions)


# ---------------------------------------------------------------------------- outputs
def test_output_paths_are_refused_before_work(case, tmp_path):
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "taken.ui2c").write_bytes(b"keep me")
    encode = ["encode", str(DEMO_CLIP), "--qp", "8", "-o"]
    case(*encode, "-", mentions="stdout")
    case(*encode, "", mentions="output path is empty")
    case(*encode, "missing/out.ui2c", mentions="does not exist")
    case(*encode, "a_dir", mentions="is a directory")
    case(*encode, "taken.ui2c", mentions="-y/--overwrite")
    assert (tmp_path / "taken.ui2c").read_bytes() == b"keep me"
    case(*encode, DEMO_CLIP, "-y", mentions="input file")
    case(*encode, "/proc/out.ui2c", mentions="/proc is not writable")  # refused even for root


def test_unwritable_decode_output_is_refused_before_the_model_loads(stream, tmp_path, monkeypatch):
    """The output directory is probed by the file system (not by mode bits, which root
    ignores) before any network is built."""
    import ui2c.runtime.model
    from ui2c.cli import main

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(ui2c.runtime.model, "load_codec", no_model)
    (tmp_path / "in.ui2c").write_bytes(stream)
    assert main(["decode", str(tmp_path / "in.ui2c"), "-o", "/proc/out.y4m"]) == 2
    assert main(["decode", str(tmp_path / "in.ui2c"), "-o", str(tmp_path / "out.mp4")]) == 2  # no writer for it


def test_decode_reads_its_input_once_so_a_fifo_works(stream, tmp_path):
    """The CLI reads the header to choose the model, then the packets: from one open (a
    second open of a FIFO would wait for a writer that never comes)."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    threading.Thread(target=lambda: fifo.write_bytes(stream), daemon=True).start()
    result = run("decode", fifo, "-o", "out.y4m", cwd=tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.y4m").read_bytes().count(b"FRAME\n") == 16


def test_disk_full_while_encoding_and_decoding(case, stream, tmp_path):
    """A full disk (here a file-size limit: EFBIG, like ENOSPC) leaves no partial file."""
    case("encode", DEMO_CLIP, "-o", "out.ui2c", "--qp", "56", limit_fsize=2048, mentions="out.ui2c")
    (tmp_path / "in.ui2c").write_bytes(stream)
    case("decode", "in.ui2c", "-o", "out.y4m", limit_fsize=200_000, mentions="out.y4m")


# ---------------------------------------------------------------------------- decode inputs
def test_decode_inputs(case, tmp_path):
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "empty.ui2c").write_bytes(b"")
    (tmp_path / "text.ui2c").write_bytes(b"hello world, not a stream")
    case("decode", "nothing.ui2c", "-o", "out.y4m", mentions="No such file")
    case("decode", "a_dir", "-o", "out.y4m", mentions="directory")
    case("decode", "empty.ui2c", "-o", "out.y4m", mentions="not a UI2C stream")
    case("decode", "text.ui2c", "-o", "out.y4m", mentions="not a UI2C stream")
    if os.geteuid() != 0:
        (tmp_path / "secret.ui2c").write_bytes(b"UI2C")
        (tmp_path / "secret.ui2c").chmod(0)
        case("decode", "secret.ui2c", "-o", "out.y4m", mentions="Permission denied")


# ---------------------------------------------------------------------------- stream mutations
def split_header(data: bytes) -> tuple[tuple, list[bytes], bytes]:
    """(fixed fields, the four strings, everything after the header) of a stream."""
    (length,) = struct.unpack_from(">H", data, 5)
    body, rest = data[7:7 + length], data[7 + length + 4:]
    fixed, pos, strings = struct.unpack_from(_FIXED, body), struct.calcsize(_FIXED), []
    for _ in range(4):
        strings.append(body[pos + 1:pos + 1 + body[pos]])
        pos += 1 + body[pos]
    return fixed, strings, rest


def make_header(fixed: tuple, strings: list[bytes], version: int = 2) -> bytes:
    body = struct.pack(_FIXED, *fixed) + b"".join(bytes([len(s)]) + s for s in strings)
    head = b"UI2C" + bytes([version]) + struct.pack(">H", len(body)) + body
    return head + struct.pack(">I", zlib.crc32(head))


def mutate_header(data: bytes, version: int = 2, **fields: object) -> bytes:
    """The stream with header fields replaced and the header CRC recomputed."""
    (width, height, count, num, den, chroma), strings, rest = split_header(data)
    values = dict(width=width, height=height, count=count, num=num, den=den, chroma=chroma,
                  preset=strings[0], weights=strings[1], tables=strings[2], producer=strings[3], rest=rest)
    values.update(fields)
    fixed = tuple(values[k] for k in ("width", "height", "count", "num", "den", "chroma"))
    strings = [values[k] for k in ("preset", "weights", "tables", "producer")]
    return make_header(fixed, strings, version) + values["rest"]


def mutate_first_packet(data: bytes, **fields: int) -> bytes:
    """The stream with fields of packet 0 replaced and the packet CRC recomputed."""
    _, _, rest = split_header(data)
    head = data[:len(data) - len(rest)]
    sync, first, frames, qp0, qp1, flags, length, _ = struct.unpack_from(_PACKET, rest)
    values = dict(first=first, frames=frames, qp0=qp0, qp1=qp1, flags=flags)
    values.update(fields)
    fixed = struct.pack(">IBBBBI", values["first"], values["frames"], values["qp0"], values["qp1"],
                        values["flags"], length)
    payload = rest[20:20 + length]
    crc = zlib.crc32(payload, zlib.crc32(fixed))
    return head + sync + fixed + struct.pack(">I", crc) + payload + rest[20 + length:]


HEADER_CASES = {
    "65536x65536": (dict(width=65536, height=65536), "frame size 65536x65536"),
    "width near 2^31": (dict(width=2**31 - 2), "frame size"),
    "zero width": (dict(width=0), "frame size 0x"),
    "odd 4:2:0 width": (dict(width=321), "odd dimension"),
    "unknown chroma": (dict(chroma=7), "chroma"),
    "fps denominator 0": (dict(den=0), "frame rate"),
    "unknown preset": (dict(preset=b"ui3c-xl"), "preset 'ui3c-xl'"),
    "unknown backend": (dict(producer=b"cuda-magic/cuda/fp16/eager"), "cuda-magic"),
    "producer without '/'": (dict(producer=b"tensorrt-fp16"), "tensorrt-fp16"),
    "version 3": (dict(version=3), "version 3"),
    "no packets, count 0": (dict(count=0, rest=b""), "holds no frames"),
    "no packets, count 16": (dict(rest=b""), "announced frames"),
    "count beyond packets": (dict(count=1000), "announced"),
}


@pytest.mark.parametrize("name", HEADER_CASES)
def test_header_mutations_with_valid_crc(case, stream, tmp_path, name):
    fields, mentions = HEADER_CASES[name]
    (tmp_path / "in.ui2c").write_bytes(mutate_header(stream, **fields))
    case("decode", "in.ui2c", "-o", "out.y4m", mentions=mentions, limit_as=memory_limit())


@pytest.mark.parametrize("fields, mentions", [
    (dict(qp0=72), "qp 72"),
    (dict(qp1=255), "qp 255"),
    (dict(flags=0), "not a reset point"),
    (dict(first=2), "expected 0"),
    (dict(frames=3), "impossible header"),
])
def test_packet_mutations_with_valid_crc(case, stream, tmp_path, fields, mentions):
    (tmp_path / "in.ui2c").write_bytes(mutate_first_packet(stream, **fields))
    case("decode", "in.ui2c", "-o", "out.y4m", mentions=mentions)


def test_truncated_stream(case, stream, tmp_path):
    (tmp_path / "in.ui2c").write_bytes(stream[:len(stream) // 2])
    case("decode", "in.ui2c", "-o", "out.y4m", mentions="truncated")


# ---------------------------------------------------------------------------- video inputs
@pytest.mark.parametrize("name, data, mentions", [
    ("huge.y4m", b"YUV4MPEG2 W8192 H8192 F25:1\nFRAME\n" + bytes(1000), "truncated"),
    ("wide.y4m", b"YUV4MPEG2 W2147483646 H2 F25:1\nFRAME\n" + bytes(1000), "maximum"),
    ("fps.y4m", b"YUV4MPEG2 W16 H16 F4294967297:1\nFRAME\n" + bytes(384), "32-bit"),
    ("interlaced.y4m", b"YUV4MPEG2 W16 H16 It\nFRAME\n" + bytes(384), "interlacing"),
    ("header_only.y4m", b"YUV4MPEG2 W16 H16\n", "holds no frames"),
    ("clip_8192x8192.yuv", b"", "holds no frames"),
])
def test_video_inputs_fail_before_allocating(case, tmp_path, name, data, mentions):
    """Declared sizes are not trusted: the first frame is read before any buffer is sized
    from the header, under an address-space limit the old allocations exceeded."""
    (tmp_path / name).write_bytes(data)
    case("encode", name, "-o", "out.ui2c", "--qp", "8", mentions=mentions, limit_as=memory_limit())


def test_memory_limit_leaves_room_for_real_work(stream, tmp_path):
    """Control for the cases above: a real decode succeeds under the same limit."""
    (tmp_path / "in.ui2c").write_bytes(stream)
    result = run("decode", "in.ui2c", "-o", "out.y4m", cwd=tmp_path, limit_as=memory_limit())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.y4m").stat().st_size > 0


# ---------------------------------------------------------------------------- signals, pipes
def interrupt_midway(args: list[str | Path], cwd: Path, sig: signal.Signals) -> subprocess.CompletedProcess:
    """Start a command, wait until its temporary output exists, then send ``sig``."""
    def as_in_a_terminal() -> None:  # CI runners and nohup start jobs with some of these ignored
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(s, signal.SIG_DFL)

    proc = subprocess.Popen([*CLI, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=as_in_a_terminal)
    deadline = time.monotonic() + 240
    while not any(p.name.endswith(".part") for p in cwd.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no temporary output appeared"
        time.sleep(0.01)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_during_encode_removes_the_partial_output(tmp_path, sig):
    before = files(tmp_path)
    result = interrupt_midway(["encode", DEMO_CLIP, "-o", "out.ui2c", "--qp", "8"], tmp_path, sig)
    assert_refused(result, f"interrupted ({sig.name})", tmp_path, before)


def test_signal_during_decode_removes_the_partial_output(stream, tmp_path):
    (tmp_path / "in.ui2c").write_bytes(stream)
    before = files(tmp_path)
    result = interrupt_midway(["decode", "in.ui2c", "-o", "out.y4m"], tmp_path, signal.SIGTERM)
    assert_refused(result, "interrupted (SIGTERM)", tmp_path, before)


def test_ignored_hangup_stays_ignored(tmp_path):
    """nohup ui2c encode ...: closing the terminal must not abort the encode."""
    proc = subprocess.Popen([*CLI, "encode", DEMO_CLIP, "-o", "out.ui2c", "--qp", "8", "--frames", "2"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    while not any(p.name.endswith(".part") for p in tmp_path.iterdir()):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert [p.name for p in tmp_path.iterdir()] == ["out.ui2c"]


def test_closed_stdout_pipe(tmp_path):
    proc = subprocess.Popen([*CLI, "complexity", "--model", "ui2c-s", "--size", "64x64"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 2
    assert err.splitlines() == ["ui2c complexity: error: output pipe closed"], err


def test_producer_is_split_on_slashes_only():
    """A TensorRT stream's producer used to be split on '-' and crash the decoder."""
    from ui2c.cli import producer_setup
    from ui2c.runtime.backends.base import Producer

    assert producer_setup("tensorrt/cuda/fp16/engine") == Producer("tensorrt", "cuda", "fp16", False, None)
    assert producer_setup("torch/cuda:1/fp16/inductor") == Producer("torch", "cuda:1", "fp16", True, None)
    assert producer_setup("torch/cpu/fp32/eager-t3") == Producer("torch", "cpu", "fp32", False, 3)
