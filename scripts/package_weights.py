"""Turn a training checkpoint into the shipped weights file (float16, with provenance).

    python scripts/package_weights.py work_dirs/ui2c-s/checkpoint.pt ui2c/assets/ui2c-s.pt

Float16 storage halves the file (the runtime casts back to float32 on load); the
metadata records how the weights were made so the README and results can say it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    cfg, state = ckpt["config"], ckpt["state"]
    meta = {
        "preset": cfg["preset"],
        "iterations": state["iteration"],
        "training_minutes": round(state["elapsed_s"] / 60, 1),
        "data": f"{Path(cfg['video']).name}: 5-frame windows every {cfg['window_stride']} frames, 2x area-downscaled, "
                f"{cfg['crop']}px random crops with flips, batch {cfg['batch']}",
        "command": f"ui2c train --model {cfg['preset']} --video {cfg['video']} --minutes {cfg['minutes']:g} "
                   f"--batch {cfg['batch']} --crop {cfg['crop']}",
        "note": "small CPU-trained demo weights (2 cores), not the paper's weights",
    }
    state_dict = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"preset": cfg["preset"], "state_dict": state_dict, "meta": meta}, args.output)
    print(f"{args.output}: {args.output.stat().st_size / 1e6:.1f} MB, {meta}")


if __name__ == "__main__":
    main()
