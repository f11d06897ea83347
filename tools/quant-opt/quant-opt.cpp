//===- quant-opt.cpp - qnt optimizer driver -------------------------------===//

#include "qnt/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  qnt::registerAllDialects(registry);
  qnt::registerAllPasses();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "qnt quantization compiler driver\n", registry));
}
