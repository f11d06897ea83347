//===- ExternalModels.cpp - qnt interfaces on upstream ops ----------------===//

#include "qnt/Dialect/Qnt/ExternalModels.h"
#include "qnt/Dialect/Qnt/QntOps.h"

#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/DialectRegistry.h"

using namespace mlir;

namespace {

/// The op carries the values of its first operand.
template <typename OpTy>
struct FirstOperandSameScale
    : qnt::SameScaleOpInterface::ExternalModel<FirstOperandSameScale<OpTy>,
                                               OpTy> {
  OpOperand &getSameScaleOperand(Operation *op) const {
    return op->getOpOperand(0);
  }
};

template <typename... OpTys>
void attachFirstOperandSameScale(MLIRContext *ctx) {
  (OpTys::template attachInterface<FirstOperandSameScale<OpTys>>(*ctx), ...);
}

} // namespace

void qnt::registerTosaExternalModels(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, tosa::TosaDialect *) {
    attachFirstOperandSameScale<tosa::MaxPool2dOp, tosa::ReshapeOp,
                                tosa::TransposeOp, tosa::SliceOp>(ctx);
  });
}
