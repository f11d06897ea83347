"""ONNX in and out.

Import: an ONNX model (FP32, or QDQ-quantized) -> the FP32 TOSA IR of
`qnt.export`, with the QDQ pairs as ``qnt.fake_quant`` carrying the file's
scales and zero points. Export: a qnt module (quantized after
``--qnt-convert``, or FP32) -> ONNX, quantized values in the QDQ form that
ONNX Runtime fuses.

    from qnt.onnx import export_onnx, import_onnx
    info = import_onnx("model.onnx", "model.mlir", input_shapes={"input": (1, 3, 224, 224)})
    export_onnx("int8.mlir", "model.int8.onnx")

See docs/onnx.md for the op tables and the QDQ rules.
"""

from .exporter import OnnxExportError, export_onnx
from .exporter import to_onnx as to_onnx_model
from .importer import OnnxImportError, import_onnx, to_mlir

__all__ = ["OnnxExportError", "OnnxImportError", "export_onnx", "import_onnx", "to_mlir",
           "to_onnx_model"]
