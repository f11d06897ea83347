//===- FoldFakeQuant.cpp - --qnt-fold-fake-quant --------------------------===//
//
// Turns the fake quantization learned in quantization-aware training into
// the QDQ form (quant.qcast + quant.dcast) with exactly those parameters.
//
//===----------------------------------------------------------------------===//

#include "qnt/Transforms/Passes.h"

#include "mlir/Dialect/Quant/IR/Quant.h"

namespace qnt {
#define GEN_PASS_DEF_QNTFOLDFAKEQUANTPASS
#include "qnt/Transforms/Passes.h.inc"
} // namespace qnt

using namespace mlir;
using namespace qnt;

namespace {

struct QntFoldFakeQuantPass
    : qnt::impl::QntFoldFakeQuantPassBase<QntFoldFakeQuantPass> {
  using QntFoldFakeQuantPassBase::QntFoldFakeQuantPassBase;

  void runOnOperation() override {
    SmallVector<FakeQuantOp> ops;
    getOperation().walk([&](FakeQuantOp op) { ops.push_back(op); });
    for (FakeQuantOp op : ops) {
      auto type = cast<RankedTensorType>(op.getType());
      OpBuilder builder(op);
      Value q = quant::QuantizeCastOp::create(
          builder, op.getLoc(),
          type.clone(op.getQuantizedElementType(clampToQuantRange)),
          op.getInput());
      Value dq = quant::DequantizeCastOp::create(builder, op.getLoc(), type, q);
      op.replaceAllUsesWith(dq);
      op.erase();
    }
  }
};

} // namespace
