"""Resumable training state as a few small files.

A GPU machine is lent in short chunks and hands back at most 8 files of ≤ 16 MiB each,
so the state is written as shards: the float32 model in ≤ ``SHARD_BYTES`` pieces, Adam's
two moments in bfloat16 (their range matters, not their last bits), the weight average
(``average.py``) in float16, and a JSON file with counters and the configuration.  A
state folder with only the model shards also resumes (Adam then restarts its moments).
Saving goes to a sibling folder that replaces the old one, so an interrupted save leaves
the previous state readable.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from ..errors import CheckpointError

SHARD_BYTES = 15 * 2**20


def save_shards(directory: Path, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` as ``prefix-K.pt`` files of at most ``SHARD_BYTES`` each (greedy, in key order)."""
    shard: dict[str, torch.Tensor] = {}
    size, index = 0, 0
    for key, value in tensors.items():
        nbytes = value.numel() * value.element_size()
        if shard and size + nbytes > SHARD_BYTES:
            torch.save(shard, directory / f"{prefix}-{index}.pt")
            shard, size, index = {}, 0, index + 1
        shard[key] = value.detach().cpu().contiguous()
        size += nbytes
    torch.save(shard, directory / f"{prefix}-{index}.pt")


def load_shards(directory: Path, prefix: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for path in sorted(directory.glob(f"{prefix}-*.pt"), key=lambda p: int(p.stem.rsplit("-", 1)[1])):
        out.update(torch.load(path, map_location="cpu", weights_only=True))
    return out


def save_state(directory: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, info: dict,
               average: dict[str, torch.Tensor] | None = None) -> None:
    """Model (float32), Adam moments (bfloat16), ``average`` (as given) and ``info`` (JSON) into ``directory``."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_shards(tmp, "model", {k: v.float() for k, v in model.state_dict().items()})
    opt_state = opt.state_dict()
    for moment in ("exp_avg", "exp_avg_sq"):
        save_shards(tmp, moment, {str(i): s[moment].to(torch.bfloat16) for i, s in opt_state["state"].items()})
    if average:
        save_shards(tmp, "average", average)
    steps = {str(i): float(s["step"]) for i, s in opt_state["state"].items()}
    state = {**info, "adam_steps": steps, "adam_params": _adam_order(model, opt)}
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    _sync(tmp)  # on the disk before it replaces anything: a crash must not leave empty shards behind a rename
    old = directory.with_name(directory.name + ".old")
    if (directory / "state.json").exists():  # the last good state becomes .old (an older .old is superseded:
        shutil.rmtree(old, ignore_errors=True)  # a save killed before its cleanup left one)
        directory.replace(old)
    elif directory.exists():
        shutil.rmtree(directory)  # not a state (resuming refuses it); .old, if any, stays the good copy
    tmp.replace(directory)
    shutil.rmtree(old, ignore_errors=True)


def _sync(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def readable_state(directory: Path) -> Path | None:
    """The folder to resume from: ``directory``, or the previous state if a save was cut off;
    None when there is none.  A folder there that is not a state is an error, not a fresh
    start (training from the init weights would then overwrite it)."""
    old = directory.with_name(directory.name + ".old")
    for candidate in (directory, old):
        if (candidate / "state.json").exists():
            return candidate
    if directory.exists() or old.exists():
        raise CheckpointError(f"{directory} holds no state.json: not a training state to resume "
                              "(move it away to start from --init)")
    return None


def _adam_order(model: torch.nn.Module, opt: torch.optim.Optimizer) -> list[str]:
    """Parameter names in the order Adam numbers its state (group by group)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for group in opt.param_groups for p in group["params"]]


def load_state(directory: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict:
    """Load what ``save_state`` wrote; returns the saved ``info`` (``adam_resumed`` says
    whether Adam's moments came back, for this load only).  Moments are keyed by Adam's
    parameter numbers, so they come back only when the parameters are numbered as when
    they were saved; otherwise Adam starts afresh (with its warm-up)."""
    info = json.loads((directory / "state.json").read_text())
    info.pop("adam_resumed", None)
    model.load_state_dict(load_shards(directory, "model"))
    moments = {m: load_shards(directory, m) for m in ("exp_avg", "exp_avg_sq")}
    steps = info.pop("adam_steps", {})
    same_order = info.pop("adam_params", None) == _adam_order(model, opt)
    if steps and same_order and all(len(moments[m]) == len(steps) for m in moments):
        device = next(model.parameters()).device
        state = {int(i): {"step": torch.tensor(step),
                          "exp_avg": moments["exp_avg"][i].float().to(device),
                          "exp_avg_sq": moments["exp_avg_sq"][i].float().to(device)} for i, step in steps.items()}
        opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
        info["adam_resumed"] = True
    return info
