//===- UnaryFunction.cpp - elementwise functions of one activation --------===//

#include "qnt/Transforms/UnaryFunction.h"
#include "qnt/Dialect/Qnt/QntOps.h"

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

static ScalarFunctionOpInterface getScalarFunctionOp(Value value) {
  auto op = value.getDefiningOp<ScalarFunctionOpInterface>();
  if (!op || op->getNumResults() != 1 || !op.isScalarFunction())
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
  llvm::SetVector<Operation *> ops;
  Value source;
  SmallVector<Value> worklist = {value};
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    ScalarFunctionOpInterface op = getScalarFunctionOp(v);
    // An op with a per-element constant (batch-norm's per-channel scale)
    // is not part of a unary function: its result is a leaf.
    if (op && op->getBlock() == block && v.getType() == value.getType() &&
        llvm::none_of(op.getScalarOperands(), [](Value operand) {
          return matchPattern(operand, m_Constant()) && !getSplatFloat(operand);
        })) {
      if (!ops.insert(op))
        continue;
      if (ops.size() > kMaxOps)
        return std::nullopt;
      for (Value operand : op.getScalarOperands())
        if (!getSplatFloat(operand))
          worklist.push_back(operand);
      continue;
    }
    // A leaf: the one activation the function is computed from.
    if (source && source != v)
      return std::nullopt;
    source = v;
  }
  if (ops.empty() || !source || source.getType() != value.getType())
    return std::nullopt;
  UnaryFunction function{source, value, ops.takeVector()};
  llvm::sort(function.ops,
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return function;
}

float UnaryFunction::evaluate(float x) const {
  llvm::SmallDenseMap<Value, float, 8> values;
  values[source] = x;
  for (Operation *op : ops) {
    auto function = cast<ScalarFunctionOpInterface>(op);
    SmallVector<float> operands;
    for (Value operand : function.getScalarOperands()) {
      if (std::optional<float> c = getSplatFloat(operand))
        operands.push_back(*c);
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

UnaryFunctionKind UnaryFunction::classify() const {
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
