//===- ExposeActivations.cpp - --qnt-expose-activations -------------------===//
//
// Returns every compute op's result from the function, named after the op,
// so that two versions of a model (FP32 and INT8) can be compared layer by
// layer.
//
//===----------------------------------------------------------------------===//

#include "qnt/Transforms/Passes.h"
#include "qnt/Transforms/Utils.h"

#include "mlir/Dialect/Quant/IR/Quant.h"
#include "llvm/ADT/StringSet.h"

namespace qnt {
#define GEN_PASS_DEF_QNTEXPOSEACTIVATIONSPASS
#include "qnt/Transforms/Passes.h.inc"
} // namespace qnt

using namespace mlir;
using namespace qnt;

namespace {

struct QntExposeActivationsPass
    : qnt::impl::QntExposeActivationsPassBase<QntExposeActivationsPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    if (!func.getBody().hasOneBlock()) {
      func.emitError("--qnt-expose-activations needs a single-block body");
      return signalPassFailure();
    }
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());

    SmallVector<Value> values;
    SmallVector<std::string> names;
    llvm::StringSet<> used;
    int index = 0; // The op's position among the compute ops.
    func.walk([&](QuantizableOpInterface op) {
      Value value = op->getResult(0);
      OpBuilder builder(op->getContext());
      builder.setInsertionPoint(ret);
      if (auto type = dyn_cast<RankedTensorType>(value.getType());
          type && isQuantizedTensor(type))
        value = quant::DequantizeCastOp::create(
            builder, op.getLoc(), type.clone(builder.getF32Type()), value);
      std::string name =
          getLocationName(op.getLoc()).value_or("op" + std::to_string(index));
      ++index;
      std::string unique = name;
      for (int n = 2; !used.insert(unique).second; ++n)
        unique = name + "#" + std::to_string(n);
      values.push_back(value);
      names.push_back(unique);
    });

    unsigned first = func.getNumResults();
    SmallVector<Type> resultTypes(func.getResultTypes());
    for (Value value : values)
      resultTypes.push_back(value.getType());
    ret->insertOperands(ret->getNumOperands(), values);
    func.setType(
        FunctionType::get(&getContext(), func.getArgumentTypes(), resultTypes));
    Builder builder(&getContext());
    for (auto [i, name] : llvm::enumerate(names))
      func.setResultAttr(first + i, "qnt.name", builder.getStringAttr(name));
  }
};

} // namespace
