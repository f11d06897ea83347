//===- Utils.cpp - helpers shared by the qnt passes -----------------------===//

#include "qnt/Transforms/Utils.h"
#include "qnt/Dialect/Qnt/QntOps.h"
#include "qnt/Transforms/UnaryFunction.h"

#include "qnt/Dialect/Qnt/QntOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Quant/IR/QuantTypes.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

using namespace mlir;

bool qnt::isInFloatComposite(Operation *op) {
  return QntDialect::FloatCompositeAttrHelper(op->getContext())
      .isAttrPresent(op);
}

std::optional<std::vector<float>> qnt::getConstantFloats(Value value) {
  DenseElementsAttr attr;
  if (!matchPattern(value, m_Constant(&attr)) || !attr.getElementType().isF32())
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

std::optional<std::string> qnt::getLocationName(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location inner : fused.getLocations())
      if (auto name = getLocationName(inner))
        return name;
  return std::nullopt;
}

int64_t qnt::getNumElements(Type type) {
  return cast<ShapedType>(type).getNumElements();
}

LogicalResult qnt::verifyObserverIds(Operation *root) {
  // The channel count a per-channel observer records (0: per-tensor).
  auto getChannels = [](ObserveOp op) -> int64_t {
    std::optional<int64_t> axis = op.getQspec().getAxis();
    return axis ? cast<ShapedType>(op.getInput().getType()).getDimSize(*axis)
                : 0;
  };
  llvm::StringMap<ObserveOp> seen;
  WalkResult result = root->walk([&](ObserveOp op) {
    auto [it, inserted] = seen.try_emplace(op.getId(), op);
    if (inserted || (it->second->getAttrDictionary() ==
                         op->getAttrDictionary() &&
                     getChannels(it->second) == getChannels(op)))
      return WalkResult::advance();
    InFlightDiagnostic diag =
        op.emitError() << "observer id '" << op.getId()
                       << "' is used again with a different kind, channel "
                          "count or parameters (one id is one observer)";
    diag.attachNote(it->second.getLoc()) << "first used here";
    return WalkResult::interrupt();
  });
  return failure(result.wasInterrupted());
}

LogicalResult qnt::verifyQuantizedTypes(Operation *root) {
  return failure(root->walk([](Operation *op) {
                       return failed(verifyZeroPointsInStorageRange(op))
                                  ? WalkResult::interrupt()
                                  : WalkResult::advance();
                     })
                     .wasInterrupted());
}

qnt::ObserverStats qnt::computeConstantStats(ArrayRef<float> data,
                                             ShapedType type,
                                             std::optional<int64_t> axis) {
  int64_t channels = axis ? type.getDimSize(*axis) : 1;
  int64_t inner = 1;
  if (axis)
    for (int64_t d = *axis + 1; d < type.getRank(); ++d)
      inner *= type.getDimSize(d);
  ObserverStats stats;
  stats.min.assign(channels, INFINITY);
  stats.max.assign(channels, -INFINITY);
  for (size_t i = 0; i < data.size(); ++i) {
    if (!std::isfinite(data[i])) {
      ++stats.nonfinite;
      continue;
    }
    int64_t c = (i / inner) % channels;
    stats.min[c] = std::min(stats.min[c], data[i]);
    stats.max[c] = std::max(stats.max[c], data[i]);
    ++stats.count;
  }
  return stats;
}

llvm::Expected<Type> qnt::buildUniformQuantizedType(
    MLIRContext *ctx, const QTarget &target, ArrayRef<float> mins,
    ArrayRef<float> maxs, std::optional<int64_t> axis, bool clampToQuantRange) {
  SmallVector<double> scales;
  SmallVector<int64_t> zeroPoints;
  for (size_t c = 0; c < mins.size(); ++c) {
    llvm::Expected<QParams> params =
        computeCheckedQParams(mins[c], maxs[c], target);
    if (!params) {
      if (!axis)
        return params.takeError();
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "channel " + std::to_string(c) + ": " +
                                         llvm::toString(params.takeError()));
    }
    scales.push_back(params->scale);
    zeroPoints.push_back(params->zeroPoint);
  }
  return buildUniformQuantizedType(ctx, target, scales, zeroPoints, axis,
                                   clampToQuantRange);
}

Type qnt::buildUniformQuantizedType(MLIRContext *ctx, const QTarget &target,
                                    ArrayRef<double> scales,
                                    ArrayRef<int64_t> zeroPoints,
                                    std::optional<int64_t> axis,
                                    bool clampToQuantRange) {
  unsigned flags = target.isSigned ? quant::QuantizationFlags::Signed : 0;
  Type storage = IntegerType::get(ctx, 8);
  Type expressed = Float32Type::get(ctx);
  int64_t lo = target.isSigned ? -128 : 0, hi = target.isSigned ? 127 : 255;
  if (clampToQuantRange)
    lo = target.quantMin, hi = target.quantMax;
  if (axis)
    return quant::UniformQuantizedPerAxisType::get(
        flags, storage, expressed, scales, zeroPoints, *axis, lo, hi);
  return quant::UniformQuantizedType::get(flags, storage, expressed, scales[0],
                                          zeroPoints[0], lo, hi);
}

LogicalResult qnt::applyPatternsWithoutFolding(Operation *op,
                                               RewritePatternSet &&patterns) {
  GreedyRewriteConfig config;
  config.enableFolding(false);
  return applyPatternsGreedily(op, std::move(patterns), config);
}

Value qnt::getSharedQParamsSource(Value value) {
  if (auto op = value.getDefiningOp<SameScaleOpInterface>())
    return op.getSameScaleOperand().get();
  if (auto pool = value.getDefiningOp<tosa::AvgPool2dOp>())
    return pool.getInput();
  if (auto pad = value.getDefiningOp<tosa::PadOp>())
    return pad.getInput1();
  if (auto resize = value.getDefiningOp<tosa::ResizeOp>())
    return resize.getInput();
  std::optional<UnaryFunction> function = getUnaryFunction(value);
  if (function && function->classify() == UnaryFunctionKind::clamp)
    return function->source;
  return nullptr;
}
