//===- UnaryFunction.cpp - elementwise functions of one activation --------===//

#include "qnt/Transforms/UnaryFunction.h"
#include "qnt/Dialect/Qnt/QntOps.h"
#include "qnt/Transforms/Utils.h"

#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"

#include <cmath>

using namespace mlir;
using namespace qnt;

/// Longer chains are not treated as one function (and bound the search).
static constexpr size_t kMaxOps = 32;

static std::optional<float> getSplatFloat(Value value) {
  DenseElementsAttr attr;
  if (!matchPattern(value, m_Constant(&attr)) ||
      !attr.getElementType().isF32() || !attr.isSplat())
    return std::nullopt;
  return attr.getSplatValue<float>();
}

/// A constant with one value per channel (the last dimension of `type`, a
/// batch-norm's scale or shift), all its other dimensions 1; or a splat.
static bool isChannelConstant(Value value, RankedTensorType type) {
  DenseElementsAttr attr;
  if (!matchPattern(value, m_Constant(&attr)) || !attr.getElementType().isF32())
    return false;
  if (attr.isSplat())
    return true;
  ArrayRef<int64_t> shape = attr.getType().getShape();
  return !shape.empty() && type.getRank() > 0 &&
         shape.back() == type.getShape().back() &&
         llvm::all_of(shape.drop_back(), [](int64_t d) { return d == 1; });
}

/// The value of a splat or channel constant at `channel`.
static float getConstantAt(Value value, int64_t channel) {
  DenseElementsAttr attr;
  matchPattern(value, m_Constant(&attr));
  if (attr.isSplat())
    return attr.getSplatValue<float>();
  return attr.getValues<float>()[channel];
}

static ScalarFunctionOpInterface getScalarFunctionOp(Value value) {
  auto op = value.getDefiningOp<ScalarFunctionOpInterface>();
  if (!op || op->getNumResults() != 1 || !op.isScalarFunction() ||
      isInFloatComposite(op))
    return nullptr;
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || !type.getElementType().isF32() || !type.hasStaticShape())
    return nullptr;
  return op;
}

std::optional<UnaryFunction> qnt::getUnaryFunction(Value value) {
  if (!getScalarFunctionOp(value))
    return std::nullopt;
  Block *block = value.getDefiningOp()->getBlock();
  auto type = cast<RankedTensorType>(value.getType());
  llvm::SetVector<Operation *> ops;
  bool perChannel = false;
  Value source;
  SmallVector<Value> worklist = {value};
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    ScalarFunctionOpInterface op = getScalarFunctionOp(v);
    // An op with a constant that varies over more than the channels is
    // not part of a unary function: its result is a leaf.
    if (op && op->getBlock() == block && v.getType() == value.getType() &&
        llvm::none_of(op.getScalarOperands(), [&](Value operand) {
          return matchPattern(operand, m_Constant()) &&
                 !isChannelConstant(operand, type);
        })) {
      if (!ops.insert(op))
        continue;
      if (ops.size() > kMaxOps)
        return std::nullopt;
      for (Value operand : op.getScalarOperands()) {
        if (!matchPattern(operand, m_Constant()))
          worklist.push_back(operand);
        else if (!getSplatFloat(operand))
          perChannel = true;
      }
      continue;
    }
    // A leaf: the one activation the function is computed from.
    if (source && source != v)
      return std::nullopt;
    source = v;
  }
  if (ops.empty() || !source || source.getType() != value.getType())
    return std::nullopt;
  UnaryFunction function{source, value, ops.takeVector(), perChannel};
  llvm::sort(function.ops,
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return function;
}

float UnaryFunction::evaluate(float x, int64_t channel) const {
  llvm::SmallDenseMap<Value, float, 8> values;
  values[source] = x;
  for (Operation *op : ops) {
    auto function = cast<ScalarFunctionOpInterface>(op);
    SmallVector<float> operands;
    for (Value operand : function.getScalarOperands()) {
      if (matchPattern(operand, m_Constant()))
        operands.push_back(getConstantAt(operand, channel));
      else
        operands.push_back(values.lookup(operand));
    }
    values[op->getResult(0)] = function.evaluateScalar(operands);
  }
  return values.lookup(result);
}

/// Whether f matches `reference` at points spread over the interesting
/// range of the activations PyTorch names (a composite is recognized by
/// what it computes, not by how the exporter spelled it).
template <typename Fn>
static bool computes(const UnaryFunction &f, Fn reference, float tolerance) {
  for (float x : {-8.0f, -3.5f, -3.0f, -1.25f, -0.3f, 0.0f, 0.4f, 1.5f, 2.9f,
                  3.0f, 4.75f, 9.0f}) {
    float want = reference(x), got = f.evaluate(x);
    if (!(std::fabs(got - want) <= tolerance * std::max(1.0f, std::fabs(want))))
      return false;
  }
  return true;
}

std::optional<ChannelAffine> UnaryFunction::getChannelAffine() const {
  int64_t channels = cast<ShapedType>(result.getType()).getShape().back();
  ChannelAffine affine;
  affine.scale.assign(channels, 1.0f);
  affine.shift.assign(channels, 0.0f);
  Value current = source;
  for (auto [i, op] : llvm::enumerate(ops)) {
    auto operands = cast<ScalarFunctionOpInterface>(op).getScalarOperands();
    if (auto clamp = dyn_cast<tosa::ClampOp>(op)) {
      if (i + 1 != ops.size())
        return std::nullopt; // only a final relu / clamp
      affine.bounds = {
          (float)cast<FloatAttr>(clamp.getMinValAttr()).getValueAsDouble(),
          (float)cast<FloatAttr>(clamp.getMaxValAttr()).getValueAsDouble()};
      continue;
    }
    if (!isa<tosa::AddOp, tosa::SubOp, tosa::MulOp>(op) || operands.size() != 2)
      return std::nullopt;
    // One operand is the function so far, the other a constant.
    bool lhs = operands[0] == current;
    Value constant = lhs ? operands[1] : operands[0];
    if ((lhs ? operands[0] : operands[1]) != current ||
        !matchPattern(constant, m_Constant()))
      return std::nullopt;
    for (int64_t c = 0; c < channels; ++c) {
      float k = getConstantAt(constant, c);
      if (isa<tosa::MulOp>(op)) {
        affine.scale[c] *= k;
        affine.shift[c] *= k;
      } else if (isa<tosa::AddOp>(op)) {
        affine.shift[c] += k;
      } else if (lhs) { // x - k
        affine.shift[c] -= k;
      } else { // k - x
        affine.scale[c] = -affine.scale[c];
        affine.shift[c] = k - affine.shift[c];
      }
    }
    current = op->getResult(0);
  }
  return affine;
}

UnaryFunctionKind UnaryFunction::classify() const {
  if (perChannel)
    return UnaryFunctionKind::other;
  auto contains = [&](auto tag) {
    using OpTy = decltype(tag);
    return llvm::any_of(ops, [](Operation *op) { return isa<OpTy>(op); });
  };
  if (ops.size() == 1) {
    if (isa<tosa::SigmoidOp>(ops[0]))
      return UnaryFunctionKind::sigmoid;
    if (isa<tosa::TanhOp>(ops[0]))
      return UnaryFunctionKind::tanh;
    if (isa<tosa::ClampOp>(ops[0]))
      return UnaryFunctionKind::clamp;
  }
  constexpr float tolerance = 1e-6f;
  if (contains(tosa::ClampOp()) && !contains(tosa::SigmoidOp()) &&
      computes(
          *this,
          [](float x) { return std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6; },
          tolerance))
    return UnaryFunctionKind::hardsigmoid;
  if (contains(tosa::SigmoidOp()) &&
      computes(
          *this, [](float x) { return x / (1.0f + std::exp(-x)); }, tolerance))
    return UnaryFunctionKind::silu;
  if ((contains(tosa::ErfOp()) || contains(tosa::TanhOp())) &&
      computes(
          *this,
          [](float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678f)); },
          // The tanh approximation is within 1e-3 of the erf form.
          2e-3f))
    return UnaryFunctionKind::gelu;
  return UnaryFunctionKind::other;
}

bool qnt::isUnaryFunctionResult(const UnaryFunction &function) {
  Value result = function.result;
  if (result.use_empty())
    return false;
  for (Operation *user : result.getUsers()) {
    if (user->getNumResults() != 1)
      return true;
    std::optional<UnaryFunction> longer = getUnaryFunction(user->getResult(0));
    if (!longer || longer->source != function.source ||
        !llvm::is_contained(longer->ops, user))
      return true;
  }
  return false;
}
