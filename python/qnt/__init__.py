"""qnt's PyTorch frontend: export an nn.Module as the FP32 TOSA IR that
quant-opt takes (`export`), and write calibration / evaluation data sets in
the format quant-run reads (`qnt.data`, `qnt.datasets`)."""

from . import data, datasets
from .export import ExportError, ExportInfo, export, to_mlir

__all__ = ["ExportError", "ExportInfo", "export", "to_mlir", "data", "datasets"]
