"""qnt from Python.

PyTorch's quantization workflows, compiled (`quantize_dynamic`,
`quantize_static`, `convert_qat` -> `CompiledModel`, `load`; see
docs/python-api.md); the frontend underneath: export an nn.Module as the
FP32 TOSA IR that quant-opt takes (`export`), and write calibration /
evaluation data sets in the format quant-run reads (`qnt.data`,
`qnt.datasets`)."""

from . import data, datasets
from .api import QuantizeError, convert_qat, quantize_dynamic, quantize_static
from .compiled import CompiledModel, load
from .export import ExportError, ExportInfo, export, to_mlir

__all__ = ["CompiledModel", "ExportError", "ExportInfo", "QuantizeError", "convert_qat", "data",
           "datasets", "export", "load", "quantize_dynamic", "quantize_static", "to_mlir"]
