//===- Pipelines.cpp - qnt pass pipelines ---------------------------------===//

#include "qnt/Pipelines/Pipelines.h"

#include "qnt/Conversion/Passes.h"
#include "qnt/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/OneShotAnalysis.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Dialect/Tosa/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void qnt::buildPTQPipeline(OpPassManager &pm,
                           const PTQPipelineOptions &options) {
  pm.addNestedPass<func::FuncOp>(createQntFusePass());
  QntPreparePassOptions prepare;
  prepare.qconfig = options.qconfig;
  prepare.activationObserver = options.activationObserver;
  prepare.floatInPytorch = options.floatInPytorch;
  pm.addNestedPass<func::FuncOp>(createQntPreparePass(prepare));
  if (options.stats.empty())
    return;
  QntFoldCalibrationPassOptions fold;
  fold.statsFile = options.stats;
  fold.clampToQuantRange = options.clampToQuantRange;
  pm.addPass(createQntFoldCalibrationPass(fold));
  // No canonicalizer after this: it folds quant.dcast(quant.qcast(x)) to x.
  pm.addNestedPass<func::FuncOp>(createQntConvertPass());
}

void qnt::buildDynamicPipeline(OpPassManager &pm,
                               const DynamicPipelineOptions &options) {
  pm.addNestedPass<func::FuncOp>(createQntFusePass());
  QntPreparePassOptions prepare;
  prepare.qconfig = options.qconfig;
  prepare.mode = "dynamic";
  prepare.dynamicPerChannel = options.perChannel;
  prepare.dynamicAllLinears = options.allLinears;
  pm.addNestedPass<func::FuncOp>(createQntPreparePass(prepare));
  // Weights that carry their parameters (ONNX Runtime's dynamic form,
  // imported) keep them; the observed ones get theirs from their range.
  pm.addNestedPass<func::FuncOp>(createQntFoldFakeQuantPass());
  pm.addPass(createQntFoldCalibrationPass());
  pm.addNestedPass<func::FuncOp>(createQntConvertPass());
}

void qnt::buildLowerToLLVMPipeline(OpPassManager &pm) {
  // Remaining TOSA (pooling, reshape, elementwise) to linalg on tensors.
  OpPassManager &funcPm = pm.nest<func::FuncOp>();
  funcPm.addPass(tosa::createTosaToLinalgNamed());
  funcPm.addPass(createCanonicalizerPass());
  funcPm.addPass(tosa::createTosaToLinalg());
  funcPm.addPass(createTosaToArithPass());
  funcPm.addPass(createTosaToTensorPass());
  // Chains of float elementwise ops (hardswish, squeeze-excite scaling)
  // become one loop nest each: one pass over memory and one buffer instead
  // of one per op.
  funcPm.addPass(createLinalgElementwiseOpFusionPass());

  // Producers of a concatenation's inputs write into the result's buffer
  // (their tensor.empty becomes a slice of it) instead of being copied.
  pm.addPass(bufferization::createEmptyTensorEliminationPass());
  // After it, so that producers writing into a concatenation keep writing
  // into its slices (qnt-vectorize does not collapse sliced operands).
  pm.addNestedPass<func::FuncOp>(createQntVectorizePass());
  pm.addNestedPass<func::FuncOp>(createQntApproximateMathPass());
  bufferization::OneShotBufferizePassOptions bufferizeOptions;
  bufferizeOptions.bufferizeFunctionBoundaries = true;
  bufferizeOptions.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferizeOptions));
  pm.addPass(createCanonicalizerPass());
  bufferization::BufferDeallocationPipelineOptions deallocOptions;
  bufferization::buildBufferDeallocationPipeline(pm, deallocOptions);
  pm.addPass(createConvertBufferizationToMemRefPass());
  // Each buffer is freed after its last use, not at the end of the model,
  // so the runtime's allocator reuses it for the next tensors.
  pm.addNestedPass<func::FuncOp>(createQntEarlyDeallocPass());

  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  // Parallel chunks run on the kernels' threads; what is left (dynamic
  // bounds) runs sequentially.
  pm.addPass(createQntOutlineParallelLoopsPass());
  pm.addPass(createForallToForLoopPass());
  pm.addPass(createConvertVectorToSCFPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  // Heap buffers come from the runtime's allocator (runtime/lib/Memory.cpp),
  // which reuses them across runs instead of page-faulting them in again.
  pm.addPass(createConvertVectorToLLVMPass());
  FinalizeMemRefToLLVMConversionPassOptions memrefOptions;
  memrefOptions.useGenericFunctions = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefOptions));
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
}

void qnt::buildLowerPipeline(OpPassManager &pm,
                             const LowerPipelineOptions &options) {
  // Float TOSA convolutions and matmuls run on the backend's kernels too.
  pm.addNestedPass<func::FuncOp>(createQntFusePass());
  // Integer codegen first: what remains is what the kernel libraries run.
  pm.addNestedPass<func::FuncOp>(createQntLowerToLinalgPass());
  pm.addPass(createQntLowerToRuntimePass(
      QntLowerToRuntimePassOptions{options.backend}));
  buildLowerToLLVMPipeline(pm);
}

void qnt::registerPipelines() {
  PassPipelineRegistration<PTQPipelineOptions>(
      "qnt-ptq-pipeline",
      "Static post-training quantization: qnt-fuse, qnt-prepare and, given "
      "stats=FILE, qnt-fold-calibration and qnt-convert",
      buildPTQPipeline);
  PassPipelineRegistration<DynamicPipelineOptions>(
      "qnt-dynamic-pipeline",
      "Dynamic quantization of linear layers (and of ONNX Runtime's "
      "MatMulInteger / ConvInteger): qnt-fuse, qnt-prepare "
      "(mode=dynamic), qnt-fold-fake-quant, qnt-fold-calibration and "
      "qnt-convert",
      buildDynamicPipeline);
  PassPipelineRegistration<>(
      "qnt-lower-to-llvm",
      "Bufferize and lower the remaining tensor/TOSA code to the llvm "
      "dialect (after qnt-lower-to-runtime)",
      buildLowerToLLVMPipeline);
  PassPipelineRegistration<LowerPipelineOptions>(
      "qnt-lower-pipeline",
      "qnt-fuse, qnt-lower-to-linalg, qnt-lower-to-runtime and "
      "qnt-lower-to-llvm: executable IR",
      buildLowerPipeline);
}
