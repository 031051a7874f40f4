"""How often a stream from one backend desynchronises when another backend decodes it.

The decoder must derive the same CDF indexes and skip mask as the encoder from its
own scales (spec §3.4); two backends computing in different float orders can
disagree on a few indexes, and one disagreement shifts every later symbol of that
step.  This measures, per direction (encoder backend → decoder backend):

* the fraction of y elements whose (coded?, CDF index) differs between the sides,
* the fraction of decoded frames that are not bit-identical to the encoder's
  reconstruction, and the units where decoding failed outright.

    python -m ui2c.benchmarks.desync [--frames 16] [--qps 16,48] [--md benchmarks/RESULTS.md]

A failed unit leaves the decoder's reference stale, so every later unit fails too: one
mismatch in the first unit loses the stream until the next reset point.  The result
decides whether a cross-backend deployment needs an integer (or
otherwise deterministic) entropy-parameter path.
"""
from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..errors import BitstreamError
from ..runtime import session
from ..runtime.model import load_codec
from ..runtime.session import Decoder, Encoder
from ..video_io import frame_to_array, open_video, pad
from ..shipped import DEMO_CLIP
from .report import provenance, update_results



@contextmanager
def recorded_symbols(log: list):
    """Record every CDF-index map the sessions compute (−1 = skipped), in call order."""
    real = session.step_indexes

    def recording(scales, mask, skip_threshold):
        indexes = real(scales, mask, skip_threshold)
        log.append(indexes.cpu().numpy())
        return indexes

    session.step_indexes = recording
    try:
        yield
    finally:
        session.step_indexes = real


def measure(enc_codec, dec_codec, frames: list[np.ndarray], qp: int) -> dict:
    h, w = frames[0].shape[1:]
    enc_log, dec_log = [], []
    with recorded_symbols(enc_log):
        enc = Encoder(enc_codec, h, w, qp, reconstruct=True, scene_cut_threshold=None)
        units = [u for f in frames for u in enc.push(f)] + enc.flush()
    decoder = Decoder(dec_codec, h, w)
    failed_units, decoded = [], {}
    with recorded_symbols(dec_log):
        for unit in units:
            try:
                decoded.update({d.first_frame: d.frames for d in decoder.decode(unit.packet)})
            except BitstreamError:
                failed_units.append(unit.packet.index)
                if len(dec_log) % 2:  # failed in step 0: keep the log aligned with the encoder's
                    dec_log.append(None)
        decoded.update({d.first_frame: d.frames for d in decoder.flush()})
    differing_frames, max_diff = 0, 0.0
    for unit in units:
        got = decoded.get(unit.packet.first_frame)
        if got is None:
            differing_frames += unit.packet.num_frames
            continue
        differing_frames += sum(not torch.equal(a, b) for a, b in zip(got, unit.recon))
        max_diff = max([max_diff] + [float((a.float() - b.float()).abs().max()) for a, b in zip(got, unit.recon)])
    compared = [(a, b) for a, b in zip(enc_log, dec_log) if b is not None]
    differing = sum(int(np.sum(a != b)) for a, b in compared)
    total = sum(a.size for a, _ in compared)
    return {"qp": qp, "frames": len(frames), "index_mismatch_fraction": differing / max(total, 1),
            "frame_mismatch_fraction": differing_frames / len(frames), "failed_units": failed_units,
            "max_abs_recon_diff": max_diff}


# Directions measured.  torch on the CPU twice, with 2 and 1 threads: its convolutions
# round differently per thread count, which is why the count is part of its producer
# string (a CLI decoder reproduces it); these rows show what happens without that.
DIRECTIONS = (("torch-t2", "onnxruntime"), ("onnxruntime", "torch-t2"), ("onnxruntime", "onnxruntime"),
              ("torch-t2", "torch-t1"), ("torch-t1", "torch-t2"), ("torch-t2", "torch-t2"))


def run(frames: int, qps: list[int]) -> list[dict]:
    clip = [pad(frame_to_array(f)) for f in open_video(DEMO_CLIP)][:frames]
    codecs = {"onnxruntime": load_codec("ui2c-s", backend="onnxruntime"),
              "torch-t1": load_codec("ui2c-s", backend="torch", threads=1),
              "torch-t2": load_codec("ui2c-s", backend="torch", threads=2)}
    rows = []
    for enc_name, dec_name in DIRECTIONS:
        for qp in qps:
            rows.append({"encoder": enc_name, "decoder": dec_name,
                         **measure(codecs[enc_name], codecs[dec_name], clip, qp)})
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [provenance(), "",
             "| encoder → decoder | qp | frames | CDF index / skip mismatches | frames not bit-exact | "
             "max abs recon diff (decoded units) | failed units |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['encoder']} → {r['decoder']} | {r['qp']} | {r['frames']} | "
                     f"{100 * r['index_mismatch_fraction']:.4f} % | {100 * r['frame_mismatch_fraction']:.1f} % | "
                     f"{r['max_abs_recon_diff']:.2e} | {r['failed_units'] or '-'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--qps", default="16,48")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/desync.json"))
    parser.add_argument("--md", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = parser.parse_args(argv)
    rows = run(args.frames, [int(q) for q in args.qps.split(",")])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    update_results(args.md, "desync", format_rows(rows))
    print(format_rows(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
