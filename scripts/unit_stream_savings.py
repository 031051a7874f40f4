"""What one rANS stream per unit saves on real streams, against one per latent step.

    python scripts/unit_stream_savings.py CLIP [--frames N] [--qps 0,21,42,63]

Encodes CLIP with the shipped ui2c-s (torch backend) at each qp, decodes it while
recording each unit's two y segments (symbols and indexes), and re-encodes every step
as its own stream, as container version 1 wrote them: the difference is the header,
check and flushed lane states the shared stream no longer repeats.
"""
from __future__ import annotations

import argparse
import os
import tempfile

from ui2c.entropy import coder, rans
from ui2c.runtime.api import decode_frames, encode_file
from ui2c.runtime.model import load_codec


class RecordingDecoder(coder.SegmentDecoder):
    """Passes segments through and keeps a finished stream's (size, segments, tables)."""

    def __init__(self, inner: coder.SegmentDecoder, size: int, tables, log: list) -> None:
        self.inner, self.size, self.tables, self.log, self.parts = inner, size, tables, log, []

    def next(self, indexes):
        symbols = self.inner.next(indexes)
        self.parts.append((symbols.cpu().numpy(), indexes.cpu().numpy()))
        return symbols

    def finish(self) -> None:
        self.inner.finish()
        self.log.append((self.size, self.parts, self.tables))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--qps", default="0,21,42,63")
    args = parser.parse_args()
    codec = load_codec("ui2c-s", backend="torch", threads=2)
    log: list = []
    plain = coder.CpuCoder.decoder
    coder.CpuCoder.decoder = lambda self, data: RecordingDecoder(plain(self, data), len(data), self.tables, log)
    with tempfile.TemporaryDirectory() as tmp:
        for qp in map(int, args.qps.split(",")):
            path = os.path.join(tmp, f"qp{qp}.ui2c")
            encode_file(codec, args.clip, path, qp=qp, max_frames=args.frames, progress=False)
            log.clear()
            for _ in decode_frames(codec, path):
                pass
            units = [(size, parts, tables) for size, parts, tables in log if len(parts) == 2]
            shared = sum(size for size, _, _ in units)
            split = sum(len(rans.encode(s, i, t, skip_negative=True)) for _, parts, t in units for s, i in parts)
            total = os.path.getsize(path)
            print(f"qp {qp}: {len(units)} units, file {total} B; y as one stream per unit {shared} B, one per step "
                  f"{split} B: saves {split - shared} B, {100 * (split - shared) / (total + split - shared):.2f} % "
                  "of the version-1 file")


if __name__ == "__main__":
    main()
