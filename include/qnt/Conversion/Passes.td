//===- Passes.td - qnt conversion passes -------------------*- tablegen -*-===//

#ifndef QNT_CONVERSION_PASSES_TD
#define QNT_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def QntLowerToRuntimePass : Pass<"qnt-lower-to-runtime", "mlir::ModuleOp"> {
  let summary = "Lower qnt compute ops, observers and quant casts to calls "
                "into the qnt runtime";
  let description = [{
    Every `qnt.conv2d`, `qnt.linear`, `qnt.add`, `qnt.observe`,
    `qnt.fake_quant`, `quant.qcast` and `quant.dcast` becomes a call to the
    C runtime (`runtime/include/qnt/Runtime.h`), float or quantized, and so
    do f32 `tosa.max_pool2d` / `tosa.avg_pool2d` (oneDNN pooling instead
    of the scalar loops of the upstream lowering). Each
    call site gets a private handle global: the runtime creates the kernel
    (weights reordered/prepacked) on the first call and reuses it after.
    Kernel parameters (shapes, zero points, integer clamp bounds,
    requantization multipliers `S_in * S_w[c] / S_out`) are computed here and
    passed as constant arrays. Quantized tensors become tensors of their
    storage type; tensor operands reach the runtime as raw pointers via
    `bufferization.to_buffer`.

    `backend=` picks the kernel library per call site (the last field of
    the parameter array, `qnt_rt_backend`): `onednn` everywhere, `xnnpack`
    for quantized conv2d / linear / add / max pooling (float kernels stay
    on oneDNN), or `auto`, which takes XNNPACK where it measured faster on
    x86 (docs/runtime.md). The runtime falls back to oneDNN where XNNPACK
    rejects a kernel's parameters.

    ```mlir
    func.call @qnt_rt_conv2d(%handle, %params, %fparams, %src, %w, %b, %dst)
        : (!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr,
           !llvm.ptr) -> ()
    ```
  }];
  let options = [
    Option<"backend", "backend", "std::string", /*default=*/"\"onednn\"",
           "Kernel library: onednn, xnnpack (quantized conv2d, linear, add "
           "and max pooling on XNNPACK) or auto (per call site, the faster "
           "of the two)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::bufferization::BufferizationDialect",
    "::mlir::func::FuncDialect", "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect", "::mlir::tensor::TensorDialect",
    "::mlir::tosa::TosaDialect"];
}

def QntLowerToLinalgPass : Pass<"qnt-lower-to-linalg", "mlir::func::FuncOp"> {
  let summary = "Generate integer code for the quantized ops without library "
                "kernels";
  let description = [{
    The integer codegen of qnt: `qnt.table`, quantized `qnt.mul`,
    `qnt.add`, `qnt.avg_pool2d`, `qnt.batch_norm` (and float `qnt.mul`)
    become `linalg.generic` ops on
    the storage integers with `arith` / `math` bodies, and a quantized
    `tosa.concat` `tensor.insert_slice`s into one result (so its inputs
    are written in place), between `quant.scast`s, with the arithmetic of docs/numerics.md: a table is a
    `tensor.extract` from a 256-entry constant, requantization is
    `clamp(rint(x * M) + Z)` in f32. Upstream passes then fuse chains of
    them into one loop nest (`--qnt-lower-to-llvm`) and LLVM vectorizes
    them, for x86-64 and AArch64 alike. Run before `qnt-lower-to-runtime`
    (which lowers what the kernel libraries do: conv2d, linear, add,
    pooling, quantize / dequantize).

    Before:
    ```mlir
    %y = qnt.table %x {table = array<i8: ...>}
        : tensor<1x8x!quant.uniform<u8:f32, 0.1:3>> -> tensor<1x8x!quant.uniform<u8:f32, 3.90625E-3>>
    ```
    After:
    ```mlir
    %s = quant.scast %x : tensor<1x8x!quant.uniform<u8:f32, 0.1:3>> to tensor<1x8xi8>
    %t = arith.constant dense<[...]> : tensor<256xi8>
    %r = linalg.generic {...} ins(%s : tensor<1x8xi8>) outs(%e : tensor<1x8xi8>) {
    ^bb0(%in: i8, %out: i8):
      %i = arith.extui %in : i8 to i32
      %j = arith.index_cast %i : i32 to index
      %v = tensor.extract %t[%j] : tensor<256xi8>
      linalg.yield %v : i8
    } -> tensor<1x8xi8>
    %y = quant.scast %r : tensor<1x8xi8> to tensor<1x8x!quant.uniform<u8:f32, 3.90625E-3>>
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect", "::mlir::quant::QuantDialect",
    "::mlir::tensor::TensorDialect"];
}

#endif // QNT_CONVERSION_PASSES_TD
