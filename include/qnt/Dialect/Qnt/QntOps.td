//===- QntOps.td - qnt operations --------------------------*- tablegen -*-===//

#ifndef QNT_DIALECT_QNT_QNTOPS_TD
#define QNT_DIALECT_QNT_QNTOPS_TD

include "qnt/Dialect/Qnt/QntBase.td"
include "qnt/Dialect/Qnt/QntAttrs.td"
include "qnt/Dialect/Qnt/QntInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/Dialect/Quant/IR/QuantBase.td"

def Qnt_FloatTensor : TensorOf<[F32]>;
// Float or upstream quantized element types; the verifiers check the rules
// between operands.
def Qnt_Tensor : RankedTensorOf<[F32, quant_QuantizedType, I32, I8]>;

//===----------------------------------------------------------------------===//
// Region markers, observers, fake quantization
//===----------------------------------------------------------------------===//

class Qnt_StubOp<string mnemonic, string what> : Qnt_Op<mnemonic,
    [Pure, SameOperandsAndResultType]> {
  let arguments = (ins Qnt_FloatTensor:$input);
  let results = (outs Qnt_FloatTensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let summary = "marks where the quantized region " # what;
}

def Qnt_QuantStubOp : Qnt_StubOp<"quant_stub", "begins"> {
  let description = [{
    Float identity (PyTorch's `QuantStub`): values that flow from it are
    quantized by `--qnt-prepare`. After `--qnt-convert` it is gone.

    ```mlir
    %0 = qnt.quant_stub %arg0 : tensor<1x28x28x1xf32>
    ```
  }];
}

def Qnt_DequantStubOp : Qnt_StubOp<"dequant_stub", "ends"> {
  let description = [{
    Float identity (PyTorch's `DeQuantStub`): nothing after it is quantized.

    ```mlir
    %1 = qnt.dequant_stub %0 : tensor<1x10xf32>
    ```
  }];
}

def Qnt_ObserveOp : Qnt_Op<"observe", [SameOperandsAndResultType]> {
  let summary = "records statistics of a tensor during calibration";
  let description = [{
    Identity on its input that, when executed (`quant-run --calibrate`),
    accumulates the statistics of its `kind` under its stable `id`.
    `--qnt-fold-calibration` replaces it by a `quant.qcast`/`quant.dcast`
    pair whose parameters follow from the statistics and `qspec`.

    | kind | PyTorch | options (defaults) |
    |---|---|---|
    | `minmax` | MinMaxObserver | |
    | `per_channel_minmax` | PerChannelMinMaxObserver | |
    | `moving_average_minmax` | MovingAverageMinMaxObserver | `averaging_constant` (0.01) |
    | `moving_average_per_channel_minmax` | MovingAveragePerChannelMinMaxObserver | `averaging_constant` (0.01) |
    | `histogram` | HistogramObserver (L2 range search) | `bins` (2048), `upsample_rate` (128) |
    | `percentile` | (histogram, range from percentiles) | `bins`, `upsample_rate`, `percentile` (99.99) |
    | `entropy` | (histogram, KL-divergence threshold) | `bins`, `upsample_rate` |
    | `fixed_qparams` | FixedQParamsObserver (sigmoid, tanh, ...) | `fixed_scale`, `fixed_zero_point` (required) |

    Per-channel kinds need a qspec axis; the others must not have one.

    ```mlir
    %1 = qnt.observe %0 {id = "conv1:in", kind = #qnt.observer<minmax>,
        qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127,
                           scheme = affine>} : tensor<1x28x28x1xf32>
    ```
  }];
  let arguments = (ins Qnt_FloatTensor:$input, StrAttr:$id,
                       Qnt_ObserverKindAttr:$kind, Qnt_QSpecAttr:$qspec,
                       OptionalAttr<F32Attr>:$averaging_constant,
                       OptionalAttr<I64Attr>:$bins,
                       OptionalAttr<I64Attr>:$upsample_rate,
                       OptionalAttr<F32Attr>:$percentile,
                       OptionalAttr<F64Attr>:$fixed_scale,
                       OptionalAttr<I64Attr>:$fixed_zero_point);
  let results = (outs Qnt_FloatTensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
  let builders = [
    OpBuilder<(ins "::mlir::Value":$input, "::llvm::StringRef":$id,
                   "::qnt::ObserverKind":$kind, "::qnt::QSpecAttr":$qspec), [{
      build($_builder, $_state, input, id, kind, qspec,
            /*averaging_constant=*/nullptr, /*bins=*/nullptr,
            /*upsample_rate=*/nullptr, /*percentile=*/nullptr,
            /*fixed_scale=*/nullptr, /*fixed_zero_point=*/nullptr);
    }]>
  ];
  let extraClassDeclaration = [{
    /// Option values with PyTorch's defaults.
    float getAveragingConstantOrDefault() {
      return getAveragingConstant() ? getAveragingConstant()->convertToFloat()
                                    : 0.01f;
    }
    int64_t getBinsOrDefault() { return getBins().value_or(2048); }
    int64_t getUpsampleRateOrDefault() {
      return getUpsampleRate().value_or(128);
    }
    float getPercentileOrDefault() {
      return getPercentile() ? getPercentile()->convertToFloat() : 99.99f;
    }
    /// Whether the kind accumulates a histogram at run time.
    bool isHistogramKind() {
      return getKind() == ObserverKind::histogram ||
             getKind() == ObserverKind::percentile ||
             getKind() == ObserverKind::entropy;
    }
  }];
}

def Qnt_FakeQuantOp : Qnt_Op<"fake_quant", [Pure, SameOperandsAndResultType]> {
  let summary = "quantize then dequantize with fixed parameters";
  let description = [{
    `dequantize(quantize(x))` with the given scale(s) and zero point(s)
    (one each, or one per channel along `qspec`'s axis): PyTorch's
    `FakeQuantize` as exported from quantization-aware training.

    ```mlir
    %1 = qnt.fake_quant %0 {scale = array<f32: 0.05>,
        zero_point = array<i64: 3>,
        qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255,
                           scheme = affine>} : tensor<1x8xf32>
    ```
  }];
  let arguments = (ins Qnt_FloatTensor:$input, DenseF32ArrayAttr:$scale,
                       DenseI64ArrayAttr:$zero_point, Qnt_QSpecAttr:$qspec);
  let results = (outs Qnt_FloatTensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The !quant.uniform element type of these parameters (per axis when
    /// the qspec has an axis), clamping to the qspec's range (what the fake
    /// quantization computes) or to the whole storage range (what PyTorch's
    /// quantized model computes after convert).
    ::mlir::quant::QuantizedType
    getQuantizedElementType(bool clampToQuantRange = true);
  }];
}

//===----------------------------------------------------------------------===//
// Compute ops: float or quantized
//===----------------------------------------------------------------------===//

class Qnt_ComputeOp<string mnemonic, list<Trait> traits = [],
                    list<string> interfaceMethods = []> : Qnt_Op<mnemonic,
    !listconcat(traits, [Pure, DeclareOpInterfaceMethods<
        Qnt_QuantizableOpInterface,
        !listconcat(["getWeightOperand", "getBiasOperand"],
                    interfaceMethods)>])>;

// conv2d and linear: input, weight, optional bias, a fused activation with
// optional clamp bounds, and `dynamic_qspec` when dynamically quantized.
class Qnt_WeightedOp<string mnemonic> : Qnt_ComputeOp<mnemonic, [],
    ["canQuantizeDynamically", "getDynamicQuantization",
     "setDynamicQuantization"]> {
  let extraClassDefinition = [{
    ::llvm::SmallVector<::mlir::OpOperand *> $cppClass::getActivationOperands() {
      return {&getInputMutable()};
    }
    ::mlir::OpOperand *$cppClass::getWeightOperand() {
      return &getWeightMutable();
    }
    ::mlir::OpOperand *$cppClass::getBiasOperand() {
      return getBias() ? &getBiasMutable()[0] : nullptr;
    }
    bool $cppClass::canFuseActivation(::qnt::Activation) { return true; }
    bool $cppClass::canQuantizeDynamically() { return true; }
    ::qnt::QSpecAttr $cppClass::getDynamicQuantization() {
      return getDynamicQspecAttr();
    }
    void $cppClass::setDynamicQuantization(::qnt::QSpecAttr qspec) {
      setDynamicQspecAttr(qspec);
    }
    ::qnt::Activation $cppClass::getFusedActivation() {
      return getActivation();
    }
    std::pair<float, float> $cppClass::getFusedActivationBounds() {
      return getActivationBounds(getActivation(), getClampMinValue(),
                                 getClampMaxValue());
    }
    void $cppClass::setFusedActivation(::qnt::Activation activation,
                                       std::optional<float> clampMin,
                                       std::optional<float> clampMax) {
      ::mlir::Builder b(getContext());
      setActivation(activation);
      setClampMinAttr(clampMin ? b.getF32FloatAttr(*clampMin)
                               : ::mlir::FloatAttr());
      setClampMaxAttr(clampMax ? b.getF32FloatAttr(*clampMax)
                               : ::mlir::FloatAttr());
    }
  }];
  code weightedOpDeclarations = [{
    /// The clamp bounds as floats, if set.
    std::optional<float> getClampMinValue() {
      if (auto v = getClampMin())
        return v->convertToFloat();
      return std::nullopt;
    }
    std::optional<float> getClampMaxValue() {
      if (auto v = getClampMax())
        return v->convertToFloat();
      return std::nullopt;
    }
  }];
  let extraClassDeclaration = weightedOpDeclarations;
}

def Qnt_Conv2DOp : Qnt_WeightedOp<"conv2d"> {
  let summary = "2-D convolution, NHWC input, OHWI weight, fused activation";
  let description = [{
    `output[n, oh, ow, oc] = act(bias[oc] + sum input[n, ih, iw, ic] *
    weight[oc, kh, kw, ic - g * C/groups])` with `pad = [top, bottom, left,
    right]`. All operands float (`f32`), or quantized: input and output
    per-tensor `!quant.uniform`, weight `!quant.uniform` with storage `i8`
    and zero point 0, per tensor or per axis 0, bias `i32` in units of
    `S_input * S_weight[oc]` (or `f32`). `clamp_min`/`clamp_max` are in the
    float domain and required for `activation = clamp`. Or dynamically
    quantized (ONNX Runtime's `DynamicQuantizeLinear` -> `ConvInteger`
    form): f32 input and output, a quantized weight, an f32 bias, and
    `dynamic_qspec` saying how the input is quantized at run time (u8
    [0, 255]); the result is `float(acc) * (S_input * S_weight[oc])`, then
    the bias and the activation.

    ```mlir
    %y = qnt.conv2d %x, %w, %b {activation = #qnt.activation<relu>,
        dilation = array<i64: 1, 1>, groups = 1 : i64,
        pad = array<i64: 1, 1, 1, 1>, stride = array<i64: 1, 1>}
        : (tensor<1x28x28x1xf32>, tensor<8x3x3x1xf32>, tensor<8xf32>)
        -> tensor<1x28x28x8xf32>
    ```
  }];
  let arguments = (ins Qnt_Tensor:$input, Qnt_Tensor:$weight,
                       Optional<Qnt_Tensor>:$bias,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$pad,
                       DenseI64ArrayAttr:$dilation,
                       DefaultValuedAttr<I64Attr, "1">:$groups,
                       DefaultValuedAttr<Qnt_ActivationAttr,
                                         "::qnt::Activation::none">:$activation,
                       OptionalAttr<F32Attr>:$clamp_min,
                       OptionalAttr<F32Attr>:$clamp_max,
                       OptionalAttr<Qnt_QSpecAttr>:$dynamic_qspec);
  let results = (outs Qnt_Tensor:$output);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Qnt_LinearOp : Qnt_WeightedOp<"linear"> {
  let summary = "fully connected layer: input [M, K], weight [N, K]";
  let description = [{
    `output[m, n] = act(bias[n] + sum_k input[m, k] * weight[n, k])`
    (PyTorch's `nn.Linear` weight layout). Float or quantized, with the same
    type rules as `qnt.conv2d` (weight channel axis 0), or dynamically
    quantized (PyTorch's `quantize_dynamic`): f32 input and output, a
    quantized weight, an f32 bias, and `dynamic_qspec` saying how the input
    is quantized at run time (u8, [0, 255], or [0, 127] for reduce_range);
    activation none or relu.

    ```mlir
    %y = qnt.linear %x, %w, %b : (tensor<1x784xf32>, tensor<10x784xf32>,
        tensor<10xf32>) -> tensor<1x10xf32>
    ```
  }];
  let arguments = (ins Qnt_Tensor:$input, Qnt_Tensor:$weight,
                       Optional<Qnt_Tensor>:$bias,
                       DefaultValuedAttr<Qnt_ActivationAttr,
                                         "::qnt::Activation::none">:$activation,
                       OptionalAttr<F32Attr>:$clamp_min,
                       OptionalAttr<F32Attr>:$clamp_max,
                       OptionalAttr<Qnt_QSpecAttr>:$dynamic_qspec);
  let results = (outs Qnt_Tensor:$output);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

// add and mul: two activations, relu the only fused activation.
class Qnt_BinaryOp<string mnemonic> : Qnt_ComputeOp<mnemonic, [Commutative]> {
  let arguments = (ins Qnt_Tensor:$lhs, Qnt_Tensor:$rhs,
                       DefaultValuedAttr<Qnt_ActivationAttr,
                                         "::qnt::Activation::none">:$activation);
  let results = (outs Qnt_Tensor:$output);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDefinition = [{
    ::llvm::SmallVector<::mlir::OpOperand *> $cppClass::getActivationOperands() {
      return {&getLhsMutable(), &getRhsMutable()};
    }
    ::mlir::OpOperand *$cppClass::getWeightOperand() { return nullptr; }
    ::mlir::OpOperand *$cppClass::getBiasOperand() { return nullptr; }
    bool $cppClass::canFuseActivation(::qnt::Activation activation) {
      return activation == ::qnt::Activation::none ||
             activation == ::qnt::Activation::relu;
    }
    ::qnt::Activation $cppClass::getFusedActivation() { return getActivation(); }
    std::pair<float, float> $cppClass::getFusedActivationBounds() {
      return getActivationBounds(getActivation(), std::nullopt, std::nullopt);
    }
    void $cppClass::setFusedActivation(::qnt::Activation activation,
                                       std::optional<float>,
                                       std::optional<float>) {
      setActivation(activation);
    }
  }];
}

def Qnt_AddOp : Qnt_BinaryOp<"add"> {
  let summary = "elementwise addition, optionally followed by relu";
  let description = [{
    `output = act(lhs + rhs)` on operands of one shape; `activation` is
    `none` or `relu`. Quantized: all three per-tensor `!quant.uniform` with
    the same storage type, each with its own scale and zero point.

    ```mlir
    %y = qnt.add %a, %b {activation = #qnt.activation<relu>}
        : (tensor<1x8x8x4xf32>, tensor<1x8x8x4xf32>) -> tensor<1x8x8x4xf32>
    ```
  }];
}

def Qnt_MulOp : Qnt_BinaryOp<"mul"> {
  let summary = "elementwise product of two activations, with broadcasting";
  let description = [{
    `output = act(lhs * rhs)`, where a dimension of size 1 in one operand
    broadcasts against the other (squeeze-excite: `[N, H, W, C] * [N, 1, 1,
    C]`); `activation` is `none` or `relu`. Quantized: all three per-tensor
    `!quant.uniform` with one storage type, computed as
    `clamp(rint(dq(a) * dq(b) * f32(1 / S_out)) + Z_out)` with
    `dq(q) = f32(q - Z) * S` (PyTorch's vectorized `quantized::mul`). Multiplying by a constant is not this op:
    it is part of a unary function (`qnt.table`).

    ```mlir
    %y = qnt.mul %x, %s : (tensor<1x8x8x4xf32>, tensor<1x1x1x4xf32>)
        -> tensor<1x8x8x4xf32>
    ```
  }];
}

def Qnt_BatchMatmulOp : Qnt_ComputeOp<"batch_matmul"> {
  let summary = "batched matmul of two activations: [B, M, K] x [B, K, N]";
  let description = [{
    `output[i, m, n] = sum_k lhs[i, m, k] * rhs[i, k, n]`, or with
    `transpose_b` (rhs [B, N, K]) `sum_k lhs[i, m, k] * rhs[i, n, k]`:
    attention's scores `q k^T` and context `p v`, which `--qnt-fuse` lifts
    from `tosa.matmul` of two computed tensors. All operands f32, or all
    three per-tensor `!quant.uniform` of one 8-bit storage type, each with
    its own scale and zero point, computed with an exact integer
    accumulator as
    `clamp(rint(f32(sum (a - Z_a) * (b - Z_b)) * M) + Z_out)` with
    `M = f32(S_a * S_b / S_out)` (PyTorch's `quantized::matmul`
    dequantizes and multiplies in float: within 1 LSB of this).

    ```mlir
    %s = qnt.batch_matmul %q, %k {transpose_b}
        : (tensor<12x16x8xf32>, tensor<12x16x8xf32>) -> tensor<12x16x16xf32>
    ```
  }];
  let arguments = (ins Qnt_Tensor:$lhs, Qnt_Tensor:$rhs,
                       UnitAttr:$transpose_b);
  let results = (outs Qnt_Tensor:$output);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDefinition = [{
    ::llvm::SmallVector<::mlir::OpOperand *> $cppClass::getActivationOperands() {
      return {&getLhsMutable(), &getRhsMutable()};
    }
    ::mlir::OpOperand *$cppClass::getWeightOperand() { return nullptr; }
    ::mlir::OpOperand *$cppClass::getBiasOperand() { return nullptr; }
    bool $cppClass::canFuseActivation(::qnt::Activation activation) {
      return activation == ::qnt::Activation::none;
    }
    ::qnt::Activation $cppClass::getFusedActivation() {
      return ::qnt::Activation::none;
    }
    std::pair<float, float> $cppClass::getFusedActivationBounds() {
      return getActivationBounds(::qnt::Activation::none, std::nullopt,
                                 std::nullopt);
    }
    void $cppClass::setFusedActivation(::qnt::Activation activation,
                                       std::optional<float>,
                                       std::optional<float>) {
      assert(activation == ::qnt::Activation::none &&
             "batch_matmul fuses no activation");
      (void)activation;
    }
  }];
}

//===----------------------------------------------------------------------===//
// Integer-only forms made by --qnt-convert
//===----------------------------------------------------------------------===//

def Qnt_TableOp : Qnt_Op<"table", [Pure, SameOperandsAndResultShape]> {
  let summary = "8-bit to 8-bit lookup: any unary function on quantized values";
  let description = [{
    `output[i] = table[input[i] - qmin]`, with `qmin` the storage minimum of
    the input type (0 for u8, -128 for s8): 256 entries in the result's
    storage type. `--qnt-convert` computes the table at compile time from
    `quantize_out(f(dequantize_in(q)))` for every `q` (docs/numerics.md),
    for sigmoid, tanh, hardswish, SiLU, GELU, relu/clamp, arithmetic with
    constants, and requantization to other parameters.

    ```mlir
    %y = qnt.table %x {table = array<i8: 0, 1, ...>}
        : tensor<1x8x!quant.uniform<u8:f32, 0.1:128>>
        -> tensor<1x8x!quant.uniform<u8:f32, 3.90625E-3>>
    ```
  }];
  let arguments = (ins Qnt_Tensor:$input, DenseI8ArrayAttr:$table);
  let results = (outs Qnt_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
  let hasVerifier = 1;
}

def Qnt_BatchNormOp : Qnt_Op<"batch_norm", [Pure, SameOperandsAndResultShape]> {
  let summary = "per-channel affine map of quantized values, with a clamp";
  let description = [{
    `y = clamp(scale[c] * x + shift[c], clamp_min, clamp_max)` in the float
    domain, `c` the index of the last dimension: a batch-norm that no conv
    precedes (PyTorch's `quantized::batch_norm2d(_relu)`), made by
    `--qnt-convert` from the exported multiply and add. On the integers:
    `clamp(rint(f32(q - Z_in) * f32(S_in * scale[c] / S_out) +
    f32(shift[c] / S_out)) + Z_out)`.

    ```mlir
    %y = qnt.batch_norm %x {scale = array<f32: 0.5, 2.0>,
        shift = array<f32: 0.1, -0.2>, clamp_min = 0.0 : f32}
        : tensor<1x4x4x2x!quant.uniform<u8:f32, 0.1:3>>
        -> tensor<1x4x4x2x!quant.uniform<u8:f32, 0.05>>
    ```
  }];
  let arguments = (ins Qnt_Tensor:$input, DenseF32ArrayAttr:$scale,
                       DenseF32ArrayAttr:$shift,
                       OptionalAttr<F32Attr>:$clamp_min,
                       OptionalAttr<F32Attr>:$clamp_max);
  let results = (outs Qnt_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
  let hasVerifier = 1;
}

def Qnt_AvgPool2DOp : Qnt_Op<"avg_pool2d", [Pure]> {
  let summary = "average pooling on quantized NHWC tensors, no padding";
  let description = [{
    `output = clamp(Z_out + rint(f32(sum(q) - Z_in * kh * kw) * f32(S_in /
    (S_out * kh * kw))))` over each `kernel` window, moved by `stride`
    (PyTorch's quantized average pooling; global pooling and `mean` over H, W
    are the window of the whole image). Input and output per-tensor
    `!quant.uniform` with one storage type.

    ```mlir
    %y = qnt.avg_pool2d %x {kernel = array<i64: 7, 7>,
        stride = array<i64: 7, 7>}
        : tensor<1x7x7x8x!quant.uniform<u8:f32, 0.1:3>>
        -> tensor<1x1x1x8x!quant.uniform<u8:f32, 0.1:3>>
    ```
  }];
  let arguments = (ins Qnt_Tensor:$input, DenseI64ArrayAttr:$kernel,
                       DenseI64ArrayAttr:$stride);
  let results = (outs Qnt_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
  let hasVerifier = 1;
}

def Qnt_ResizeOp : Qnt_Op<"resize", [Pure]> {
  let summary = "nearest or bilinear resizing of quantized NHWC tensors";
  let description = [{
    PyTorch's quantized `upsample_nearest2d` / `upsample_bilinear2d`
    (`F.interpolate`, `nn.Upsample`): the result has the input's parameters.
    `scale` is the source step per result pixel along H and W, in f32 as
    PyTorch computes it: `in / out`, `1 / scale_factor` when the model gave
    one, or `(in - 1) / (out - 1)` with `align_corners`.

    * `nearest`: `y[oy, ox] = x[min(floor(oy * scale_h), H - 1), ...]`.
    * `bilinear`: source `s = scale * (o + 0.5) - 0.5` (at least 0), or
      `scale * o` with `align_corners`; `i = int(s)`, `l1 = s - i`,
      `l0 = 1 - l1`, `i1 = min(i + 1, H - 1)`; then, in f32,
      `r = l0h * (l0w * q[i, j] + l1w * q[i, j1]) + l1h * (l0w * q[i1, j] +
      l1w * q[i1, j1]) - Z` and `y = clamp(rint(r) + Z)`.

    ```mlir
    %y = qnt.resize %x {mode = #qnt.resize_mode<bilinear>,
        align_corners = false, scale = array<f32: 0.5, 0.5>}
        : tensor<1x4x4x8x!quant.uniform<u8:f32, 0.1:3>>
        -> tensor<1x8x8x8x!quant.uniform<u8:f32, 0.1:3>>
    ```
  }];
  let arguments = (ins Qnt_Tensor:$input, Qnt_ResizeModeAttr:$mode,
                       BoolAttr:$align_corners, DenseF32ArrayAttr:$scale);
  let results = (outs Qnt_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
  let hasVerifier = 1;
}

#endif // QNT_DIALECT_QNT_QNTOPS_TD
