"""qp tables as interpolations of a few learned anchors, so every qp trains at every step.

The model keeps its 72-row per-qp tables (``q_encoder``, ``q_decoder``, ``q_feature``,
``q_recon`` and the rows of ``bit_estimator_z``).  Trained row by row, each row only
learns when its qp is drawn, and after a CPU-sized run the rows are still near their
initial value: qp then barely changes quality (issue 14).  Here each table is
re-parametrised (``torch.nn.utils.parametrize``) as a piecewise-linear interpolation
over the rows from ``ANCHORS`` anchor rows: the positive scale tables in the log
domain (so neighbouring qps differ by a constant ratio), the z prior's signed
parameters linearly.  Any drawn qp then trains its two neighbouring anchors, and a
batch of a few qps trains them all.  ``plain_state_dict`` evaluates the anchors into
plain 72-row tables, so exported weights keep the model's own layout.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..models.ops import QP_ROWS

ANCHORS = 8
LOG_TABLES = ("q_encoder", "q_decoder", "q_feature", "q_recon")


def interpolation_matrix(rows: int, anchors: int) -> torch.Tensor:
    """(rows, anchors) weights of piecewise-linear interpolation between evenly spaced anchors."""
    pos = torch.linspace(0, anchors - 1, rows, dtype=torch.float64)
    lo = pos.floor().clamp(max=anchors - 2).long()
    frac = pos - lo
    weights = torch.zeros(rows, anchors, dtype=torch.float64)
    weights[torch.arange(rows), lo] = 1 - frac
    weights[torch.arange(rows), lo + 1] = frac
    return weights.float()


class AnchorTable(nn.Module):
    """Parametrisation: anchors (…, K, C, 1, 1) → table (…, rows, C, 1, 1) along ``dim``.

    ``log=True`` interpolates log-scales (the stored anchors are logs) and returns
    their exponent; ``right_inverse`` fits the anchors to an existing table by least
    squares, so attaching to trained weights keeps their average behaviour."""

    def __init__(self, dim: int, log: bool, rows: int = QP_ROWS, anchors: int = ANCHORS):
        super().__init__()
        self.dim, self.log = dim, log
        self.register_buffer("weights", interpolation_matrix(rows, anchors), persistent=False)

    def forward(self, anchors: torch.Tensor) -> torch.Tensor:
        table = torch.tensordot(self.weights, anchors.movedim(self.dim, 0), dims=1).movedim(0, self.dim)
        return table.exp() if self.log else table

    def right_inverse(self, table: torch.Tensor) -> torch.Tensor:
        values = table.clamp_min(1e-3).log() if self.log else table
        flat = values.movedim(self.dim, 0).reshape(values.shape[self.dim], -1)
        fit = torch.linalg.lstsq(self.weights.to(flat.dtype), flat).solution
        shape = list(values.movedim(self.dim, 0).shape)
        shape[0] = fit.shape[0]
        return fit.reshape(shape).movedim(0, self.dim).contiguous()


def _targets(model: nn.Module) -> list[tuple[nn.Module, str, int, bool]]:
    """(module, parameter name, row dim, log?) of every per-qp table of a pair model."""
    out = [(model, name, 1 if name == "q_recon" and model.cfg.frames > 1 else 0, True) for name in LOG_TABLES]
    for layer in (model.bit_estimator_z.f1, model.bit_estimator_z.f2, model.bit_estimator_z.f3, model.bit_estimator_z.f4):
        out += [(layer, name, 0, False) for name in ("h", "b", "a") if getattr(layer, name) is not None]
    return out


def is_anchor(name: str) -> bool:
    """Whether a ``named_parameters`` / ``state_dict`` name is an anchor table of ``attach``
    (parametrize keeps the anchors under ``….parametrizations.<table>.original``)."""
    return "parametrizations." in name


def attach(model: nn.Module) -> nn.Module:
    """Re-parametrise every per-qp table of ``model`` by anchors (in place)."""
    for module, name, dim, log in _targets(model):
        parametrize.register_parametrization(module, name, AnchorTable(dim, log))
    return model


def spread_rate(model: nn.Module, span: float) -> None:
    """Start ``q_encoder`` as a geometric ramp over qp (×1/√span … ×√span of its current
    mean), a known-good direction (larger qp = finer quantisation) for tables that were
    trained flat; the anchors then learn the actual curve."""
    log_anchors = model.parametrizations.q_encoder.original
    with torch.no_grad():
        ramp = torch.linspace(-0.5, 0.5, log_anchors.shape[0]) * torch.log(torch.tensor(span))
        log_anchors.copy_(log_anchors.mean(0, keepdim=True) + ramp.view(-1, 1, 1, 1))


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of the plain model: each anchor parametrisation evaluated to its
    72-row table under the table's own key.  (``remove_parametrizations`` is not used:
    it edits the class that parametrize shares between a module and its copies.)"""
    state = {k: v.detach() for k, v in model.state_dict().items() if not is_anchor(k)}
    for prefix, module in model.named_modules():
        if parametrize.is_parametrized(module):
            for name in module.parametrizations:
                state[f"{prefix}.{name}" if prefix else name] = getattr(module, name).detach()
    return state
