//===- QntAttrs.td - qnt enums and attributes --------------*- tablegen -*-===//

#ifndef QNT_DIALECT_QNT_QNTATTRS_TD
#define QNT_DIALECT_QNT_QNTATTRS_TD

include "qnt/Dialect/Qnt/QntBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Qnt_ObserverKind : I32EnumAttr<"ObserverKind", "calibration observer", [
    I32EnumAttrCase<"minmax", 0>,
    I32EnumAttrCase<"per_channel_minmax", 1>,
    I32EnumAttrCase<"moving_average_minmax", 2>,
    I32EnumAttrCase<"moving_average_per_channel_minmax", 3>,
    I32EnumAttrCase<"histogram", 4>,
    I32EnumAttrCase<"percentile", 5>,
    I32EnumAttrCase<"entropy", 6>,
    // PyTorch's FixedQParamsObserver: the parameters are given, not observed.
    I32EnumAttrCase<"fixed_qparams", 7>,
  ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::qnt";
}
def Qnt_ObserverKindAttr : EnumAttr<Qnt_Dialect, Qnt_ObserverKind, "observer"> {
  let assemblyFormat = "`<` $value `>`";
}

def Qnt_ResizeMode : I32EnumAttr<"ResizeMode", "interpolation mode", [
    I32EnumAttrCase<"nearest", 0>,
    I32EnumAttrCase<"bilinear", 1>,
  ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::qnt";
}
def Qnt_ResizeModeAttr : EnumAttr<Qnt_Dialect, Qnt_ResizeMode, "resize_mode"> {
  let assemblyFormat = "`<` $value `>`";
}

def Qnt_QuantDType : I32EnumAttr<"QuantDType", "quantized storage type", [
    I32EnumAttrCase<"u8", 0>,
    I32EnumAttrCase<"s8", 1>,
  ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::qnt";
}

def Qnt_QuantScheme : I32EnumAttr<"QuantScheme", "quantization scheme", [
    I32EnumAttrCase<"affine", 0>,
    I32EnumAttrCase<"symmetric", 1>,
  ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::qnt";
}

def Qnt_Numerics : I32EnumAttr<"Numerics", "integer arithmetic conventions", [
    I32EnumAttrCase<"qnt", 0>,
    I32EnumAttrCase<"onnxruntime", 1>,
  ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::qnt";
}

def Qnt_Activation : I32EnumAttr<"Activation", "fused activation", [
    I32EnumAttrCase<"none", 0>,
    I32EnumAttrCase<"relu", 1>,
    I32EnumAttrCase<"relu6", 2>,
    I32EnumAttrCase<"clamp", 3>,
  ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::qnt";
}
def Qnt_ActivationAttr : EnumAttr<Qnt_Dialect, Qnt_Activation, "activation"> {
  let assemblyFormat = "`<` $value `>`";
}

def Qnt_QSpecAttr : AttrDef<Qnt_Dialect, "QSpec"> {
  let mnemonic = "qspec";
  let summary = "target quantization of an observed tensor";
  let description = [{
    What an observer's statistics become: the storage type, the integer
    range, the scheme, and for per-channel quantization the channel axis.
    PyTorch's `reduce_range` is expressed through the range itself
    (e.g. `u8` with `quant_max = 127`).

    ```mlir
    #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>
    #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>
    #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine, eps = 1.0e-05 : f32>
    ```

    `eps` is the smallest scale (PyTorch's observer `eps`); without it,
    2^-23 (`torch.finfo(torch.float32).eps`), PyTorch's default.
  }];
  let parameters = (ins
    EnumParameter<Qnt_QuantDType>:$dtype,
    "int64_t":$quant_min,
    "int64_t":$quant_max,
    EnumParameter<Qnt_QuantScheme>:$scheme,
    OptionalParameter<"std::optional<int64_t>">:$axis,
    OptionalParameter<"::mlir::FloatAttr">:$eps
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    bool isPerChannel() const { return getAxis().has_value(); }
    bool isSigned() const { return getDtype() == QuantDType::s8; }
    /// The smallest scale: `eps`, or PyTorch's default 2^-23.
    float getEpsOrDefault() const {
      return getEps() ? getEps().getValueAsDouble()
                      : std::numeric_limits<float>::epsilon();
    }
  }];
}

#endif // QNT_DIALECT_QNT_QNTATTRS_TD
