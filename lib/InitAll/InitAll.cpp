//===- InitAll.cpp - register every qnt dialect and pass ------------------===//

#include "qnt/InitAll.h"

#include "qnt/Conversion/Passes.h"
#include "qnt/Dialect/Qnt/ExternalModels.h"
#include "qnt/Dialect/Qnt/QntOps.h"
#include "qnt/Pipelines/Pipelines.h"
#include "qnt/Transforms/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"

void qnt::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<QntDialect>();
  registerTosaExternalModels(registry);
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
}

void qnt::registerAllPasses() {
  mlir::registerAllPasses();
  registerQntTransformsPasses();
  registerQntConversionPasses();
  registerPipelines();
}
