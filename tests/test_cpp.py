"""libui2c (runtime/cpp) against the Python runtime, on CPU with the aoti engines.

The programs come from ``$UI2C_CPP_BIN`` (the folder scripts/build_cpp.sh prints; CI
sets it) or are built here into build/cpp.  The container (one C++ implementation, which
Python uses through its binding) against hand-built bytes; the C++ decoder against the
Python decoder; a C++ stream against the Python decoder; the C API's error paths, once
under ASan.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from ui2c.engines import aoti
from test_container import packet_bytes  # CONTAINER.md §2 by hand (one builder for both suites)
from ui2c.runtime.container import ContainerReader, SequenceHeader

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ROOT / "build" / "test_aoti" / "ui2c-s"


def _build(folder: Path, *cmake_args: str) -> Path:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed (apt-get install cmake)")
    out = subprocess.run(["bash", str(ROOT / "scripts" / "build_cpp.sh"), str(folder), *cmake_args],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def cpp_bin() -> Path:
    env = os.environ.get("UI2C_CPP_BIN")
    return Path(env) if env else _build(ROOT / "build" / "cpp")


@pytest.fixture(scope="session")
def engines() -> Path:
    aoti.build_aoti("ui2c-s", ENGINES, "cpu")
    return ENGINES


@pytest.fixture(scope="session")
def codec(engines):
    from ui2c.runtime.model import load_codec

    return load_codec("ui2c-s", backend="aoti", engine_dir=engines)


def _make_clip(path: Path, chroma: str) -> Path:
    """5 frames of 72x40 (padded to 80x48; odd count: a 1-frame last packet): smooth, then
    noise from frame 3 (a scene cut, and a PSNR drop the drift guard sees)."""
    h, w = 40, 72
    ch, cw = (h // 2, w // 2) if chroma == "420" else (h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(5)
    frames = []
    for t in range(5):
        luma = (60 + 2 * xx + yy + 3 * t) % 256 if t < 3 else rng.integers(0, 256, (h, w))
        u = np.full((ch, cw), 110 + 5 * t)
        v = (np.arange(cw)[None, :] * 3 + np.arange(ch)[:, None]) % 256
        frames.append(b"FRAME\n" + b"".join(p.astype(np.uint8).tobytes() for p in (luma, u, v)))
    tag = "420jpeg" if chroma == "420" else "444"
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F30000:1001 Ip A1:1 C{tag}\n".encode() + b"".join(frames))
    return path


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    return _make_clip(tmp_path_factory.mktemp("clip") / "clip.y4m", "420")


def _run(*cmd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=600)


# --- container: one implementation ---------------------------------------------------


def _hand_built_header(frame_count: int) -> bytes:
    """72x40 4:2:0 (chroma code 0) at 30000/1001 fps, spelled out per CONTAINER.md §1."""
    body = (b"\x00\x00\x00\x48" b"\x00\x00\x00\x28" + frame_count.to_bytes(4, "big") + b"\x00\x00\x75\x30"
            b"\x00\x00\x03\xe9" b"\x00" b"\x06ui2c-s" b"\x03wfp" b"\x03tfp" b"\x12aoti/cpu/fp32/aoti")
    head = b"UI2C\x02" + len(body).to_bytes(2, "big") + body
    return head + zlib.crc32(head).to_bytes(4, "big")


def test_cpp_container_writes_and_parses_the_documented_layout():
    """The one implementation against bytes built by hand from CONTAINER.md and zlib's CRC."""
    from ui2c.entropy import _container

    header = _hand_built_header(3)
    assert _container.header_to_bytes(72, 40, 3, 30000, 1001, "420", "center", "ui2c-s", "wfp", "tfp",
                                      "aoti/cpu/fp32/aoti") == header
    fields, used = _container.parse_header(header + b"U2PK")
    assert used == len(header) and fields == dict(
        width=72, height=40, frame_count=3, fps_num=30000, fps_den=1001, chroma="420", siting="center",
        preset="ui2c-s", weights_fingerprint="wfp", tables_fingerprint="tfp", backend="aoti/cpu/fp32/aoti")
    assert _container.header_size(header[:_container.HEADER_PREFIX_BYTES]) == len(header)
    # Sub-streams (§3): count, then uint_adaptive lengths of 1, 2 and 4 bytes, then the data.
    streams = [b"z" * 5, b"", b"y" * 300, b"x" * 20000]
    payload = b"\x04" b"\x05" b"\x00" b"\x81\x2c" b"\xc0\x00\x4e\x20" + b"".join(streams)
    assert _container.pack_substreams(streams) == payload
    assert _container.unpack_substreams(payload) == streams
    packets = [(0, (3, 11), True, payload), (2, (7,), False, b"\x01\x02")]
    data = packet_bytes(0, b"\x03\x0b", 1, payload) + packet_bytes(2, b"\x07", 0, b"\x01\x02")
    pos = 0
    for index, (first, qps, reset, body) in enumerate(packets):
        assert _container.parse_packet_head(data[pos:pos + 20], index) == (first, len(qps), reset, 20 + len(body))
        assert _container.parse_packet(data[pos:], index) == (first, qps, reset, body, 20 + len(body))
        assert _container.packet_to_bytes(first, qps, reset, body) == data[pos:pos + 20 + len(body)]
        pos += 20 + len(body)
    assert _container.crc32(data) == zlib.crc32(data) and _container.crc32(b"ab", 7) == zlib.crc32(b"ab", 7)


def test_cpp_container_sequence_rules():
    from ui2c.entropy import _container
    from ui2c.errors import CorruptStreamError, TruncatedStreamError

    sequence = _container.PacketSequence(3)
    sequence.add(0, 2, True)
    sequence.add(2, 1, False)
    sequence.finish()
    assert (sequence.frames, sequence.next_index) == (3, 2)
    with pytest.raises(CorruptStreamError, match="packet 2 follows a 1-frame packet"):
        sequence.add(4, 2, False)
    with pytest.raises(TruncatedStreamError, match="stream ends before packet 1: 2 of 3 announced frames"):
        short = _container.PacketSequence(3)
        short.add(0, 2, True)
        short.finish()
    with pytest.raises(CorruptStreamError, match="beyond the announced 1"):
        _container.PacketSequence(1).add(0, 2, True)
    with pytest.raises(ValueError, match="packet 0 is not a reset point"):  # a writer's mistake, not data
        _container.PacketSequence(0, writer=True).add(0, 2, False)
    _container.PacketSequence(0, 4).add(4, 2, False)  # from a reset point inside the stream


@pytest.mark.parametrize(("cut", "error"), [(lambda d: d[:30], "TruncatedStreamError"),
                                             (lambda d: d[:4] + b"\x07" + d[5:], "UnsupportedVersionError"),
                                             (lambda d: b"UI2X" + d[4:], "CorruptStreamError"),
                                             (lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], "CorruptStreamError")])
def test_cpp_container_raises_the_python_errors(cut, error):
    from ui2c import errors
    from ui2c.entropy import _container

    data = _hand_built_header(0)
    with pytest.raises(getattr(errors, error)):
        _container.parse_header(cut(data))


# --- codec equality ------------------------------------------------------------------


@pytest.mark.parametrize("chroma", ["420", "444"])
def test_cpp_decoder_output_equals_the_python_decoder(cpp_bin, engines, codec, chroma, tmp_path):
    from ui2c.runtime.api import decode_file, encode_file

    stream = tmp_path / "py.ui2c"
    encode_file(codec, _make_clip(tmp_path / "clip.y4m", chroma), stream, qp=30, progress=False)
    decode_file(codec, stream, tmp_path / "py.y4m", progress=False)
    out = _run(cpp_bin / "ui2c-decode", "--engines", engines, stream, "-o", tmp_path / "cpp.y4m")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "cpp.y4m").read_bytes() == (tmp_path / "py.y4m").read_bytes()


@pytest.mark.parametrize(("drift_guard", "resets"), [(None, [True, True, True]), (0.0, [True, False, True])])
def test_cpp_encoder_stream_decodes_in_python_to_its_reconstruction(cpp_bin, engines, codec, clip, tmp_path,
                                                                    drift_guard, resets):
    """Scene cuts on by default; the drift-guard case turns them off so the guard makes the reset."""
    from ui2c.runtime.api import decode_file, encode_file

    stream, recon = tmp_path / "cpp.ui2c", tmp_path / "recon.y4m"
    guard = [] if drift_guard is None else ["--scene-cut", 0, "--drift-guard", drift_guard]
    out = _run(cpp_bin / "ui2c-encode", "--engines", engines, "--qp", 30, *guard, "--recon", recon, clip, "-o", stream)
    assert out.returncode == 0, out.stderr
    decode_file(codec, stream, tmp_path / "py.y4m", progress=False)
    assert (tmp_path / "py.y4m").read_bytes() == recon.read_bytes()
    with ContainerReader(stream) as reader:
        packets = list(reader)
    assert [p.num_frames for p in packets] == [2, 2, 1] and [p.reset for p in packets] == resets
    # Same engines, same input: the C++ encoder writes the Python encoder's bytes.
    encode_file(codec, clip, tmp_path / "py.ui2c", qp=30, drift_guard_db=drift_guard,
                scene_cut_threshold=None if drift_guard is not None else 0.1, progress=False)
    assert stream.read_bytes() == (tmp_path / "py.ui2c").read_bytes()


def test_cpp_tools_keep_the_chroma_siting(cpp_bin, engines, clip, tmp_path):
    """C420mpeg2 in, C420mpeg2 out of both C++ tools (the container's chroma code 2)."""
    src = tmp_path / "mpeg2.y4m"
    src.write_bytes(clip.read_bytes().replace(b"C420jpeg", b"C420mpeg2", 1))
    stream, recon, out = tmp_path / "s.ui2c", tmp_path / "recon.y4m", tmp_path / "out.y4m"
    assert _run(cpp_bin / "ui2c-encode", "--engines", engines, "--recon", recon, src, "-o", stream).returncode == 0
    assert _run(cpp_bin / "ui2c-decode", "--engines", engines, stream, "-o", out).returncode == 0
    with ContainerReader(stream) as reader:
        assert (reader.header.chroma, reader.header.siting) == ("420", "left")
    for y4m in (recon, out):
        assert y4m.read_bytes().partition(b"\n")[0].endswith(b" C420mpeg2")


def test_cpp_encoder_resets_every_unit_holding_a_multiple_of_the_interval(cpp_bin, engines, clip, tmp_path):
    """Units are frames (0, 1), (2, 3), (4): with an interval of 3 the second holds frame 3."""
    stream = tmp_path / "r3.ui2c"
    out = _run(cpp_bin / "ui2c-encode", "--engines", engines, "--reset-interval", 3, "--scene-cut", 0, clip, "-o", stream)
    assert out.returncode == 0, out.stderr
    with ContainerReader(stream) as reader:
        assert [p.reset for p in reader] == [True, True, False]


def test_cpp_tools_refuse_bad_options_and_never_overwrite_or_leave_files(cpp_bin, engines, clip, tmp_path):
    encode = cpp_bin / "ui2c-encode"
    work = tmp_path / "work"
    work.mkdir()
    for option in (["--qp", "4294967316"], ["--threads", "4294967297"], ["--reset-interval", "-1"],
                   ["--scene-cut", "abc"], ["--drift-guard", "inf"], ["--frames", "0"]):
        out = _run(encode, "--engines", engines, *option, clip, "-o", work / "x.ui2c")
        assert out.returncode == 1 and option[0] in out.stderr, (option, out.returncode, out.stderr)
    kept = work / "kept.ui2c"
    kept.write_bytes(b"the user's file")
    out = _run(encode, "--engines", engines, "--frames", "2", clip, "-o", kept)
    assert out.returncode == 1 and "pass -y" in out.stderr and kept.read_bytes() == b"the user's file"
    source = clip.read_bytes()
    out = _run(encode, "--engines", engines, "-y", clip, "-o", clip)
    assert out.returncode == 1 and "is the input file" in out.stderr and clip.read_bytes() == source
    cut = work / "cut.y4m"  # the last frame is cut short: the run fails after writing packets
    cut.write_bytes(source[:-100])
    out = _run(encode, "--engines", engines, "--recon", work / "r.y4m", cut, "-o", work / "cut.ui2c")
    assert out.returncode == 7 and "truncated" in out.stderr, out.stderr
    assert sorted(p.name for p in work.iterdir()) == ["cut.y4m", "kept.ui2c"]  # no partial or temporary file
    out = _run(encode, "--engines", engines, "--frames", "2", "-y", clip, "-o", kept)
    assert out.returncode == 0 and kept.read_bytes()[:4] == b"UI2C", out.stderr
    out = _run(cpp_bin / "ui2c-decode", "--engines", engines, kept, "-o", cut)
    assert out.returncode == 1 and "pass -y" in out.stderr and cut.read_bytes() == source[:-100]


# --- error paths ---------------------------------------------------------------------


def _stream(codec, clip, tmp_path) -> bytes:
    from ui2c.runtime.api import encode_file

    encode_file(codec, clip, tmp_path / "ok.ui2c", qp=20, progress=False)
    return (tmp_path / "ok.ui2c").read_bytes()


def _edit_packet0(data: bytes, header_end: int, edit) -> bytes:
    """Packet 0 changed by ``edit(head, payload)`` (both bytearrays, in place), CRC fixed, so
    the change gets past the container's checks to what they guard."""
    start = header_end
    length = int.from_bytes(data[start + 12:start + 16], "big")
    head = bytearray(data[start:start + 16])
    payload = bytearray(data[start + 20:start + 20 + length])
    edit(head, payload)
    head[12:16] = len(payload).to_bytes(4, "big")
    crc = zlib.crc32(bytes(payload), zlib.crc32(bytes(head[4:16])))
    return data[:start] + bytes(head) + crc.to_bytes(4, "big") + bytes(payload) + data[start + 20 + length:]


def _flip_second_half(head: bytearray, payload: bytearray) -> None:
    for i in range(len(payload) // 2, len(payload)):
        payload[i] ^= 0x5A


def _qp_past_the_tables(head: bytearray, payload: bytearray) -> None:
    head[9] = 72  # QP_ROWS: one past the networks' last qp row


def _format1_z_stream(head: bytearray, payload: bytearray) -> None:
    from ui2c.entropy import _container

    streams = _container.unpack_substreams(bytes(payload))
    streams[0] = b"\xb5" + streams[0][1:]  # rans_format.hpp: format 1's id
    payload[:] = _container.pack_substreams(streams)


def _decode_cases(data: bytes, engines: Path, tmp_path: Path) -> list[tuple[str, Path, bytes, int | tuple[int, ...]]]:
    """(name, engine dir, stream, expected exit status(es) = ui2c_status)."""
    from ui2c.entropy import _container

    fields, header_len = _container.parse_header(data)
    other = SequenceHeader(72, 40, Fraction(30000, 1001), "420", "ui2c-s", "0123456789abcdef",
                           fields["tables_fingerprint"], fields["backend"], frame_count=5).to_bytes()
    foreign = tmp_path / "foreign"
    if not foreign.exists():
        shutil.copytree(engines, foreign)
        side = aoti.sidecar_path(aoti.package_path(foreign, "spatial_prior", "cpu"))
        side.write_text(json.dumps({**json.loads(side.read_text()), "weights_fingerprint": "f" * 16}, indent=2))
    return [
        ("truncated", engines, data[:-7], 5),
        ("cut header", engines, data[:header_len - 2], 5),
        ("corrupt CRC", engines, data[:header_len + 25] + bytes([data[header_len + 25] ^ 4]) + data[header_len + 26:], 4),
        # the flips may land in a rANS header (a length: truncated) or in coded data (corrupt)
        ("corrupt entropy payload", engines, _edit_packet0(data, header_len, _flip_second_half), (4, 5)),
        ("qp past the tables", engines, _edit_packet0(data, header_len, _qp_past_the_tables), 4),
        ("old entropy format", engines, _edit_packet0(data, header_len, _format1_z_stream), 6),
        ("no packets", engines, data[:header_len], 4),
        ("other weights", engines, other + data[header_len:], 3),
        ("missing engine dir", tmp_path / "nowhere", data, 2),
        ("foreign package", foreign, data, 2),
    ]


PACKET_ERRORS = ("corrupt entropy payload", "qp past the tables", "old entropy format")


def _check_decode_errors(decode: Path, cases, tmp_path: Path, env=None) -> None:
    for name, engine_dir, data, status in cases:
        path = tmp_path / f"{name.replace(' ', '_')}.ui2c"
        path.write_bytes(data)
        out = _run(decode, "--engines", engine_dir, path, "-o", tmp_path / "out.y4m", env=env)
        assert out.returncode in (status if isinstance(status, tuple) else (status,)), (name, out.returncode, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ui2c-decode: "), (name, out.stderr)
        if name in PACKET_ERRORS:  # damage inside a packet names it, whichever layer finds it
            assert "packet 0: " in lines[0], (name, lines[0])
        assert not (tmp_path / "out.y4m").exists()


def test_c_api_error_paths_return_codes_and_messages(cpp_bin, engines, codec, clip, tmp_path):
    out = _run(cpp_bin / "ui2c-capi-errors", engines)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 failure(s)" in out.stdout
    _check_decode_errors(cpp_bin / "ui2c-decode", _decode_cases(_stream(codec, clip, tmp_path), engines, tmp_path),
                         tmp_path)
    out = _run(cpp_bin / "ui2c-encode", "--engines", engines, "--qp", "64", clip, "-o", tmp_path / "x.ui2c")
    assert out.returncode == 1 and "qp must be in [0, 63]" in out.stderr


def test_error_paths_under_address_sanitizer(engines, codec, clip, tmp_path):
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    asan = _build(ROOT / "build" / "cpp-asan", "-DUI2C_ASAN=ON", "-DCMAKE_BUILD_TYPE=RelWithDebInfo")
    # use_tls=0: LeakSanitizer's scan of dynamic TLS crashes the tracer ("Tracer caught
    # signal 11", a garbage DTLS range) for some dlopen'ed AOTInductor packages with this
    # glibc; leaks are still checked, thread-local storage is just not a root.  So glibc's
    # own per-thread blocks, reachable only from the thread descriptor, look leaked: the
    # pthread_setspecific tables and the dlerror message of a failed dlopen (CUDA builds of
    # torch create keys and probe for libcuda at load).  Those glibc frames are suppressed.
    suppressions = tmp_path / "lsan.supp"
    suppressions.write_text("".join(f"leak:{frame}\n" for frame in
                                    ("pthread_setspecific", "_dlerror_run", "_dl_exception_create_format")))
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:exitcode=86",
           "LSAN_OPTIONS": f"use_tls=0:print_suppressions=0:suppressions={suppressions}"}
    out = _run(asan / "ui2c-capi-errors", engines, env=env)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    _check_decode_errors(asan / "ui2c-decode", _decode_cases(_stream(codec, clip, tmp_path), engines, tmp_path),
                         tmp_path, env=env)


def _fake_torch(folder: Path) -> Path:
    """A folder that passes CMakeLists' torch check: the AOTI loader header and the libraries."""
    header = folder / "include/torch/csrc/inductor/aoti_package/model_package_loader.h"
    header.parent.mkdir(parents=True)
    header.touch()
    (folder / "lib").mkdir()
    for lib in ("torch", "torch_cpu", "c10"):
        (folder / "lib" / f"lib{lib}.so").touch()
    return folder


def test_reconfiguring_for_another_torch_links_that_torch(tmp_path):
    """A build folder configured for one torch wheel and then for another (a torch upgrade, a
    second virtual environment) must link the second wheel's libraries: cached library paths
    once kept the first wheel's, beside the second's headers."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed (apt-get install cmake)")
    build = tmp_path / "build"
    for name in ("first", "second"):
        torch_dir = _fake_torch(tmp_path / name)
        out = subprocess.run(["cmake", "-S", str(ROOT / "runtime" / "cpp"), "-B", str(build),
                              f"-DTORCH_DIR={torch_dir}"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
    link = (build / "CMakeFiles" / "ui2c.dir" / "link.txt").read_text()
    assert str(tmp_path / "second" / "lib") in link  # as full paths, or as -L with -l
    assert str(tmp_path / "first") not in link
