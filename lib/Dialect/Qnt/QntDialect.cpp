//===- QntDialect.cpp - qnt dialect registration --------------------------===//

#include "qnt/Dialect/Qnt/QntOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace qnt;

#include "qnt/Dialect/Qnt/QntOpsDialect.cpp.inc"
#include "qnt/Dialect/Qnt/QntOpsEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "qnt/Dialect/Qnt/QntOpsAttributes.cpp.inc"

void QntDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "qnt/Dialect/Qnt/QntOpsAttributes.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "qnt/Dialect/Qnt/QntOps.cpp.inc"
      >();
}

LogicalResult QntDialect::verifyOperationAttribute(Operation *op,
                                                   NamedAttribute attr) {
  if (attr.getName() != NumericsAttrHelper::getNameStr())
    return success();
  if (!isa<ModuleOp>(op))
    return op->emitError() << "'" << attr.getName().getValue()
                           << "' belongs on the builtin.module";
  auto value = dyn_cast<StringAttr>(attr.getValue());
  if (!value || !symbolizeNumerics(value.getValue()))
    return op->emitError() << "'" << attr.getName().getValue()
                           << "' must be \"qnt\" or \"onnxruntime\", got "
                           << attr.getValue();
  return success();
}

Numerics qnt::getNumerics(Operation *op) {
  auto module =
      isa<ModuleOp>(op) ? cast<ModuleOp>(op) : op->getParentOfType<ModuleOp>();
  if (!module)
    return Numerics::qnt;
  QntDialect::NumericsAttrHelper helper(op->getContext());
  StringAttr value = helper.getAttr(module);
  if (!value)
    return Numerics::qnt;
  return symbolizeNumerics(value.getValue()).value_or(Numerics::qnt);
}

static std::pair<int64_t, int64_t> getStorageRange(QuantDType dtype) {
  switch (dtype) {
  case QuantDType::u8:
    return {0, 255};
  case QuantDType::s8:
    return {-128, 127};
  }
  llvm_unreachable("unknown QuantDType");
}

LogicalResult QSpecAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                QuantDType dtype, int64_t quantMin,
                                int64_t quantMax, QuantScheme scheme,
                                std::optional<int64_t> axis, FloatAttr eps) {
  auto [lo, hi] = getStorageRange(dtype);
  if (quantMin < lo || quantMax > hi)
    return emitError() << "quant range [" << quantMin << ", " << quantMax
                       << "] exceeds the " << stringifyQuantDType(dtype)
                       << " range [" << lo << ", " << hi << "]";
  if (quantMin >= quantMax)
    return emitError() << "quant_min (" << quantMin
                       << ") must be less than quant_max (" << quantMax << ")";
  if (axis && *axis < 0)
    return emitError() << "axis must be non-negative, got " << *axis;
  if (eps && (!eps.getType().isF32() || !(eps.getValueAsDouble() > 0.0) ||
              std::isinf(eps.getValueAsDouble())))
    return emitError() << "eps must be a positive, finite f32, got " << eps;
  return success();
}
