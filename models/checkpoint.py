"""Loading weights: official DCVC-RT checkpoints and ui2c's own weight files.

Official files wrap the state dict in ``state_dict`` or ``net`` and may prefix keys
with ``module.`` (DataParallel).  ui2c weight files are ``{"preset", "state_dict",
"meta"}`` and may store float16 tensors to stay small; they are cast to the model's
dtype on load.  Any difference in keys or shapes is an error naming every key.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from ..errors import CheckpointError
from ..shipped import default_weights
from .presets import RANDOM_SEED, build_intra_model, build_model, fixed_seed


def unwrap_state_dict(obj: object) -> dict[str, torch.Tensor]:
    """The flat ``{key: tensor}`` dict inside a checkpoint object."""
    for wrapper in ("state_dict", "net", "model"):
        if isinstance(obj, Mapping) and wrapper in obj and isinstance(obj[wrapper], Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError("checkpoint holds no state dict (expected a dict of tensors, or one under "
                              "'state_dict' / 'net' / 'model')")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _first(keys: list[str], shown: int = 3) -> str:
    more = f", and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise a one-line ``CheckpointError`` counting the missing, unexpected and mis-shaped
    keys and naming the first of each (a wrong checkpoint mismatches hundreds)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or misshaped:
        found = [f"{len(keys)} {title} ({_first(keys)})" for title, keys in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", misshaped)) if keys]
        raise CheckpointError(f"{source} does not match {type(model).__name__}: " + "; ".join(found))


def read_checkpoint(path: str | Path) -> object:
    """The object saved in ``path`` (tensors and plain data only), on the CPU; a missing or
    unreadable file is a one-line ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise CheckpointError(f"cannot read weights file {path}: {exc}") from exc


def load_weights(model: nn.Module, path: str | Path) -> dict:
    """Load ``path`` into ``model`` (strictly); returns the file's metadata, if any."""
    obj = read_checkpoint(path)
    state = unwrap_state_dict(obj)
    check_state_dict(model, state, str(path))
    dtype = next(model.parameters()).dtype
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()})
    meta = obj.get("meta", {}) if isinstance(obj, Mapping) else {}
    if isinstance(obj, Mapping) and "preset" in obj:
        meta = {**meta, "preset": obj["preset"]}
    return meta


def load_preset(preset: str, weights: str | Path | None = None, *, allow_random: bool = False,
                intra: bool = False) -> tuple[nn.Module, Path | None]:
    """``preset``'s network (its I-frame model if ``intra``), in eval mode, with the weights
    in ``weights``, by default the preset's shipped ones (only inter models ship).

    With no weights file it keeps its random initialisation from :data:`RANDOM_SEED`
    (the same in every process; the caller's random state is left alone), if
    ``allow_random``: reconstructions are noise then, fit for tests and benchmarks only.
    Returns the network and the weights file loaded (None: random), so an exporter can
    record where its weights came from."""
    path = Path(weights) if weights is not None else None if intra else default_weights(preset)
    with fixed_seed(RANDOM_SEED):
        network = build_intra_model(preset) if intra else build_model(preset)
    if network is None:
        raise CheckpointError(f"preset {preset!r} has no intra model" + (f" for {path}" if path else ""))
    if path is None:
        if not allow_random:
            raise CheckpointError(f"no weights for preset {preset!r}: pass --weights, or allow random weights "
                                  "(for tests and benchmarks only: reconstructions are noise)")
        return network.eval(), None
    meta = load_weights(network, path)
    if meta.get("preset", preset) != preset:
        raise CheckpointError(f"{path} holds weights for preset {meta['preset']!r}, not {preset!r}")
    return network.eval(), path


def weights_fingerprint(model: nn.Module) -> str:
    """Hash of every parameter (key order fixed): what a stream header carries so a
    decoder with other weights refuses instead of decoding garbage."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
