"""ONNX export of the network stages (``ui2c export``); see ``README.md``."""
from .exporter import MANIFEST, export_model

__all__ = ["MANIFEST", "export_model"]
