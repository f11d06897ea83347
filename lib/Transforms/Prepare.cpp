//===- Prepare.cpp - --qnt-prepare ----------------------------------------===//
//
// Inserts qnt.observe on the activations, weights and results of every
// compute op in the quantized region, with the observers and qspecs of a
// PyTorch-style qconfig preset.
//
//===----------------------------------------------------------------------===//

#include "qnt/Transforms/Passes.h"

#include "mlir/IR/Matchers.h"
#include "llvm/ADT/StringSet.h"

namespace qnt {
#define GEN_PASS_DEF_QNTPREPAREPASS
#include "qnt/Transforms/Passes.h.inc"
} // namespace qnt

using namespace mlir;
using namespace qnt;

namespace {

struct ObserverConfig {
  ObserverKind kind;
  QuantDType dtype;
  int64_t quantMin, quantMax;
  QuantScheme scheme;
  bool perChannel;
};

struct QConfig {
  ObserverConfig activation;
  ObserverConfig weight;
};

/// PyTorch 1.13's get_default_qconfig(...), with min-max activation
/// observers.
static std::optional<QConfig> lookupQConfig(StringRef name) {
  // x86 / fbgemm: reduce_range keeps u8 activations to 7 bits, so AVX2's
  // vpmaddubsw cannot saturate.
  if (name == "x86" || name == "fbgemm")
    return QConfig{
        {ObserverKind::minmax, QuantDType::u8, 0, 127, QuantScheme::affine,
         false},
        {ObserverKind::per_channel_minmax, QuantDType::s8, -128, 127,
         QuantScheme::symmetric, true}};
  if (name == "qnnpack")
    return QConfig{{ObserverKind::minmax, QuantDType::u8, 0, 255,
                    QuantScheme::affine, false},
                   {ObserverKind::minmax, QuantDType::s8, -128, 127,
                    QuantScheme::symmetric, false}};
  return std::nullopt;
}

/// The user-facing name carried by a location (`loc("conv1")`), if any.
static std::optional<std::string> getLocationName(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location inner : fused.getLocations())
      if (auto name = getLocationName(inner))
        return name;
  return std::nullopt;
}

class ObserverInserter {
public:
  ObserverInserter(const QConfig &config) : config(config) {}

  /// Observes activation `value` once, for all its users: what a quantized
  /// op produces is quantized for every consumer, as in PyTorch.
  void observeActivation(Value value, Operation *owner, StringRef role) {
    if (observed.contains(value))
      return;
    OpBuilder builder(value.getContext());
    builder.setInsertionPointAfterValue(value);
    ObserveOp op = create(builder, value, owner, role, config.activation,
                          std::nullopt);
    value.replaceAllUsesExcept(op.getOutput(), op);
    observed.insert(value);
    observed.insert(op.getOutput());
  }

  /// Observes the weight operand of one op: a constant shared by several
  /// ops (or used in float code) gets one observer per quantized use.
  void observeWeight(OpOperand &operand, int64_t axis) {
    OpBuilder builder(operand.getOwner());
    ObserveOp op = create(builder, operand.get(), operand.getOwner(), "w",
                          config.weight, axis);
    operand.set(op.getOutput());
  }

  void observeComputeOp(QuantizableOpInterface op) {
    for (auto [i, operand] : llvm::enumerate(op.getActivationOperands()))
      observeActivation(operand->get(), op,
                        i ? "in" + std::to_string(i) : "in");
    if (OpOperand *weight = op.getWeightOperand())
      observeWeight(*weight, op.getWeightChannelAxis());
    observeActivation(op->getResult(0), op, "out");
  }

private:
  ObserveOp create(OpBuilder &builder, Value value, Operation *owner,
                   StringRef role, const ObserverConfig &observer,
                   std::optional<int64_t> axis) {
    auto qspec = QSpecAttr::get(value.getContext(), observer.dtype,
                                observer.quantMin, observer.quantMax,
                                observer.scheme,
                                observer.perChannel ? axis : std::nullopt);
    return ObserveOp::create(builder, value.getLoc(), value,
                             makeId(owner, role), observer.kind, qspec);
  }

  /// `<name>:<role>`, where the name is the op's location name or `op<N>`
  /// in the order ops are first seen; repeats get `#2`, `#3`...
  std::string makeId(Operation *owner, StringRef role) {
    auto [it, inserted] = opNames.try_emplace(owner);
    if (inserted)
      it->second = getLocationName(owner->getLoc())
                       .value_or("op" + std::to_string(opNames.size() - 1));
    std::string id = it->second + ":" + role.str();
    for (int n = 2; !ids.insert(id).second; ++n)
      id = it->second + ":" + role.str() + "#" + std::to_string(n);
    return id;
  }

  const QConfig &config;
  DenseSet<Value> observed;
  DenseMap<Operation *, std::string> opNames;
  llvm::StringSet<> ids;
};

/// Values inside the quantized region: reachable from a quant_stub without
/// crossing a dequant_stub, or every value when the function has no stubs.
static DenseSet<Value> computeQuantizedRegion(func::FuncOp func,
                                              bool &hasStubs) {
  DenseSet<Value> region;
  hasStubs = false;
  func.walk([&](Operation *op) {
    if (isa<QuantStubOp>(op)) {
      hasStubs = true;
      region.insert(op->getResult(0));
      return;
    }
    if (isa<DequantStubOp>(op))
      return;
    if (llvm::any_of(op->getOperands(),
                     [&](Value v) { return region.contains(v); }))
      region.insert(op->result_begin(), op->result_end());
  });
  return region;
}

struct QntPreparePass : qnt::impl::QntPreparePassBase<QntPreparePass> {
  using QntPreparePassBase::QntPreparePassBase;

  LogicalResult initialize(MLIRContext *) override {
    config = lookupQConfig(qconfig);
    return success();
  }

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (!config) {
      func.emitError("unknown qconfig '")
          << qconfig << "'; expected one of: x86, fbgemm, qnnpack";
      return signalPassFailure();
    }
    bool hasStubs;
    DenseSet<Value> region = computeQuantizedRegion(func, hasStubs);
    auto inRegion = [&](Value v) { return !hasStubs || region.contains(v); };

    // Decide before inserting: observers create values the region analysis
    // has not seen.
    SmallVector<QuantizableOpInterface> ops;
    func.walk([&](QuantizableOpInterface op) {
      if (llvm::all_of(op.getActivationOperands(), [&](OpOperand *operand) {
            return inRegion(operand->get());
          }))
        ops.push_back(op);
    });
    ObserverInserter inserter(*config);
    for (QuantizableOpInterface op : ops)
      inserter.observeComputeOp(op);
  }

  std::optional<QConfig> config;
};

} // namespace
