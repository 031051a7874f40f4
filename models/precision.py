"""Precisions and tensor dtypes by name: one table each for every layer.

The exporter, the engine builders, the backends and the command lines all name a
precision ("fp32", "fp16") and read tensor dtypes from manifests ("float32",
"int32"); a choice offered in one place and unknown in another would only fail
once a model is half loaded, so they all read these tables.
"""
from __future__ import annotations

import torch

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16}
"""Model precision name → the dtype its float tensors have."""

TENSOR_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "int32": torch.int32}
"""Concrete dtype of a ``TensorSpec`` or manifest entry → torch dtype (``"float"`` follows the precision)."""
