//===- QntInterfaces.td - qnt op interfaces ----------------*- tablegen -*-===//

#ifndef QNT_DIALECT_QNT_QNTINTERFACES_TD
#define QNT_DIALECT_QNT_QNTINTERFACES_TD

include "mlir/IR/OpBase.td"

def Qnt_QuantizableOpInterface : OpInterface<"QuantizableOpInterface"> {
  let cppNamespace = "::qnt";
  let description = [{
    A compute op that has a float and a quantized form. It tells the passes
    which operands are activations (observed and quantized per tensor),
    which is the weight (quantized symmetric, possibly per channel, along
    which axis) and which is the bias (int32 in units of
    S_input * S_weight[c] once quantized), and carries the fused activation.
    An op with a weight may also be dynamically quantized (`dynamic_qspec`):
    only its weight is quantized ahead of time.
  }];
  let methods = [
    InterfaceMethod<"Operands that carry activations.",
      "::llvm::SmallVector<::mlir::OpOperand *>", "getActivationOperands">,
    InterfaceMethod<"The weight operand, or null.",
      "::mlir::OpOperand *", "getWeightOperand", (ins), [{}], [{
        return nullptr;
      }]>,
    InterfaceMethod<"Axis of the weight that indexes output channels.",
      "int64_t", "getWeightChannelAxis", (ins), [{}], [{ return 0; }]>,
    InterfaceMethod<"The bias operand, or null.",
      "::mlir::OpOperand *", "getBiasOperand", (ins), [{}], [{
        return nullptr;
      }]>,
    InterfaceMethod<"Axis of the result that indexes output channels.",
      "int64_t", "getResultChannelAxis", (ins), [{}], [{
        return ::llvm::cast<::mlir::ShapedType>(
            $_op->getResult(0).getType()).getRank() - 1;
      }]>,
    InterfaceMethod<"Whether `activation` may be fused into this op.",
      "bool", "canFuseActivation", (ins "::qnt::Activation":$activation)>,
    InterfaceMethod<"The fused activation.",
      "::qnt::Activation", "getFusedActivation">,
    InterfaceMethod<"Float bounds of the fused activation (-inf/inf when "
                    "open).",
      "std::pair<float, float>", "getFusedActivationBounds">,
    InterfaceMethod<"Sets the fused activation (bounds only for clamp).",
      "void", "setFusedActivation", (ins "::qnt::Activation":$activation,
                                         "std::optional<float>":$clampMin,
                                         "std::optional<float>":$clampMax)>,
    InterfaceMethod<"Whether the op may be quantized dynamically: its float "
                    "input quantized per call, its weight quantized, its "
                    "result float.",
      "bool", "canQuantizeDynamically", (ins), [{}], [{ return false; }]>,
    InterfaceMethod<"The u8 range the float input is quantized to per call "
                    "when the op is dynamically quantized, else null.",
      "::qnt::QSpecAttr", "getDynamicQuantization", (ins), [{}], [{
        return {};
      }]>,
    InterfaceMethod<"Makes the op dynamically quantized with this input "
                    "range (only if canQuantizeDynamically()).",
      "void", "setDynamicQuantization", (ins "::qnt::QSpecAttr":$qspec),
      [{}], [{
        llvm_unreachable("the op cannot be quantized dynamically");
      }]>,
  ];
}

def Qnt_SameScaleOpInterface : OpInterface<"SameScaleOpInterface"> {
  let cppNamespace = "::qnt";
  let description = [{
    An op that only moves or selects the values of one operand (max pooling,
    reshape, transpose, slice): on a quantized operand it runs on the
    quantized values, and its result has the operand's scale and zero
    point. PyTorch shares the quantization parameters across such ops; so
    does qnt (`--qnt-prepare` observes the source only, `--qnt-convert`
    moves the dequantization after the op). Attached to upstream TOSA ops as
    external models (`qnt::registerAllDialects`).
  }];
  let methods = [
    InterfaceMethod<"The operand whose values the result carries.",
      "::mlir::OpOperand &", "getSameScaleOperand">,
  ];
}

def Qnt_ScalarFunctionOpInterface : OpInterface<"ScalarFunctionOpInterface"> {
  let cppNamespace = "::qnt";
  let description = [{
    An elementwise float op whose result at each element is a function of
    its operands' values at that element (TOSA add, mul, clamp, sigmoid,
    tanh, erf, ...). Chains of them on one activation and constants form
    one unary function of that activation (hardswish is four TOSA ops):
    `--qnt-prepare` observes the function's result once, and
    `--qnt-convert` tabulates it for the 256 values of an 8-bit input
    (`qnt.table`). Attached to upstream TOSA ops as external models
    (`qnt::registerAllDialects`).
  }];
  let methods = [
    InterfaceMethod<"Operands that `evaluateScalar` takes, in order "
                    "(without shift or zero-point operands).",
      "::llvm::SmallVector<::mlir::Value>", "getScalarOperands", (ins), [{}],
      [{ return ::llvm::SmallVector<::mlir::Value>($_op->getOperands()); }]>,
    InterfaceMethod<"Whether this instance is such a function (a float "
                    "clamp, a multiply without shift).",
      "bool", "isScalarFunction", (ins), [{}], [{ return true; }]>,
    InterfaceMethod<"The result for these operand values, in f32 as the "
                    "float lowering computes it.",
      "float", "evaluateScalar", (ins "::llvm::ArrayRef<float>":$operands)>,
  ];
}

#endif // QNT_DIALECT_QNT_QNTINTERFACES_TD
