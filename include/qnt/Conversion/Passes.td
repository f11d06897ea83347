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
    of the scalar loops of the upstream lowering) and the f32 `tosa.matmul`
    of two activations that `qnt-fuse` did not make a linear (attention
    scores and context: `qnt_rt_batch_matmul`, oneDNN's batched matmul).
    Each
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
    `qnt.add`, `qnt.avg_pool2d`, `qnt.batch_norm` (and float `qnt.mul`),
    and per-tensor 8-bit `quant.qcast` / `quant.dcast` (the runtime's
    formulas, so that they fuse with the float code around them: a layer
    norm or softmax between int8 tensors is one loop nest with its casts)
    become `linalg.generic` ops on
    the storage integers with `arith` / `math` bodies, and a quantized
    `tosa.concat` `tensor.insert_slice`s into one result (so its inputs
    are written in place), between `quant.scast`s, with the arithmetic of docs/numerics.md: a table is a
    `tensor.extract` from a 256-entry constant, requantization is
    `clamp(rint(x * M) + Z)` in f32. Upstream passes then fuse chains of
    them into one loop nest, `qnt-vectorize` vectorizes the nests and splits
    them across threads, and `qnt-outline-parallel-loops` runs them on the
    runtime's threads (all in `--qnt-lower-to-llvm`), for x86-64 and
    AArch64 alike. Run before `qnt-lower-to-runtime`
    (which lowers what the kernel libraries do: conv2d, linear, batched
    matmul, float add, pooling, per-axis quantize / dequantize).

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

def QntApproximateMathPass
    : Pass<"qnt-approximate-math", "mlir::func::FuncOp"> {
  let summary = "Replace math.erf, exp, tanh and log by polynomial "
                "approximations (no libm call per element)";
  let description = [{
    `math.erf` (from `tosa.erf`: GELU) has no LLVM intrinsic, so
    `convert-to-llvm` cannot lower it; `math.exp`, `math.tanh` and
    `math.log` (softmax, sigmoid, the tanh form of GELU, LSTM gates,
    log_softmax) have intrinsics that x86 and AArch64 lower to one libm call
    per element, also in vector code. This pass rewrites the four with
    upstream's polynomial approximations
    (`populateMathPolynomialApproximationPatterns`): arithmetic on the same
    scalar or vector type, so vectorized code stays vectorized. Their errors
    (exp 1 ulp, tanh 4.5 ulp, log 0.8 ulp; exp flushes results below
    2^-126 to 0, log takes subnormal inputs as the smallest normal) are in
    docs/numerics.md. sqrt and rsqrt are instructions and are kept.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::math::MathDialect",
                           "mlir::vector::VectorDialect"];
}

def QntVectorizePass : Pass<"qnt-vectorize", "mlir::func::FuncOp"> {
  let summary = "Tile the generated loops into parallel chunks and vector "
                "tiles, and vectorize them";
  let description = [{
    The vector code generation of qnt, for the `linalg.generic` ops on
    static shapes that `qnt-lower-to-linalg` and the TOSA lowerings leave
    (tables, requantizations, pooling sums, float elementwise chains) and
    the transposes (`linalg.transpose`, generalized first: attention's
    head split and merge):

    0. a concatenation's input that is not computed in place into its
       slice of the result (a kernel's output) gets an explicit copy loop
       (`linalg.generic`) into that slice, vectorized and split like the
       rest: bufferization would make it a `memref.copy` of a strided
       slice, which MLIR's runtime library copies element by element;
    1. unit dimensions are dropped and runs of dimensions that every
       operand keeps contiguous are collapsed into one (an elementwise op on
       `8x112x112x16` becomes one loop over 1605632 elements), unless an
       operand is a slice of a larger tensor, or of one split by an
       `expand_shape` (a concatenation's input written in place, a q/k/v
       slice of attention's fused projection);
    2. the leading parallel dimensions are tiled with `scf.forall`, which
       `qnt-outline-parallel-loops` turns into a call of the runtime's
       parallel loop (the threads of the kernels), when the op is large
       enough to pay for it;
    3. inside, the op is tiled with `scf.for` to tiles of one vector along
       its innermost parallel dimension (at most `vector-size` elements, a
       divisor of that dimension: no remainder loop) and vectorized with
       upstream `linalg::vectorize`; the arithmetic stays bit for bit what
       the scalar body computes. A table lookup stays scalar (x86 has no
       byte gather; the gathers measured slower than scalar loads) but is
       still split across threads;
    4. an op whose only reduction is its innermost dimension (softmax's
       row max and sum, layer norm's mean and variance, a pooling window
       collapsed into one run) of at most 4096 elements is split into
       chunks of rows the same way, and each row is read as one vector and
       reduced at once: `vector.reduction`, with `fastmath<reassoc>` on
       floats, so that LLVM sums a row as a tree of vector adds (a float sum
       then rounds differently from the scalar loop's, by a few ulp; max,
       min and integer sums are exact).

    Ops that upstream vectorization does not handle, and ops with an i1
    (bool) operand, are left for `convert-linalg-to-loops`: LLVM packs a
    vector of i1 into bits but stores an array of i1 one per byte, so a
    vector read of a mask would take the wrong elements.
  }];
  let options = [
    Option<"vectorSize", "vector-size", "int64_t", /*default=*/"64",
           "Most elements in one vector tile">,
    Option<"parallel", "parallel", "bool", /*default=*/"true",
           "Tile the leading parallel dimensions with scf.forall">,
    Option<"minParallelElements", "min-parallel-elements", "int64_t",
           /*default=*/"16384",
           "Smallest iteration space that is split across threads">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::affine::AffineDialect",
    "::mlir::linalg::LinalgDialect", "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect", "::mlir::vector::VectorDialect"];
}

def QntOutlineParallelLoopsPass
    : Pass<"qnt-outline-parallel-loops", "mlir::ModuleOp"> {
  let summary = "Run scf.forall loops on the runtime's threads";
  let description = [{
    Each `scf.forall` on memrefs with constant bounds (the parallel chunks of
    `qnt-vectorize`) becomes a call
    `qnt_rt_parallel_for(body, context, n)`: its body is outlined into a
    function `body(context, begin, end)` that runs the iterations
    `[begin, end)` of the linearized iteration space, and the values it
    uses from above travel in a stack struct `context` (memrefs as their
    LLVM descriptors, index values as i64). The runtime splits `[0, n)` into
    one contiguous range per OpenMP thread: the threads the oneDNN kernels
    already use, so generated code and kernels never compete for cores.

    Run after bufferization and before the lowering to LLVM; loops it does
    not outline (dynamic bounds, a captured value of another type) are left
    for `scf-forall-to-for`.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::scf::SCFDialect"];
}

def QntEarlyDeallocPass : Pass<"qnt-early-dealloc", "mlir::func::FuncOp"> {
  let summary = "Free each buffer right after its last use";
  let description = [{
    MLIR's buffer deallocation pipeline frees a block's buffers at the end
    of the block, so every intermediate tensor of a model lives until the
    model returns (a 12-layer BERT-base encoder at batch 8: 1 GB per call,
    which the runtime's allocator cannot keep for reuse, so each call
    page-faults it in again). This pass moves each `memref.dealloc` of a
    `memref.alloc` of the same block to just after the last op of the block
    that uses the buffer or an alias of it: views, its address as an
    index, integer or pointer (what `qnt-lower-to-runtime` passes to the
    kernels), a region result it is yielded into; uses inside a region count
    at the op that holds the region. Values loaded through the buffer are
    data, not aliases. A call uses the pointers it takes only while it runs
    (the runtime's kernels keep none). A buffer whose alias goes where its
    uses cannot be followed (its address stored to memory, yielded by an op
    without results, used by an op with unknown effects) keeps its dealloc
    where it is. Run after `convert-bufferization-to-memref`.

    Before:
    ```mlir
    %a = memref.alloc() : memref<64xf32>
    linalg.fill ins(%c : f32) outs(%a : memref<64xf32>)
    %b = memref.alloc() : memref<64xf32>
    memref.copy %a, %b : memref<64xf32> to memref<64xf32>
    ...
    memref.dealloc %a : memref<64xf32>
    ```
    After:
    ```mlir
    %a = memref.alloc() : memref<64xf32>
    linalg.fill ins(%c : f32) outs(%a : memref<64xf32>)
    %b = memref.alloc() : memref<64xf32>
    memref.copy %a, %b : memref<64xf32> to memref<64xf32>
    memref.dealloc %a : memref<64xf32>
    ...
    ```
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

#endif // QNT_CONVERSION_PASSES_TD
