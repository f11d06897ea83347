//===- qnt-embed.cpp - embed qnt in another compiler ----------------------===//
//
// A minimal out-of-tree user of the installed qnt CMake package: it registers
// qnt with its own MLIRContext, builds the post-training-quantization pipeline
// programmatically (qconfig x86, no calibration statistics, so the pipeline
// is --qnt-fuse then --qnt-prepare) and prints the IR to calibrate.
//
//   qnt-embed [input.mlir | -]      (no argument: a small built-in module)
//
//===----------------------------------------------------------------------===//

#include "qnt/InitAll.h"
#include "qnt/Pipelines/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

// One quantizable conv2d + relu between qnt's quant/dequant stubs.
static const char kBuiltinModule[] = R"mlir(
module {
  func.func @main(%input: tensor<1x4x4x1xf32>) -> tensor<1x4x4x2xf32> {
    %q = "qnt.quant_stub"(%input) : (tensor<1x4x4x1xf32>) -> tensor<1x4x4x1xf32> loc("quant")
    %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
    %w = "tosa.const"() {values = dense<[[[[0.5]], [[-0.25]], [[1.0]]], [[[0.125]], [[0.75]], [[-1.0]]]]> : tensor<2x3x1x1xf32>} : () -> tensor<2x3x1x1xf32> loc("conv")
    %b = "tosa.const"() {values = dense<[0.1, -0.2]> : tensor<2xf32>} : () -> tensor<2xf32> loc("conv")
    %conv = tosa.conv2d %q, %w, %b, %zp, %zp {acc_type = f32, pad = array<i64: 1, 1, 0, 0>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x3x1x1xf32>, tensor<2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x4x2xf32> loc("conv")
    %relu = tosa.clamp %conv {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32> loc("relu")
    %out = "qnt.dequant_stub"(%relu) : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32> loc("dequant")
    return %out : tensor<1x4x4x2xf32>
  }
}
)mlir";

static int fail(const llvm::Twine &message) {
  llvm::errs() << "qnt-embed: " << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  if (argc > 2 || (argc == 2 && (std::string(argv[1]) == "-h" ||
                                 std::string(argv[1]) == "--help"))) {
    llvm::errs() << "usage: " << argv[0] << " [input.mlir | -]\n";
    return argc > 2 ? 2 : 0;
  }

  // 1. Register qnt (and every dialect its pipelines use) with our context.
  mlir::DialectRegistry registry;
  qnt::registerAllDialects(registry);
  qnt::registerAllPasses(); // only needed for textual pipelines / -pass names
  mlir::MLIRContext context(registry);

  // 2. Parse the input (or the built-in module); errors go to stderr with
  //    their source locations.
  llvm::SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler diagHandler(sourceMgr, &context);
  std::unique_ptr<llvm::MemoryBuffer> buffer;
  if (argc == 2) {
    std::string errorMessage;
    buffer = mlir::openInputFile(argv[1], &errorMessage);
    if (!buffer)
      return fail(errorMessage);
  } else {
    buffer = llvm::MemoryBuffer::getMemBuffer(kBuiltinModule, "<builtin>");
  }
  sourceMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, &context);
  if (!module)
    return fail("cannot parse the input module");

  // 3. Build the pipeline in C++: qconfig x86 and no stats -> the pipeline
  //    stops after --qnt-prepare (qnt-fuse, qnt-prepare on every func.func).
  mlir::PassManager pm(&context);
  qnt::PTQPipelineOptions options;
  options.qconfig = "x86";
  options.stats = "";
  qnt::buildPTQPipeline(pm, options);
  llvm::errs() << "qnt-embed: running ";
  pm.printAsTextualPipeline(llvm::errs());
  llvm::errs() << "\n";

  // 4. Run it and print the result.
  if (mlir::failed(pm.run(*module)))
    return fail("the qnt PTQ pipeline failed");
  module->print(llvm::outs());
  llvm::outs() << "\n";
  llvm::outs().flush();
  if (llvm::outs().has_error())
    return fail("cannot write the output");
  return 0;
}
