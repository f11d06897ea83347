//===- PerChannel.cpp - --qnt-per-channel ---------------------------------===//
//
// Re-quantizes constant weights per output channel where the backend has
// per-channel kernels for the op, and per tensor where it does not.
//
//===----------------------------------------------------------------------===//

#include "qnt/Support/SizeLimits.h"
#include "qnt/Transforms/Passes.h"
#include "qnt/Transforms/Utils.h"

#include "mlir/Dialect/Quant/IR/Quant.h"
#include "llvm/ADT/TypeSwitch.h"

namespace qnt {
#define GEN_PASS_DEF_QNTPERCHANNELPASS
#include "qnt/Transforms/Passes.h.inc"
} // namespace qnt

using namespace mlir;
using namespace qnt;

namespace {

/// Whether `backend` runs `op` with per-channel weight scales; nothing when
/// the backend is unknown.
static std::optional<bool> supportsPerChannel(StringRef backend,
                                              Operation *op) {
  if (backend == "onednn")
    return true;
  if (backend == "xnnpack")
    // XNNPACK's qc8 operators cover convolutions; its fully connected
    // operator has one weight scale.
    return llvm::TypeSwitch<Operation *, bool>(op)
        .Case<Conv2DOp>([](auto) { return true; })
        .Default([](Operation *) { return false; });
  return std::nullopt;
}

struct QntPerChannelPass : qnt::impl::QntPerChannelPassBase<QntPerChannelPass> {
  using QntPerChannelPassBase::QntPerChannelPassBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (!supportsPerChannel(backend, func)) {
      func.emitError("unknown backend '")
          << backend << "'; expected one of: onednn, xnnpack";
      return signalPassFailure();
    }
    if (failed(verifyConstantSizes(func)))
      return signalPassFailure();
    func.walk([&](QuantizableOpInterface op) { rewriteWeight(op); });
  }

  /// Re-quantizes the weight of `op` if its granularity is not the one the
  /// backend wants.
  void rewriteWeight(QuantizableOpInterface op) {
    OpOperand *weight = op.getWeightOperand();
    auto dcast = weight ? weight->get().getDefiningOp<quant::DequantizeCastOp>()
                        : nullptr;
    auto qcast = dcast ? dcast.getInput().getDefiningOp<quant::QuantizeCastOp>()
                       : nullptr;
    if (!qcast)
      return;
    std::optional<std::vector<float>> data =
        getConstantFloats(qcast.getInput());
    auto qtype =
        dyn_cast<quant::QuantizedType>(getElementTypeOrSelf(qcast.getType()));
    if (!data || !qtype)
      return;
    bool perChannel = isa<quant::UniformQuantizedPerAxisType>(qtype);
    bool wanted = *supportsPerChannel(backend, op);
    if (perChannel == wanted)
      return;

    auto type = cast<RankedTensorType>(qcast.getInput().getType());
    std::optional<int64_t> axis;
    if (wanted)
      axis = op.getWeightChannelAxis();
    ObserverStats ranges = computeConstantStats(*data, type, axis);
    QTarget target{qtype.getStorageTypeMin(), qtype.getStorageTypeMax(),
                   /*symmetric=*/true, qtype.isSigned()};
    llvm::Expected<Type> element =
        buildUniformQuantizedType(&getContext(), target, ranges.min, ranges.max,
                                  axis, /*clampToQuantRange=*/true);
    if (!element) {
      qcast.emitError("cannot re-quantize the weight: ")
          << llvm::toString(element.takeError());
      return signalPassFailure();
    }
    // A fresh pair for this op: the old one may have other users.
    OpBuilder builder(op);
    Value q = quant::QuantizeCastOp::create(
        builder, qcast.getLoc(), type.clone(*element), qcast.getInput());
    Value dq = quant::DequantizeCastOp::create(builder, dcast.getLoc(),
                                               dcast.getType(), q);
    weight->set(dq);
    if (dcast->use_empty())
      dcast->erase();
    if (qcast->use_empty())
      qcast->erase();
  }
};

} // namespace
