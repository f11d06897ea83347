//===- quant-opt.cpp - qnt optimizer driver -------------------------------===//
//
// mlir-opt with the qnt dialects and passes. Unlike upstream's driver, a
// write error (a full disk) is an error message and a non-zero exit rather
// than a fatal error, and a regular -o file is written to a temporary file
// renamed into place on success: a failed run leaves no partial output and
// an existing one untouched.
//
//===----------------------------------------------------------------------===//

#include "qnt/InitAll.h"
#include "qnt/Support/AtomicFile.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/WithColor.h"

#include <cstdlib>

using namespace mlir;

static LogicalResult fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "quant-opt") << message << "\n";
  return failure();
}

/// Flushes `os`; a write error fails naming `path` (and is cleared, which
/// raw_fd_ostream would otherwise turn into a fatal error).
static LogicalResult checkWritten(llvm::raw_fd_ostream &os,
                                  llvm::StringRef path) {
  os.flush();
  if (!os.has_error())
    return success();
  std::error_code ec = os.error();
  os.clear_error();
  return fail("cannot write '" + path + "': " + ec.message());
}

static LogicalResult run(llvm::StringRef inputFilename,
                         llvm::StringRef outputFilename,
                         DialectRegistry &registry,
                         const MlirOptMainConfig &config) {
  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> input =
      openInputFile(inputFilename, &error);
  if (!input)
    return fail(error);

  if (outputFilename == "-") {
    if (failed(MlirOptMain(llvm::outs(), std::move(input), registry, config)))
      return failure();
    return checkWritten(llvm::outs(), "<stdout>");
  }
  bool failedRun = false;
  llvm::Error written = qnt::writeFileAtomically(
      outputFilename, [&](llvm::raw_ostream &os) -> llvm::Error {
        if (succeeded(MlirOptMain(os, std::move(input), registry, config)))
          return llvm::Error::success();
        failedRun = true; // its diagnostics are printed
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "failed");
      });
  if (!written)
    return success();
  if (failedRun) {
    llvm::consumeError(std::move(written));
    return failure();
  }
  return fail(llvm::toString(std::move(written)));
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  DialectRegistry registry;
  qnt::registerAllDialects(registry);
  qnt::registerAllPasses();
  auto [inputFilename, outputFilename] = registerAndParseCLIOptions(
      argc, argv, "qnt quantization compiler driver\n", registry);
  MlirOptMainConfig config = MlirOptMainConfig::createFromCLOptions();
  if (config.shouldShowDialects()) {
    llvm::outs() << "Available Dialects: ";
    llvm::interleave(registry.getDialectNames(), llvm::outs(), ",");
    llvm::outs() << "\n";
    return EXIT_SUCCESS;
  }
  if (config.shouldListPasses()) {
    printRegisteredPasses();
    return EXIT_SUCCESS;
  }
  return asMainReturnCode(run(inputFilename, outputFilename, registry, config));
}
