"""Video I/O against hand-built files and hand-computed conversions."""
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import ui2c
from ui2c.errors import InputFormatError
from ui2c import video_io as vio
from ui2c.shipped import DEMO_CLIP

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # beside the checkout, as in the other tests

# A 4x2 4:2:0 frame: 8 luma bytes, 2 U bytes, 2 V bytes.
Y0, U0, V0 = bytes(range(8)), b"\x10\x11", b"\x20\x21"
Y1, U1, V1 = bytes(range(100, 108)), b"\x30\x31", b"\x40\x41"


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_y4m_hand_built_ignores_unknown_tags_and_frame_params(tmp_path):
    data = (b"YUV4MPEG2 W4 H2 F30000:1001 Ip A1:1 C420mpeg2 XCOMMENT=hi\n"
            + b"FRAME\n" + Y0 + U0 + V0 + b"FRAME Ixyz\n" + Y1 + U1 + V1)
    reader = vio.open_video(write(tmp_path / "a.y4m", data))
    assert (reader.width, reader.height, reader.chroma) == (4, 2, "420")
    assert reader.fps == Fraction(30000, 1001)
    assert reader.frame_count is None  # a FRAME line with parameters makes counting expensive
    frames = list(reader)
    assert len(frames) == 2
    assert frames[0].y.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert frames[0].u.tolist() == [[0x10, 0x11]] and frames[0].v.tolist() == [[0x20, 0x21]]
    assert frames[1].y[1, 3] == 107 and frames[1].v.tolist() == [[0x40, 0x41]]


@pytest.mark.parametrize("tag, chroma, siting", [
    ("C420jpeg", "420", "center"), ("C420", "420", "center"), ("C420mpeg2", "420", "left"),
    ("C420paldv", "420", "paldv"), ("C444", "444", "center")])
def test_y4m_chroma_siting_is_read_and_written_back(tmp_path, tag, chroma, siting):
    """A C420mpeg2 source must not come back labelled C420jpeg (issue 13)."""
    planes = (Y0, U0, V0) if chroma == "420" else (Y0, Y0, Y0)
    src = write(tmp_path / "in.y4m", f"YUV4MPEG2 W4 H2 F25:1 {tag}\n".encode() + b"FRAME\n" + b"".join(planes))
    reader = vio.open_video(src)
    assert (reader.chroma, reader.siting) == (chroma, siting)
    out = tmp_path / "out.y4m"
    with vio.open_writer(out, siting=reader.siting) as w:
        w.write(next(iter(reader)))
    expected_tag = {"C420": "C420jpeg"}.get(tag, tag)
    assert out.read_bytes().split(b"\n")[0].split(b" ")[-1] == expected_tag.encode()


def test_y4m_writer_refuses_a_siting_on_444(tmp_path):
    with pytest.raises(InputFormatError, match="siting 'left' does not apply to 444"):
        with vio.open_writer(tmp_path / "x.y4m", siting="left") as w:
            w.write(vio.Frame(*(np.zeros((2, 2), np.uint8),) * 3, "444"))
    assert not (tmp_path / "x.y4m").exists()


def test_y4m_defaults_and_cheap_count(tmp_path):
    data = b"YUV4MPEG2 H2 W4\n" + (b"FRAME\n" + Y0 + U0 + V0) * 3
    reader = vio.Y4MReader(write(tmp_path / "b.y4m", data))
    assert (reader.chroma, reader.fps, reader.frame_count) == ("420", Fraction(25), 3)
    assert len(list(reader)) == 3


def test_y4m_444_writer_exact_bytes_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    planes = [rng.integers(0, 256, (2, 3), dtype=np.uint8) for _ in range(3)]
    frame = vio.Frame(*planes, "444")
    out = tmp_path / "c.y4m"
    with vio.open_writer(out, fps=Fraction(24)) as w:
        w.write(frame)
    expected = (b"YUV4MPEG2 W3 H2 F24:1 Ip A1:1 C444\nFRAME\n"
                + b"".join(p.tobytes() for p in planes))
    assert out.read_bytes() == expected
    back = list(vio.open_video(out))
    assert len(back) == 1 and all(np.array_equal(a, b) for a, b in zip(back[0].planes, planes))


@pytest.mark.parametrize("header, problem", [
    (b"YUV4MPEG3 W4 H2\n", "not a Y4M"),
    (b"YUV4MPEG2 W4\n", "'H'"),
    (b"YUV4MPEG2 W4 H2 C422\n", "C422"),
    (b"YUV4MPEG2 W3 H2 C420jpeg\n", "odd"),
    (b"YUV4MPEG2 W4 H2 F25:0\n", "frame rate"),
    (b"YUV4MPEG2 W4 H2 F4294967297:1\n", "32-bit"),
    (b"YUV4MPEG2 W4 H2 It\n", "interlacing"),
    (b"YUV4MPEG2 W2147483646 H2\n", "maximum"),
    (b"YUV4MPEG2 Wfour H2\n", "bad size"),
    (b"YUV4MPEG2 W4 H2 X" + b"a" * 5000, "newline"),
    (b"", "empty"),
])
def test_y4m_bad_header(tmp_path, header, problem):
    with pytest.raises(InputFormatError, match=problem):
        vio.Y4MReader(write(tmp_path / "bad.y4m", header + b"FRAME\n" * bool(header)))


def test_y4m_truncated_last_frame_names_it(tmp_path):
    data = b"YUV4MPEG2 W4 H2\n" + b"FRAME\n" + Y0 + U0 + V0 + b"FRAME\n" + Y1
    reader = vio.Y4MReader(write(tmp_path / "t.y4m", data))
    frames = iter(reader)
    next(frames)
    with pytest.raises(InputFormatError, match="frame 1 truncated"):
        next(frames)


def test_y4m_missing_frame_marker(tmp_path):
    data = b"YUV4MPEG2 W4 H2\n" + b"FRAME\n" + Y0 + U0 + V0 + b"FRAMX\n" + Y1 + U1 + V1
    with pytest.raises(InputFormatError, match="frame 1 does not start with FRAME"):
        list(vio.Y4MReader(write(tmp_path / "m.y4m", data)))


def test_raw_yuv_size_from_name_and_errors(tmp_path):
    reader = vio.open_video(write(tmp_path / "clip_4x2_25fps.yuv", Y0 + U0 + V0 + Y1 + U1 + V1))
    assert (reader.width, reader.height, reader.frame_count) == (4, 2, 2)
    assert [f.y[0, 0] for f in reader] == [0, 100]
    with pytest.raises(InputFormatError, match="not a multiple"):
        vio.YuvReader(write(tmp_path / "x_4x2.yuv", Y0 + U0 + V0 + Y1))
    with pytest.raises(InputFormatError, match="name it like"):
        vio.YuvReader(write(tmp_path / "noname.yuv", Y0 + U0 + V0))
    with pytest.raises(InputFormatError, match="odd"):
        vio.YuvReader(write(tmp_path / "o_3x2.yuv", bytes(9)))
    assert vio.YuvReader(tmp_path / "noname.yuv", width=4, height=2).frame_count == 1


def test_frame_rejects_inconsistent_planes():
    y = np.zeros((2, 4), np.uint8)
    with pytest.raises(InputFormatError, match="do not fit"):
        vio.Frame(y, y, y, "420")
    with pytest.raises(InputFormatError, match="dtype"):
        vio.Frame(y.astype(np.float32), y[:1, :2], y[:1, :2], "420")


def test_nearest_upsample_and_rounded_average_by_hand():
    u = np.array([[0, 0, 1, 2], [1, 1, 2, 2]], np.uint8)  # blocks sum to 2 (0.5) and 7 (1.75)
    v = np.array([[10, 11, 255, 255], [10, 11, 255, 254]], np.uint8)  # 10.5 -> 11, 254.75 -> 255
    assert vio.box_downscale(u, 2).tolist() == [[1, 2]] and vio.box_downscale(v, 2).tolist() == [[11, 255]]
    big = vio.to_444(vio.Frame(np.zeros((2, 4), np.uint8), vio.box_downscale(u, 2), vio.box_downscale(v, 2), "420"))
    assert big.u.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
    assert big.v.tolist() == [[11, 11, 255, 255], [11, 11, 255, 255]]


def test_uint8_and_float_chroma_pooling_agree():
    rng = np.random.default_rng(1)
    plane = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    assert np.array_equal(vio.box_downscale(plane, 2), np.floor(vio.downsample_chroma(plane) + 0.5))


@pytest.mark.parametrize("chroma", ["420", "444"])
def test_array_round_trip_is_exact(chroma):
    rng = np.random.default_rng(2)
    h, w = 6, 8
    c = vio.chroma_shape(w, h, chroma)
    frame = vio.Frame(rng.integers(0, 256, (h, w), dtype=np.uint8),
                      rng.integers(0, 256, c, dtype=np.uint8),
                      rng.integers(0, 256, c, dtype=np.uint8), chroma)
    x = vio.frame_to_array(frame)
    assert x.dtype == np.float32 and x.shape == (3, h, w) and 0 <= x.min() and x.max() <= 1
    factor = 2 if chroma == "420" else 1  # independent nearest-neighbour upsampling via kron
    assert np.array_equal(np.rint(x[1] * 255), np.kron(frame.u, np.ones((factor, factor))).astype(np.float32))
    back = vio.array_to_frame(x, chroma)
    assert all(np.array_equal(a, b) for a, b in zip(back.planes, frame.planes))


def test_array_to_frame_clamps_and_rounds():
    x = np.array([[[-0.2, 1.3]], [[0.4 / 255, 1.6 / 255]], [[254.6 / 255, 0.0]]], np.float32)
    f = vio.array_to_frame(x.repeat(2, axis=1), "444")
    assert f.y[0].tolist() == [0, 255] and f.u[0].tolist() == [0, 2] and f.v[0].tolist() == [255, 0]
    assert vio.planes_to_frame([np.array([[0.5, 2.5]])] * 3, "444").y.tolist() == [[1, 3]]  # half up


def test_float_and_uint8_chroma_pooling_give_the_same_bytes():
    rng = np.random.default_rng(3)
    frame = vio.Frame(*(rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(3)), "444")
    via_float = vio.array_to_frame(vio.frame_to_array(frame), "420")
    assert np.array_equal(via_float.y, frame.y)
    assert all(np.array_equal(a, vio.box_downscale(b, 2)) for a, b in zip(via_float.planes[1:], frame.planes[1:]))


def test_pad_replicates_right_bottom_and_crops_back():
    x = np.arange(3 * 18 * 20, dtype=np.float32).reshape(3, 18, 20)
    p = vio.pad(x)
    assert p.shape == (3, 32, 32)
    assert np.array_equal(p[:, 17:, :20], np.broadcast_to(x[:, 17:18, :], (3, 15, 20)))
    assert np.array_equal(p[:, :18, 19:], np.broadcast_to(x[:, :, 19:20], (3, 18, 13)))
    assert p[2, 31, 31] == x[2, 17, 19]
    assert np.array_equal(vio.crop(p, 18, 20), x)
    assert vio.pad(p) is p and vio.pad_amount(180, 320) == (12, 0)


def test_writer_is_atomic_and_cleans_up(tmp_path):
    out = tmp_path / "o.yuv"
    frame = vio.frame_from_bytes(Y0 + U0 + V0, 4, 2, "420")
    with pytest.raises(RuntimeError):
        with vio.open_writer(out) as w:
            w.write(frame)
            assert not out.exists()  # only the temporary file exists while writing
            raise RuntimeError("encoder crashed")
    assert list(tmp_path.iterdir()) == []
    w = vio.YuvWriter(out)
    w.write(frame)
    w.abort()
    assert list(tmp_path.iterdir()) == []
    with vio.YuvWriter(out) as w:
        w.write(frame)
        with pytest.raises(InputFormatError, match="differs"):
            w.write(vio.Frame(np.zeros((2, 2), np.uint8), *[np.zeros((1, 1), np.uint8)] * 2, "420"))
    assert out.read_bytes() == Y0 + U0 + V0


def test_writer_refuses_to_overwrite_its_input(tmp_path, monkeypatch):
    src = write(tmp_path / "in_4x2.yuv", Y0 + U0 + V0)
    (tmp_path / "link.yuv").symlink_to(src)
    monkeypatch.chdir(tmp_path)
    for spelling in (src, "in_4x2.yuv", "./sub/../in_4x2.yuv", "link.yuv"):
        with pytest.raises(InputFormatError, match="input file"):
            vio.open_writer(spelling, protect=[src])
    assert src.read_bytes() == Y0 + U0 + V0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in_4x2.yuv", "link.yuv"]


def test_unsupported_output_extension(tmp_path):
    with pytest.raises(InputFormatError, match="only .y4m and .yuv"):
        vio.open_writer(tmp_path / "x.mp4")


@pytest.mark.parametrize("name, chroma", [("bigbuckbunny.mp4", "420"), ("cockatoo.mp4", "444")])
def test_pyav_reader_matches_pyav_ndarray(name, chroma):
    import av

    if not (DATA / name).is_file():
        pytest.skip(f"needs {name} in {DATA} (not part of the package)")

    reader = vio.open_video(DATA / name)
    assert (reader.width, reader.height, reader.chroma) == (1280, 720, chroma)
    assert reader.frame_count and reader.frame_count > 100
    ours = next(iter(reader))
    with av.open(str(DATA / name)) as c:
        ref = next(c.decode(video=0)).to_ndarray()
    if chroma == "444":  # (3, H, W)
        expected = list(ref)
    else:  # yuv420p is (H * 3 / 2, W): Y rows, then U and V rows packed two per line
        expected = [ref[:720], ref[720:900].reshape(360, 640), ref[900:].reshape(360, 640)]
    assert all(np.array_equal(a, b) for a, b in zip(ours.planes, expected))


def test_pyav_reader_rejects_non_video(tmp_path):
    with pytest.raises(InputFormatError):
        vio.open_video(write(tmp_path / "junk.mp4", b"not a video at all" * 10))
    with pytest.raises(InputFormatError, match="no such file"):
        vio.open_video(tmp_path / "missing.mkv")


def _h264(width: int, height: int, frames: int) -> bytes:
    """A raw H.264 stream of flat frames (a new stream, so a new SPS: concatenated, the size changes)."""
    import io

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height * 3 // 2, width), 16 * i, np.uint8), format="yuv420p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buf.getvalue()


def test_pyav_reader_refuses_a_size_change_midway(tmp_path):
    """A session codes one size: frames of another (padded to the same 64x48 here, so
    nothing downstream would notice) must not be coded as if they were the first size."""
    path = write(tmp_path / "change.h264", _h264(64, 48, 3) + _h264(56, 40, 3))
    reader = vio.open_video(path)
    assert (reader.width, reader.height) == (64, 48)
    with pytest.raises(InputFormatError, match="frame 3 is 56x40, the stream started at 64x48"):
        list(reader)


ASSET = DEMO_CLIP


def test_shipped_clip_is_a_padding_exercising_420_y4m():
    reader = vio.open_video(ASSET)
    assert (reader.width, reader.height, reader.chroma, reader.frame_count) == (320, 180, "420", 16)
    assert vio.pad_amount(reader.height, reader.width) == (12, 0)
    assert ASSET.stat().st_size < 2 << 20


@pytest.mark.skipif(not (DATA / "bigbuckbunny.mp4").is_file(), reason="shared clips not available")
def test_shipped_clip_is_reproducible_by_its_script(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_demo_clip.py"  # the checkout's, not installed
    env = {**os.environ, "PYTHONPATH": str(Path(ui2c.__file__).parent.parent)}
    out = tmp_path / "clip.y4m"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True, env=env,
                   capture_output=True)
    assert out.read_bytes() == ASSET.read_bytes()
