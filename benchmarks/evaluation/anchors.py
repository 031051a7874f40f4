"""x264 / x265 anchors through the ``ffmpeg`` command line, in the codec's own setting.

UI2C is a low-delay codec (one intra frame, then every frame predicted from the past
only), so the anchors run the same way: constant QP, an infinite GOP, no scene-cut
I-frames, no B-frames and ``-tune zerolatency`` (no lookahead).  x264 runs with one
thread because zerolatency uses sliced threads, whose slice count (and so the
bitstream) would otherwise depend on the machine's core count.  Streams are raw
elementary streams (.264/.265), so their size is every coded bit and nothing else;
x265's settings-dump SEI (``info``, ~2 kB of text, no coding data) is turned off as
it would dominate the rate of a short, downscaled clip.  x264 has no switch for its
own (~0.7 kB), which therefore stays in its rate.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...errors import UI2CError

QP_MIN, QP_MAX = 0, 51  # the 8-bit QP range both encoders share

# codec name → (ffmpeg encoder, raw elementary-stream format, file suffix)
ENCODERS = {"x264": ("libx264", "h264", ".264"), "x265": ("libx265", "hevc", ".265")}
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
           "placebo")


class AnchorError(UI2CError):
    """ffmpeg is missing, or an anchor encode/decode failed."""


@dataclass(frozen=True)
class AnchorSpec:
    codec: str  # "x264" or "x265"
    preset: str

    @classmethod
    def parse(cls, text: str) -> "AnchorSpec":
        """``x264-medium`` → AnchorSpec("x264", "medium")."""
        codec, _, preset = text.strip().partition("-")
        if codec not in ENCODERS or preset not in PRESETS:
            raise AnchorError(f"unknown anchor {text!r}: expected CODEC-PRESET with CODEC in "
                              f"{'/'.join(ENCODERS)} and an x264/x265 preset, e.g. x264-medium")
        return cls(codec, preset)

    @property
    def name(self) -> str:
        return f"{self.codec}-{self.preset}"

    @property
    def suffix(self) -> str:
        return ENCODERS[self.codec][2]


def find_ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise AnchorError("ffmpeg not found: install it (Debian: apt-get install ffmpeg) to run x264/x265 anchors")
    return path


def encode_command(spec: AnchorSpec, src: Path, dst: Path, qp: int, ffmpeg: str = "ffmpeg") -> list[str]:
    """ffmpeg arguments coding ``src`` (a .y4m, whose chroma format is kept) at constant ``qp``."""
    if not QP_MIN <= qp <= QP_MAX:
        raise AnchorError(f"anchor qp {qp} outside {QP_MIN}..{QP_MAX}")
    encoder, fmt, _ = ENCODERS[spec.codec]
    common = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-an",
              "-c:v", encoder, "-preset", spec.preset, "-tune", "zerolatency"]
    if spec.codec == "x264":
        rate = ["-threads", "1", "-qp", str(qp), "-x264-params", "keyint=infinite:scenecut=0:bframes=0"]
    else:
        rate = ["-x265-params", f"keyint=-1:scenecut=0:bframes=0:qp={qp}:info=0:log-level=error"]
    return common + rate + ["-f", fmt, str(dst)]


def decode_command(stream: Path, dst: Path, ffmpeg: str = "ffmpeg") -> list[str]:
    """ffmpeg arguments decoding an elementary stream to .y4m in the stream's own pixel format."""
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(stream),
            "-f", "yuv4mpegpipe", str(dst)]


@dataclass
class AnchorRun:
    stream: Path
    decoded: Path  # .y4m
    frame_bytes: list[int]  # access-unit sizes in coding order (= display order: no B-frames)
    keyframes: list[int]


def access_units(stream: Path, codec: str) -> tuple[list[int], list[int]]:
    """(bytes per frame, keyframe indices) from demuxing the elementary stream; the
    sizes add up to the file size, parameter sets and SEI counted in the first frame."""
    import av

    with av.open(str(stream), format=ENCODERS[codec][1]) as container:
        packets = [(p.size, p.is_keyframe) for p in container.demux(container.streams.video[0]) if p.size]
    sizes = [size for size, _ in packets]
    if sum(sizes) != stream.stat().st_size:
        raise AnchorError(f"{stream}: access units sum to {sum(sizes)} bytes, the file has {stream.stat().st_size}")
    return sizes, [i for i, (_, key) in enumerate(packets) if key]


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        raise AnchorError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def encode(spec: AnchorSpec, src: Path, qp: int, stream: Path) -> None:
    _run(encode_command(spec, src, stream, qp, find_ffmpeg()))


def run_anchor(spec: AnchorSpec, src: Path, qp: int, stream: Path, decoded: Path) -> AnchorRun:
    """Encode ``src`` to ``stream``, decode it to ``decoded`` and split the stream into frames."""
    encode(spec, src, qp, stream)
    _run(decode_command(stream, decoded, find_ffmpeg()))
    sizes, keyframes = access_units(stream, spec.codec)
    return AnchorRun(stream, decoded, sizes, keyframes)
