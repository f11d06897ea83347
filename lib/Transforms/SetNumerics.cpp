//===- SetNumerics.cpp - --qnt-set-numerics
//--------------------------------===//
//
// Sets the module's `qnt.numerics` attribute: whose integer arithmetic the
// lowering reproduces (qnt's own or ONNX Runtime's).
//
//===----------------------------------------------------------------------===//

#include "qnt/Dialect/Qnt/QntOps.h"
#include "qnt/Transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"

namespace qnt {
#define GEN_PASS_DEF_QNTSETNUMERICSPASS
#include "qnt/Transforms/Passes.h.inc"
} // namespace qnt

using namespace mlir;
using namespace qnt;

namespace {

struct QntSetNumericsPass
    : qnt::impl::QntSetNumericsPassBase<QntSetNumericsPass> {
  using QntSetNumericsPassBase::QntSetNumericsPassBase;

  LogicalResult initialize(MLIRContext *ctx) override {
    if (!symbolizeNumerics(numerics))
      return emitError(UnknownLoc::get(ctx))
             << "--qnt-set-numerics: numerics must be qnt or onnxruntime, got '"
             << numerics << "'";
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    QntDialect::NumericsAttrHelper(&getContext())
        .setAttr(module, StringAttr::get(&getContext(), numerics));
  }
};

} // namespace
