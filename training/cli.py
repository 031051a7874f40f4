"""``ui2c train``: the trainer's command line.

Also runnable as ``python -m ui2c.training.cli`` (same arguments): that path imports
only torch, numpy and Pillow, so it runs on a GPU machine that lacks the codec's
video and ONNX dependencies.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PRESET_HELP = "pair model preset: ui2c-s (CPU-sized) or ui2c"


def _pairs(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    try:
        pairs = (int(lo), int(hi or lo))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or LO-HI pairs, got {text!r}") from None
    if not 1 <= pairs[0] <= pairs[1]:
        raise argparse.ArgumentTypeError(f"pair range must satisfy 1 <= LO <= HI, got {text!r}")
    return pairs


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .trainer import COMPILE_MODES, TrainConfig

    d = TrainConfig()
    p.add_argument("--model", default=d.preset, help=PRESET_HELP)
    p.add_argument("--data", type=Path, default=Path(d.data), help="prepared data (python -m ui2c.training.prepare)")
    p.add_argument("-o", "--out", type=Path, default=Path(d.out_dir), help="state, weights.pt and log.jsonl go here")
    p.add_argument("--init", type=Path, help="weights to start from when --out holds no state (e.g. the shipped ones)")
    p.add_argument("--minutes", type=float, default=d.minutes, help="wall-clock budget of this run; rerun to resume")
    p.add_argument("--batch", type=int, default=d.batch, help="streams trained side by side")
    p.add_argument("--crop", type=int, default=d.crop)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--pairs", type=_pairs, default=d.pairs, help="window length in pairs, N or LO-HI (default 8-16)")
    p.add_argument("--bptt", type=int, default=d.bptt, help="pairs back-propagated per optimizer step")
    p.add_argument("--average-decay", type=float, default=d.average_decay,
                   help="decay of the parameter average that weights.pt exports (0: the live weights)")
    p.add_argument("--device", default=d.device, help="cpu or cuda")
    p.add_argument("--compile", default=None, choices=COMPILE_MODES,
                   help="torch.compile the step (default: reduce-overhead, i.e. CUDA graphs, on cuda; none on cpu)")
    p.add_argument("--checkpoint-minutes", type=float, default=d.checkpoint_minutes)
    p.add_argument("--seed", type=int, default=d.seed)


def run(args: argparse.Namespace) -> int:
    from ..errors import UI2CError
    from .trainer import TrainConfig, train

    compile_mode = args.compile or ("reduce-overhead" if args.device.startswith("cuda") else "none")
    cfg = TrainConfig(preset=args.model, data=str(args.data), out_dir=str(args.out),
                      init=str(args.init) if args.init else None, minutes=args.minutes, batch=args.batch,
                      crop=args.crop, lr=args.lr, pairs=args.pairs, bptt=args.bptt, average_decay=args.average_decay,
                      device=args.device, compile=compile_mode, checkpoint_minutes=args.checkpoint_minutes, seed=args.seed)
    try:
        print(f"trained into {train(cfg)}")
    except (UI2CError, ValueError, FileNotFoundError) as exc:  # bad input: one line, no traceback
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("train", help="train a pair model (long sequences, resumable; CPU or CUDA)")
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui2c.training.cli", description="train a pair model")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
