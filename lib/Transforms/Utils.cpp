//===- Utils.cpp - helpers shared by the qnt passes -----------------------===//

#include "qnt/Transforms/Utils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;

std::optional<std::vector<float>> qnt::getConstantFloats(Value value) {
  DenseElementsAttr attr;
  if (!matchPattern(value, m_Constant(&attr)) ||
      !attr.getElementType().isF32())
    return std::nullopt;
  auto values = attr.getValues<float>();
  return std::vector<float>(values.begin(), values.end());
}

Value qnt::createF32Constant(OpBuilder &builder, Location loc,
                             ArrayRef<int64_t> shape, ArrayRef<float> data) {
  auto type = RankedTensorType::get(shape, builder.getF32Type());
  return arith::ConstantOp::create(builder, loc, type,
                                   DenseElementsAttr::get(type, data));
}

int64_t qnt::getNumElements(Type type) {
  return cast<ShapedType>(type).getNumElements();
}
