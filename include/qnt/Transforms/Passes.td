//===- Passes.td - qnt transformation passes ---------------*- tablegen -*-===//

#ifndef QNT_TRANSFORMS_PASSES_TD
#define QNT_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def QntFusePass : Pass<"qnt-fuse", "mlir::func::FuncOp"> {
  let summary = "Fold batch-norm into conv/linear, absorb activations, lift "
                "TOSA conv/matmul into qnt compute ops";
  let description = [{
    Lifts `tosa.conv2d` and `tosa.depthwise_conv2d` into `qnt.conv2d`, the
    reshape -> `tosa.matmul` (constant weight) -> reshape form of a linear
    layer into `qnt.linear`, the `tosa.matmul` of two computed tensors
    (attention's scores and context) into `qnt.batch_matmul` (a transpose
    of its right operand's last two dimensions becomes `transpose_b`), the
    `tosa.add` of two computed tensors of one shape (a residual connection)
    into `qnt.add` and their `tosa.mul` into `qnt.mul`.
    Then folds a following per-channel `tosa.mul` by a constant (batch-norm
    scale) into the weights and bias, a following per-channel `tosa.add` of
    a constant (batch-norm shift, linear bias) into the bias, and absorbs a
    following `tosa.clamp` as relu, relu6 or clamp. A rewrite fires only
    when the compute op's result has that single use.

    Before:
    ```mlir
    %c = tosa.conv2d %x, %w, %b, %zp, %zp {...} : ... -> tensor<1x28x28x8xf32>
    %m = tosa.mul %c, %scale, %shift : ...
    %a = tosa.add %m, %beta : ...
    %r = tosa.clamp %a {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : ...
    ```
    After:
    ```mlir
    %r = qnt.conv2d %x, %w2, %b2 {activation = #qnt.activation<relu>, ...}
    ```
  }];
  let dependentDialects = ["::qnt::QntDialect", "::mlir::tosa::TosaDialect",
                           "::mlir::arith::ArithDialect"];
}

def QntPreparePass : Pass<"qnt-prepare", "mlir::func::FuncOp"> {
  let summary = "Insert observers on every edge to be quantized";
  let description = [{
    For every compute op in the quantized region (the values that flow from
    a `qnt.quant_stub` without passing a `qnt.dequant_stub`; the whole
    function when it has no stubs), inserts `qnt.observe` on its activation
    inputs, its weight and its result, with the observer kinds and qspecs of
    a qconfig preset mirroring PyTorch 1.13's `get_default_qconfig`:

    | qconfig        | activations                     | weights                                    |
    |----------------|---------------------------------|--------------------------------------------|
    | `x86`,`fbgemm` | histogram, u8 [0, 127] affine   | per-channel min-max, s8 [-128, 127] sym.   |
    | `onednn`       | histogram, u8 [0, 255] affine   | per-channel min-max, s8 [-128, 127] sym.   |
    | `qnnpack`      | histogram, u8 [0, 255] affine   | min-max, s8 [-128, 127] symmetric          |
    | `xnnpack`      | histogram, s8 [-128, 127] affine| per-channel min-max, s8 [-127, 127] sym.   |

    `mode=dynamic` is PyTorch's dynamic quantization (`quantize_dynamic`
    with its default qconfig): only linear layers, only their weights
    observed, per-tensor symmetric s8 (quantized by
    `--qnt-fold-calibration`, which needs no statistics for constants);
    each gets `dynamic_qspec`, the u8 range its input is quantized to at
    run time ([0, 127] on x86/fbgemm, reduce_range as PyTorch does, else
    [0, 255]). `dynamic-per-channel` gives the weights per-channel
    symmetric s8 instead (PyTorch's `per_channel_dynamic_qconfig`). A
    linear the frontend marks `qnt.float_in_pytorch` (one that is not an
    `nn.Linear` module: `nn.MultiheadAttention`'s projections, `F.linear`,
    a matmul with a parameter) stays float, as `quantize_dynamic` leaves
    it, unless `dynamic-all-linears`. A linear or conv2d whose weight
    already has a `qnt.fake_quant` (ONNX Runtime's MatMulInteger or
    ConvInteger weight, imported) is quantized dynamically and keeps the
    weight's parameters, and under `qnt.numerics = "onnxruntime"` the input's
    range is DynamicQuantizeLinear's u8 [0, 255] whatever the qconfig.

    `activation-observer` replaces the activation observer kind everywhere.
    Selectors pick ops by op name (`qnt.linear`), location name (`conv1`) or
    module-path prefix (`layer1` selects `layer1.0.conv1`): `exclude` keeps
    the selected ops in float, `override=SELECTOR=QCONFIG` gives them another
    preset (the first matching override wins).

    An input made by same-scale ops (`SameScaleOpInterface`: max pooling,
    reshape, transpose, slice) from an observed value shares that value's
    observer, as PyTorch shares their quantization parameters.

    The other ops of the region follow PyTorch 1.13 FX's rules
    (docs/numerics.md, "Ops without weights"): a unary function of one
    activation (a chain of elementwise ops and constants: hardswish, SiLU,
    GELU, arithmetic with constants) gets one observer on its result;
    sigmoid and hardsigmoid get the fixed parameters (1/256, 0) (s8: -128)
    and tanh (2/256, 128) (s8: 0) (a `fixed_qparams` observer); relu, relu6,
    clamp, average pooling, constant padding and resizing share their
    input's parameters. A concatenation's inputs and result share one
    observer (one id at every site, FX's `OUTPUT_SHARE_OBSERVER_WITH_INPUT`
    for `torch.cat`), so densenet's dense blocks get one set of parameters
    and no requantization; `cat-observer=own` observes the result alone and
    requantizes the inputs to it (PyTorch's eager `FloatFunctional.cat`).
    `float-functions=silu,gelu` leaves those functions in float, as PyTorch
    1.13 does.

    A float composite (the ops of a decomposed layer norm, softmax or
    log_softmax, marked `qnt.float_composite` by the frontend) is one float
    op: none of its inner values is observed, so it computes in float
    between the quantized tensors around it, as PyTorch's quantized layer
    norm does (int8 in and out). `float-in-pytorch=true` also keeps in float
    the ops marked `qnt.float_in_pytorch` (all of `nn.MultiheadAttention`:
    projections, scaling, scores and context, which PyTorch FX runs in
    float: the module is a leaf it does not quantize).
    Otherwise the attention matmuls are INT8 (`qnt.batch_matmul`, both
    operands observed), as FX quantizes a `torch.matmul` of activations.

    Observer ids are stable: `<location name>:<role>` (`conv1:in`,
    `conv1:w`, `conv1:out`), numbered where names are missing or repeat.

    ```mlir
    %o = qnt.observe %x {id = "conv1:in", kind = #qnt.observer<histogram>,
        qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127,
                           scheme = affine>} : tensor<1x28x28x1xf32>
    ```
  }];
  let options = [
    Option<"qconfig", "qconfig", "std::string", /*default=*/"\"x86\"",
           "Quantization preset: x86, fbgemm, onednn, qnnpack or xnnpack">,
    Option<"mode", "mode", "std::string", /*default=*/"\"static\"",
           "static (observe activations for calibration) or dynamic "
           "(quantize linear layers' activations at run time)">,
    Option<"activationObserver", "activation-observer", "std::string",
           /*default=*/"\"\"",
           "Activation observer kind instead of the preset's (minmax, "
           "moving_average_minmax, histogram, percentile, entropy)">,
    ListOption<"exclude", "exclude", "std::string",
               "Ops to keep in float (op names, location names or "
               "module-path prefixes)">,
    ListOption<"overrides", "override", "std::string",
               "SELECTOR=QCONFIG: another preset for the selected ops">,
    ListOption<"floatFunctions", "float-functions", "std::string",
               "Unary functions to keep in float (silu, gelu: what PyTorch "
               "1.13 FX leaves in float)">,
    Option<"dynamicPerChannel", "dynamic-per-channel", "bool",
           /*default=*/"false",
           "mode=dynamic: per-channel symmetric s8 weights "
           "(per_channel_dynamic_qconfig) instead of per-tensor">,
    Option<"dynamicAllLinears", "dynamic-all-linears", "bool",
           /*default=*/"false",
           "mode=dynamic: also quantize the linears marked "
           "qnt.float_in_pytorch (attention projections), which PyTorch's "
           "quantize_dynamic leaves in float">,
    Option<"floatInPytorch", "float-in-pytorch", "bool", /*default=*/"false",
           "mode=static: keep in float the ops marked "
           "qnt.float_in_pytorch (all of nn.MultiheadAttention), as "
           "PyTorch 1.13 FX does">,
    Option<"catObserver", "cat-observer", "std::string",
           /*default=*/"\"shared\"",
           "shared (a concatenation's inputs and result share one observer, "
           "PyTorch 1.13 FX) or own (the result has its own, PyTorch eager "
           "FloatFunctional.cat)">,
  ];
  let dependentDialects = ["::qnt::QntDialect"];
}

def QntFoldCalibrationPass : Pass<"qnt-fold-calibration", "mlir::ModuleOp"> {
  let summary = "Replace observers by quant.qcast/dcast pairs using "
                "calibration statistics";
  let description = [{
    Reads the statistics file written by `quant-run --calibrate`
    (docs/calibration.md), computes scale and zero point exactly as
    PyTorch's MinMaxObserver / PerChannelMinMaxObserver do
    (docs/numerics.md), and replaces each `qnt.observe` by
    `quant.qcast` + `quant.dcast` with the resulting `!quant.uniform` type.
    Observers of constants (weights) take their range from the constant
    itself and need no statistics.

    As in PyTorch, the qspec's quant_min / quant_max (e.g. reduce_range's
    u8 [0, 127]) shape the scale and zero point, while the type clamps to
    the whole storage range (u8 [0, 255]). `clamp-to-quant-range` clamps to
    [quant_min, quant_max] instead: x86's activations then stay 7-bit, which
    keeps oneDNN's fast kernels exact on AVX2 CPUs without VNNI (8-bit
    activations take the exact reference kernel there).

    ```mlir
    %1 = quant.qcast %0 : tensor<1x8xf32> to tensor<1x8x!quant.uniform<u8:f32, 0.0236:12>>
    %2 = quant.dcast %1 : tensor<1x8x!quant.uniform<u8:f32, 0.0236:12>> to tensor<1x8xf32>
    ```
  }];
  let options = [
    Option<"statsFile", "stats", "std::string", /*default=*/"",
           "Statistics file (JSON) written by quant-run --calibrate">,
    Option<"clampToQuantRange", "clamp-to-quant-range", "bool",
           /*default=*/"false",
           "Clamp to the qspec's [quant_min, quant_max] instead of the "
           "storage range PyTorch clamps to">,
  ];
  let dependentDialects = ["::mlir::quant::QuantDialect"];
}

def QntFoldFakeQuantPass : Pass<"qnt-fold-fake-quant", "mlir::func::FuncOp"> {
  let summary = "Turn qnt.fake_quant (learned in quantization-aware "
                "training) into quant.qcast/quant.dcast pairs";
  let description = [{
    Each `qnt.fake_quant` becomes `quant.qcast` + `quant.dcast` with the
    `!quant.uniform` type of its own scale(s) and zero point(s) (per axis
    when the qspec has an axis): the QDQ form that `--qnt-convert`
    consumes, with the parameters training learned, never recomputed by
    calibration. As PyTorch's `convert` does, the type clamps to the whole
    storage range (a reduce_range fake quant clamped to [0, 127] in
    training; the quantized model keeps u8's [0, 255]);
    `clamp-to-quant-range` keeps the qspec's range.

    ```mlir
    %1 = qnt.fake_quant %0 {scale = array<f32: 0.05>, zero_point = array<i64: 3>,
        qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255,
                           scheme = affine>} : tensor<1x8xf32>
    // becomes
    %q = quant.qcast %0 : tensor<1x8xf32> to tensor<1x8x!quant.uniform<u8:f32, 0.05:3>>
    %1 = quant.dcast %q : tensor<1x8x!quant.uniform<u8:f32, 0.05:3>> to tensor<1x8xf32>
    ```
  }];
  let options = [
    Option<"clampToQuantRange", "clamp-to-quant-range", "bool",
           /*default=*/"false",
           "Clamp to the qspec's [quant_min, quant_max] instead of the "
           "storage range PyTorch's quantized model clamps to">,
  ];
  let dependentDialects = ["::mlir::quant::QuantDialect"];
}

def QntPerChannelPass : Pass<"qnt-per-channel", "mlir::func::FuncOp"> {
  let summary = "Quantize weights per output channel where the backend "
                "supports it, per tensor where it does not";
  let description = [{
    Works on the QDQ form (after `--qnt-fold-calibration`, before
    `--qnt-convert`). For every compute op whose weight is
    `quant.dcast(quant.qcast(constant))`, recomputes the weight's
    quantization from the constant: per axis (the op's output-channel axis,
    from `QuantizableOpInterface`) when the backend has per-channel kernels
    for the op, per tensor when it does not, keeping the storage range and
    the symmetric scheme. Bias scales and requantization multipliers follow
    from the new weight scales in `--qnt-convert` and the lowering.

    | backend   | conv2d      | linear                         |
    |-----------|-------------|--------------------------------|
    | `onednn`  | per channel | per channel                    |
    | `xnnpack` | per channel | per tensor (no per-channel FC) |

    ```mlir
    %q = quant.qcast %w : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32, 0.02>>
    // becomes
    %q = quant.qcast %w : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32:0, {0.01, 0.02}>>
    ```
  }];
  let options = [
    Option<"backend", "backend", "std::string", /*default=*/"\"onednn\"",
           "Target backend: onednn or xnnpack">,
  ];
  let dependentDialects = ["::mlir::quant::QuantDialect"];
}

def QntExposeActivationsPass
    : Pass<"qnt-expose-activations", "mlir::func::FuncOp"> {
  let summary = "Return every compute op's result from the function, for "
                "per-layer comparisons";
  let description = [{
    Appends the result of every qnt compute op (`qnt.conv2d`, `qnt.linear`,
    `qnt.add`) to the function's results, dequantized to f32 when it is
    quantized, and names it with the result attribute `qnt.name` (the op's
    location name, e.g. `layer1.0.conv1`, or `op<N>` for the N-th compute
    op in program order).
    `quant-run` writes named results under those names, so the FP32 model
    and the INT8 model can be compared layer by layer
    (`python -m qnt compare`).

    ```mlir
    func.func @main(%x: tensor<1x4xf32>) -> (tensor<1x2xf32>, tensor<1x2xf32> {qnt.name = "fc"})
    ```
  }];
  let dependentDialects = ["::mlir::quant::QuantDialect"];
}

def QntSetNumericsPass : Pass<"qnt-set-numerics", "mlir::ModuleOp"> {
  let summary = "Choose whose integer arithmetic the module lowers to";
  let description = [{
    Sets the module's `qnt.numerics` attribute (see the dialect): `qnt`
    (docs/numerics.md, PyTorch's arithmetic) or `onnxruntime` (ONNX
    Runtime's quantize, requantization multipliers and QLinearAdd, the
    choice of `import-onnx` for quantized files). A module quantized by qnt
    and meant to run on ONNX Runtime too sets `onnxruntime` before it is
    compiled: quant-run's integers are then ORT's on the exported file.

    ```mlir
    module attributes {qnt.numerics = "onnxruntime"} { ... }
    ```
  }];
  let options = [
    Option<"numerics", "numerics", "std::string", /*default=*/"",
           "qnt or onnxruntime">,
  ];
  let dependentDialects = ["::qnt::QntDialect"];
}

def QntConvertPass : Pass<"qnt-convert", "mlir::func::FuncOp"> {
  let summary = "Rewrite dcast -> float compute op -> qcast into the "
                "quantized compute op";
  let description = [{
    For each compute op whose activations come from `quant.dcast`, whose
    weight is a quantized constant and whose result goes to a single
    `quant.qcast`, builds the op on quantized types: the weight becomes an
    `i8` constant (`quant.scast` to its quantized type), the bias an `i32`
    constant `round_half_even(b / (S_in * S_w[c]))`. Same-scale ops
    (max pooling, reshape, transpose, slice) on a dequantized value run on
    the quantized value instead, the dequantization moving after them.
    Ops without weights get integer forms (docs/numerics.md): a unary
    function of an 8-bit value (sigmoid, tanh, hardswish, SiLU, GELU,
    relu/clamp, arithmetic with constants) becomes `qnt.table`, computed
    here from dequantize -> f -> quantize; a concatenation runs on the
    quantized inputs, each requantized to the result's parameters (a
    table); average pooling without padding becomes `qnt.avg_pool2d`.
    A `quant.qcast` of a `quant.dcast` back to the same 8-bit type (QDQ
    models write one where two ops' QuantizeLinear have equal parameters)
    is the value itself and is removed.
    `report-float` emits a remark on each op left in float and why.
    Region markers (`qnt.quant_stub`, `qnt.dequant_stub`) are removed.

    Before:
    ```mlir
    %x = quant.dcast %xq : ... to tensor<1x4xf32>
    %y = qnt.linear %x, %w, %b : ...
    %yq = quant.qcast %y : tensor<1x2xf32> to tensor<1x2x!quant.uniform<u8:f32, 0.1:3>>
    ```
    After:
    ```mlir
    %yq = qnt.linear %xq, %wq, %bq : (tensor<1x4x!quant.uniform<...>>, ...)
    ```
  }];
  let options = [
    Option<"reportFloat", "report-float", "bool", /*default=*/"false",
           "Emit a remark on every op that still runs in float on "
           "dequantized values, with the reason">,
  ];
  let dependentDialects = ["::qnt::QntDialect",
                           "::mlir::quant::QuantDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::tosa::TosaDialect"];
}

#endif // QNT_TRANSFORMS_PASSES_TD
