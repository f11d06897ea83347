//===- QntBase.td - qnt dialect definition -----------------*- tablegen -*-===//

#ifndef QNT_DIALECT_QNT_QNTBASE_TD
#define QNT_DIALECT_QNT_QNTBASE_TD

include "mlir/IR/OpBase.td"

def Qnt_Dialect : Dialect {
  let name = "qnt";
  let cppNamespace = "::qnt";
  let summary = "Quantization stubs, observers and type-polymorphic compute ops";
  let description = [{
    The `qnt` dialect adds what upstream `quant` lacks to model PyTorch-style
    quantization: quantized-region markers (`qnt.quant_stub`,
    `qnt.dequant_stub`), calibration observers (`qnt.observe`), fake
    quantization (`qnt.fake_quant`) and compute ops (`qnt.conv2d`,
    `qnt.linear`, `qnt.add`) that work on float tensors or on tensors of
    upstream `!quant.uniform` types.

    Discardable attribute `qnt.float_in_pytorch` (unit): the PyTorch
    frontend marks the `tosa.matmul` of a linear that is not an `nn.Linear`
    module (`nn.MultiheadAttention`'s projections, `F.linear`, a matmul with
    a parameter) and every op of `nn.MultiheadAttention` (its scores and
    context matmuls, scaling, masks); `qnt-fuse` keeps it on the ops it
    lifts (`qnt.linear`, `qnt.batch_matmul`, `qnt.add`, `qnt.mul`), and
    `qnt-prepare="mode=dynamic"` leaves such a layer in float, as PyTorch
    1.13's `quantize_dynamic` does (and `qnt-prepare`'s
    `float-in-pytorch=true` in static mode, as PyTorch FX does with
    `nn.MultiheadAttention`).

    Discardable attribute `qnt.float_composite` (string, the composite's
    name): the frontend marks the ops of a decomposed layer norm, softmax or
    log_softmax. Quantization treats such a composite as one op computed in
    float between quantized tensors, as PyTorch's quantized layer norm
    does: `qnt-fuse` lifts none of its ops, no unary function reaches into
    it, and `qnt-prepare` observes none of its inner values.

    Discardable attribute `qnt.numerics` (string, on the `builtin.module`):
    whose integer arithmetic the lowering reproduces. `"qnt"` (the default
    when absent) is docs/numerics.md's, PyTorch's; `"onnxruntime"`, which
    `import-onnx` sets on quantized ONNX models, is ONNX Runtime's for the
    three ops where it differs: quantize divides (`rint(x / S)`, the ONNX
    QuantizeLinear definition), conv / linear requantize with ORT's
    multiplier `f32(f32(S_x * S_w) / S_y)`, and a quantized add computes
    MLAS's QLinearAdd (docs/numerics.md, "ONNX Runtime numerics").
  }];
  let dependentDialects = ["::mlir::quant::QuantDialect"];
  let discardableAttrs = (ins "::mlir::UnitAttr":$float_in_pytorch,
                              "::mlir::StringAttr":$float_composite,
                              "::mlir::StringAttr":$numerics);
  let hasOperationAttrVerify = 1;
  let useDefaultAttributePrinterParser = 1;
}

class Qnt_Op<string mnemonic, list<Trait> traits = []>
    : Op<Qnt_Dialect, mnemonic, traits>;

#endif // QNT_DIALECT_QNT_QNTBASE_TD
