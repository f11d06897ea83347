"""ONNX import: an ONNX model (FP32, or QDQ-quantized) -> the FP32 TOSA IR
of `qnt.export`, with the QDQ pairs as ``qnt.fake_quant`` carrying the
file's scales and zero points.

    from qnt.onnx import import_onnx
    info = import_onnx("model.onnx", "model.mlir", input_shapes={"input": (1, 3, 224, 224)})

See docs/onnx.md for the op table and the QDQ rules.
"""

from .importer import OnnxImportError, import_onnx, to_mlir

__all__ = ["OnnxImportError", "import_onnx", "to_mlir"]
