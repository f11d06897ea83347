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

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/ToolOutputFile.h"
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
  // Devices and pipes (-o /dev/null) are written in place.
  llvm::sys::fs::file_status status;
  if (!llvm::sys::fs::status(outputFilename, status) &&
      status.type() != llvm::sys::fs::file_type::regular_file) {
    std::unique_ptr<llvm::ToolOutputFile> output =
        openOutputFile(outputFilename, &error);
    if (!output)
      return fail(error);
    if (failed(MlirOptMain(output->os(), std::move(input), registry, config)) ||
        failed(checkWritten(output->os(), outputFilename)))
      return failure();
    output->keep();
    return success();
  }

  llvm::Expected<llvm::sys::fs::TempFile> temp =
      llvm::sys::fs::TempFile::create(outputFilename + ".tmp-%%%%%%");
  if (!temp)
    return fail("cannot write '" + outputFilename +
                "': " + llvm::toString(temp.takeError()));
  bool written;
  {
    llvm::raw_fd_ostream os(temp->FD, /*shouldClose=*/false);
    written = succeeded(MlirOptMain(os, std::move(input), registry, config)) &&
              succeeded(checkWritten(os, outputFilename));
    os.clear_error(); // reported (or irrelevant after a failed run)
  }
  if (!written) {
    llvm::consumeError(temp->discard());
    return failure();
  }
  if (llvm::Error e = temp->keep(outputFilename)) {
    std::string message = llvm::toString(std::move(e));
    llvm::consumeError(temp->discard());
    return fail("cannot write '" + outputFilename + "': " + message);
  }
  return success();
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
