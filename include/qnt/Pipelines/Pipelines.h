//===- Pipelines.h - qnt pass pipelines -----------------------*- C++ -*-===//

#ifndef QNT_PIPELINES_PIPELINES_H
#define QNT_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace qnt {

struct PTQPipelineOptions
    : public mlir::PassPipelineOptions<PTQPipelineOptions> {
  Option<std::string> qconfig{*this, "qconfig",
                              llvm::cl::desc("Quantization preset (see "
                                             "--qnt-prepare)"),
                              llvm::cl::init("x86")};
  Option<std::string> activationObserver{
      *this, "activation-observer",
      llvm::cl::desc("Activation observer kind instead of the preset's (see "
                     "--qnt-prepare)"),
      llvm::cl::init("")};
  Option<bool> floatInPytorch{
      *this, "float-in-pytorch",
      llvm::cl::desc("Keep in float what PyTorch FX does (see --qnt-prepare)"),
      llvm::cl::init(false)};
  Option<bool> clampToQuantRange{*this, "clamp-to-quant-range",
                                 llvm::cl::desc("See --qnt-fold-calibration"),
                                 llvm::cl::init(false)};
  Option<std::string> stats{
      *this, "stats",
      llvm::cl::desc("Calibration statistics; without it the pipeline stops "
                     "after --qnt-prepare (the IR to calibrate)"),
      llvm::cl::init("")};
};

struct LowerPipelineOptions
    : public mlir::PassPipelineOptions<LowerPipelineOptions> {
  Option<std::string> backend{
      *this, "backend",
      llvm::cl::desc("Kernel library: onednn, xnnpack or auto"),
      llvm::cl::init("onednn")};
};

/// fuse -> prepare [-> fold-calibration -> convert when stats are given].
void buildPTQPipeline(mlir::OpPassManager &pm,
                      const PTQPipelineOptions &options);

struct DynamicPipelineOptions
    : public mlir::PassPipelineOptions<DynamicPipelineOptions> {
  Option<std::string> qconfig{
      *this, "qconfig",
      llvm::cl::desc("Preset (x86: inputs quantized to [0, 127], else "
                     "[0, 255])"),
      llvm::cl::init("x86")};
  Option<bool> perChannel{
      *this, "per-channel",
      llvm::cl::desc("Per-channel weights (see --qnt-prepare's "
                     "dynamic-per-channel)"),
      llvm::cl::init(false)};
  Option<bool> allLinears{
      *this, "all-linears",
      llvm::cl::desc("Also the linears PyTorch's quantize_dynamic leaves in "
                     "float (see --qnt-prepare's dynamic-all-linears)"),
      llvm::cl::init(false)};
};

/// Dynamic quantization: fuse -> prepare (mode=dynamic) -> fold the weight
/// fake quants and observers -> convert. No calibration.
void buildDynamicPipeline(mlir::OpPassManager &pm,
                          const DynamicPipelineOptions &options);

/// Bufferize and lower everything that is left (tosa, tensor, linalg, ...)
/// to the llvm dialect. Runtime calls must already be in place.
void buildLowerToLLVMPipeline(mlir::OpPassManager &pm);

/// qnt-fuse (float TOSA conv/matmul become runtime kernels too), then
/// qnt-lower-to-linalg (integer codegen), qnt-lower-to-runtime and
/// buildLowerToLLVMPipeline.
void buildLowerPipeline(mlir::OpPassManager &pm,
                        const LowerPipelineOptions &options);

void registerPipelines();

} // namespace qnt

#endif // QNT_PIPELINES_PIPELINES_H
