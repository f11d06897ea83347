//===- Prepare.cpp - --qnt-prepare ----------------------------------------===//
//
// Inserts qnt.observe on the activations, weights and results of every
// compute op in the quantized region, with the observers and qspecs of a
// PyTorch-style qconfig preset.
//
//===----------------------------------------------------------------------===//

#include "qnt/Transforms/Passes.h"
#include "qnt/Transforms/UnaryFunction.h"
#include "qnt/Transforms/Utils.h"

#include "mlir/Dialect/Tosa/IR/TosaOps.h"

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

/// PyTorch 1.13's get_default_qconfig(name): histogram observers on
/// activations; u8 activations with reduce_range ([0, 127] for the
/// parameters; see --qnt-fold-calibration) on x86/fbgemm; s8 symmetric weights,
/// per channel except on qnnpack. `xnnpack` (not in PyTorch 1.13) is the ARM
/// preset of docs/numerics.md: s8 activations, s8 [-127, 127] weights.
static std::optional<QConfig> lookupQConfig(StringRef name) {
  const ObserverConfig perChannelWeight{ObserverKind::per_channel_minmax,
                                        QuantDType::s8,
                                        -128,
                                        127,
                                        QuantScheme::symmetric,
                                        true};
  const ObserverConfig perTensorWeight{
      ObserverKind::minmax,   QuantDType::s8, -128, 127,
      QuantScheme::symmetric, false};
  auto histogram = [](QuantDType dtype, int64_t lo, int64_t hi) {
    return ObserverConfig{ObserverKind::histogram, dtype, lo, hi,
                          QuantScheme::affine,     false};
  };
  if (name == "x86" || name == "fbgemm")
    return QConfig{histogram(QuantDType::u8, 0, 127), perChannelWeight};
  if (name == "onednn")
    return QConfig{histogram(QuantDType::u8, 0, 255), perChannelWeight};
  if (name == "qnnpack")
    return QConfig{histogram(QuantDType::u8, 0, 255), perTensorWeight};
  if (name == "xnnpack")
    return QConfig{histogram(QuantDType::s8, -128, 127),
                   {ObserverKind::per_channel_minmax, QuantDType::s8, -127, 127,
                    QuantScheme::symmetric, true}};
  return std::nullopt;
}

constexpr StringLiteral kQConfigNames = "x86, fbgemm, onednn, qnnpack, xnnpack";

class ObserverInserter {
public:
  /// Observes activation `value` once, for all its users: what a quantized
  /// op produces is quantized for every consumer, as in PyTorch. (A value
  /// shared by ops with different qconfigs gets the first one's observer.)
  void observeActivation(Value value, Operation *owner, StringRef role,
                         const ObserverConfig &config) {
    if (observed.contains(value))
      return;
    OpBuilder builder(value.getContext());
    builder.setInsertionPointAfterValue(value);
    ObserveOp op;
    Value leader = findLeader(value);
    if (auto it = classObservers.find(leader); it != classObservers.end()) {
      // A value sharing parameters with one already observed: the same
      // observer (id, kind, range) at this site too.
      op = cast<ObserveOp>(builder.clone(*it->second));
      op->setOperand(0, value);
      op->getResult(0).setType(value.getType());
      op->setLoc(value.getLoc());
    } else {
      op = create(builder, value, owner, role, config, std::nullopt);
      if (leader != value || sharedMembers.contains(value))
        classObservers[leader] = op;
    }
    value.replaceAllUsesExcept(op.getOutput(), op);
    observed.insert(value);
    observed.insert(op.getOutput());
  }

  /// Observes the weight operand of one op: a constant shared by several
  /// ops (or used in float code) gets one observer per quantized use.
  void observeWeight(OpOperand &operand, int64_t axis,
                     const ObserverConfig &config) {
    OpBuilder builder(operand.getOwner());
    ObserveOp op =
        create(builder, operand.get(), operand.getOwner(), "w", config, axis);
    operand.set(op.getOutput());
  }

  void observeComputeOp(QuantizableOpInterface op, const QConfig &config) {
    for (auto [i, operand] : llvm::enumerate(op.getActivationOperands())) {
      // A value that same-scale ops (max pool, reshape, ...) made from an
      // observed one shares its observer, as in PyTorch.
      if (isSameScaleOfObserved(operand->get()))
        continue;
      observeActivation(operand->get(), op, i ? "in" + std::to_string(i) : "in",
                        config.activation);
    }
    if (OpOperand *weight = op.getWeightOperand())
      observeWeight(*weight, op.getWeightChannelAxis(), config.weight);
    observeActivation(op->getResult(0), op, "out", config.activation);
  }

  /// Observes an input of `owner` unless it already has parameters.
  void observeInput(Value value, Operation *owner, StringRef role,
                    const ObserverConfig &config) {
    if (!isSameScaleOfObserved(value))
      observeActivation(value, owner, role, config);
  }

  /// PyTorch's FixedQParamsObserver on `value`, the result of `owner`.
  void observeFixed(Value value, Operation *owner, double scale,
                    int64_t zeroPoint, const ObserverConfig &config) {
    if (observed.contains(value))
      return;
    OpBuilder builder(value.getContext());
    builder.setInsertionPointAfterValue(value);
    bool isSigned = config.dtype == QuantDType::s8;
    auto qspec =
        QSpecAttr::get(value.getContext(), config.dtype, isSigned ? -128 : 0,
                       isSigned ? 127 : 255, QuantScheme::affine, std::nullopt,
                       /*eps=*/FloatAttr());
    ObserveOp op =
        ObserveOp::create(builder, value.getLoc(), value, makeId(owner, "out"),
                          ObserverKind::fixed_qparams, qspec);
    op.setFixedScaleAttr(builder.getF64FloatAttr(scale));
    op.setFixedZeroPointAttr(builder.getI64IntegerAttr(zeroPoint));
    value.replaceAllUsesExcept(op.getOutput(), op);
    observed.insert(value);
    observed.insert(op.getOutput());
  }

  /// Makes `values` share one observer (their quantization parameters).
  void shareQParams(ArrayRef<Value> values) {
    for (Value v : values) {
      sharedMembers.insert(v);
      Value a = findLeader(values.front()), b = findLeader(v);
      if (a != b)
        leaders[b] = a;
    }
  }

private:
  Value findLeader(Value value) {
    auto it = leaders.find(value);
    if (it == leaders.end())
      return value;
    Value root = findLeader(it->second);
    it = leaders.find(value); // the recursion may have grown the map
    it->second = root;
    return root;
  }

  /// Whether `value` takes its parameters from an observed value through
  /// ops that share them (getSharedQParamsSource).
  static bool isSameScaleOfObserved(Value value) {
    Value source = value;
    while (Value next = getSharedQParamsSource(source))
      source = next;
    return source != value && source.getDefiningOp<ObserveOp>();
  }

  ObserveOp create(OpBuilder &builder, Value value, Operation *owner,
                   StringRef role, const ObserverConfig &observer,
                   std::optional<int64_t> axis) {
    auto qspec =
        QSpecAttr::get(value.getContext(), observer.dtype, observer.quantMin,
                       observer.quantMax, observer.scheme,
                       observer.perChannel ? axis : std::nullopt,
                       /*eps=*/FloatAttr());
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

  DenseSet<Value> observed;
  /// Union-find of values that share an observer, and the first observer
  /// made for each class (by its leader).
  DenseMap<Value, Value> leaders;
  DenseSet<Value> sharedMembers;
  DenseMap<Value, ObserveOp> classObservers;
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

/// Whether `selector` names `op`: its op name (`qnt.linear`), its location
/// name, or a module-path prefix of it (`layer1` selects `layer1.0.conv1`).
static bool selects(StringRef selector, Operation *op) {
  if (op->getName().getStringRef() == selector)
    return true;
  std::optional<std::string> name = getLocationName(op->getLoc());
  if (!name)
    return false;
  StringRef ref(*name);
  return ref == selector ||
         (ref.starts_with(selector) && ref[selector.size()] == '.');
}

struct QntPreparePass : qnt::impl::QntPreparePassBase<QntPreparePass> {
  using QntPreparePassBase::QntPreparePassBase;

  /// Parses the options; false (with `error` set) on a bad one.
  bool parseOptions(std::string &error) {
    if (mode != "static" && mode != "dynamic") {
      error = "unknown mode '" + mode + "'; expected static or dynamic";
      return false;
    }
    auto preset = lookupQConfig(qconfig);
    if (!preset) {
      error = "unknown qconfig '" + qconfig +
              "'; expected one of: " + kQConfigNames.str();
      return false;
    }
    defaultConfig = *preset;
    if (!activationObserver.empty()) {
      std::optional<ObserverKind> kind =
          symbolizeObserverKind(activationObserver);
      if (!kind || *kind == ObserverKind::per_channel_minmax ||
          *kind == ObserverKind::fixed_qparams ||
          *kind == ObserverKind::moving_average_per_channel_minmax) {
        error = "activation-observer '" + activationObserver +
                "' is not a per-tensor observer kind; expected one of: "
                "minmax, moving_average_minmax, histogram, percentile, "
                "entropy";
        return false;
      }
      defaultConfig.activation.kind = *kind;
    }
    if (catObserver != "shared" && catObserver != "own") {
      error =
          "unknown cat-observer '" + catObserver + "'; expected shared or own";
      return false;
    }
    for (const std::string &name : floatFunctions)
      if (name != "silu" && name != "gelu") {
        error = "unknown float-functions entry '" + name +
                "'; expected silu or gelu";
        return false;
      }
    for (const std::string &entry : overrides) {
      auto [selector, name] = StringRef(entry).rsplit('=');
      std::optional<QConfig> config = lookupQConfig(name);
      if (selector.empty() || !config) {
        error = "bad override '" + entry +
                "': expected SELECTOR=QCONFIG with QCONFIG one of: " +
                kQConfigNames.str();
        return false;
      }
      // The activation observer override applies everywhere.
      if (!activationObserver.empty())
        config->activation.kind = defaultConfig.activation.kind;
      overrideConfigs.push_back({selector.str(), *config});
    }
    return true;
  }

  /// The qconfig of `op`, or nothing when it is excluded (stays float).
  std::optional<QConfig> getConfig(Operation *op) {
    if (isInFloatComposite(op))
      return std::nullopt;
    if (mode == "static" && floatInPytorch &&
        QntDialect::FloatInPytorchAttrHelper(op->getContext())
            .isAttrPresent(op))
      return std::nullopt;
    for (const std::string &selector : exclude)
      if (selects(selector, op))
        return std::nullopt;
    for (const auto &[selector, config] : overrideConfigs)
      if (selects(selector, op))
        return config;
    return defaultConfig;
  }

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    std::string error;
    if (!parseOptions(error)) {
      func.emitError(error);
      return signalPassFailure();
    }
    // Preparing twice would observe every tensor twice.
    if (auto observed = func.walk([](ObserveOp op) {
          op.emitError("the function is already prepared: --qnt-prepare "
                       "found this qnt.observe");
          return WalkResult::interrupt();
        });
        observed.wasInterrupted())
      return signalPassFailure();
    bool hasStubs;
    DenseSet<Value> region = computeQuantizedRegion(func, hasStubs);
    auto inRegion = [&](Value v) { return !hasStubs || region.contains(v); };

    // Decide before inserting: observers create values the region analysis
    // has not seen.
    SmallVector<std::pair<QuantizableOpInterface, QConfig>> ops;
    func.walk([&](QuantizableOpInterface op) {
      if (!llvm::all_of(op.getActivationOperands(), [&](OpOperand *operand) {
            return inRegion(operand->get());
          }))
        return;
      if (std::optional<QConfig> config = getConfig(op))
        ops.push_back({op, *config});
    });
    ObserverInserter inserter;
    // The results of the ops without weights first, so that an edge is
    // named after the op that makes it and fixed parameters (a sigmoid
    // before a multiply) are not replaced by the consumer's observer; their
    // inputs last, sharing what the compute ops observed.
    SmallVector<OpWithoutWeights> others;
    if (mode == "static") {
      others = decideOpsWithoutWeights(func, inRegion);
      if (catObserver == "shared")
        shareConcatQParams(others, inserter);
      observeOpsWithoutWeights(others, inserter, /*results=*/true);
    }
    for (auto &[op, config] : ops) {
      if (mode == "static") {
        inserter.observeComputeOp(op, config);
        continue;
      }
      // Dynamic: linear layers, weights observed now, activations quantized
      // per call with the preset's u8 range (reduce_range on x86/fbgemm, as
      // PyTorch's quantize_dynamic); and any op whose weight already has a
      // fake quant (an imported ONNX model's integers and scales: ONNX
      // Runtime's MatMulInteger / ConvInteger), which keeps its parameters.
      if (!op.canQuantizeDynamically())
        continue;
      OpOperand *weight = op.getWeightOperand();
      bool fileWeight = weight->get().getDefiningOp<FakeQuantOp>() != nullptr;
      auto linear = dyn_cast<LinearOp>(op.getOperation());
      if (!fileWeight &&
          (!linear || (!dynamicAllLinears &&
                       QntDialect::FloatInPytorchAttrHelper(&getContext())
                           .isAttrPresent(linear))))
        continue;
      // PyTorch's default_dynamic_qconfig: per-tensor symmetric s8 weights;
      // per_channel_dynamic_qconfig: per-channel.
      const ObserverConfig dynamicWeight{dynamicPerChannel
                                             ? ObserverKind::per_channel_minmax
                                             : ObserverKind::minmax,
                                         QuantDType::s8,
                                         -128,
                                         127,
                                         QuantScheme::symmetric,
                                         dynamicPerChannel};
      if (!fileWeight)
        inserter.observeWeight(*weight, op.getWeightChannelAxis(),
                               dynamicWeight);
      // ONNX Runtime's DynamicQuantizeLinear knows only u8 [0, 255].
      const ObserverConfig &act = config.activation;
      int64_t quantMax = act.dtype == QuantDType::u8 ? act.quantMax : 255;
      if (getNumerics(op) == Numerics::onnxruntime)
        quantMax = 255;
      op.setDynamicQuantization(QSpecAttr::get(&getContext(), QuantDType::u8, 0,
                                               quantMax, QuantScheme::affine,
                                               std::nullopt, FloatAttr()));
    }
    observeOpsWithoutWeights(others, inserter, /*results=*/false);
  }

  /// An op of the region that is not a compute op: a unary function's
  /// result, a concatenation, an average pooling, a padding or a resize.
  struct OpWithoutWeights {
    Operation *op;
    QConfig config;
    std::optional<UnaryFunction> function;
  };

  /// Decided before inserting: observers cut the functions apart.
  SmallVector<OpWithoutWeights>
  decideOpsWithoutWeights(func::FuncOp func,
                          llvm::function_ref<bool(Value)> inRegion) {
    SmallVector<OpWithoutWeights> decided;
    func.walk([&](Operation *op) {
      if (op->getNumResults() != 1 || isa<ObserveOp>(op) ||
          !llvm::all_of(op->getOperands(), [&](Value v) {
            return inRegion(v) || matchPattern(v, m_Constant());
          }))
        return;
      std::optional<QConfig> config = getConfig(op);
      if (!config)
        return;
      std::optional<UnaryFunction> function =
          getUnaryFunction(op->getResult(0));
      if (function && !isUnaryFunctionResult(*function))
        return;
      if (function ||
          isa<tosa::ConcatOp, tosa::AvgPool2dOp, tosa::PadOp, tosa::ResizeOp>(
              op))
        decided.push_back({op, *config, function});
    });
    return decided;
  }

  /// PyTorch 1.13 FX's `torch.cat` rule: the inputs and the result of a
  /// concatenation share one observer, together with the values whose
  /// parameters an input carries (through max pooling, relu, ...); a
  /// result with fixed parameters (sigmoid, tanh) keeps them and is
  /// requantized.
  void shareConcatQParams(ArrayRef<OpWithoutWeights> decided,
                          ObserverInserter &inserter) {
    auto hasFixedQParams = [](Value value) {
      std::optional<UnaryFunction> function = getUnaryFunction(value);
      if (!function || !isUnaryFunctionResult(*function))
        return false;
      UnaryFunctionKind kind = function->classify();
      return kind == UnaryFunctionKind::sigmoid ||
             kind == UnaryFunctionKind::hardsigmoid ||
             kind == UnaryFunctionKind::tanh;
    };
    for (const OpWithoutWeights &entry : decided) {
      auto concat = dyn_cast<tosa::ConcatOp>(entry.op);
      if (!concat)
        continue;
      SmallVector<Value> values = {concat.getResult()};
      for (Value input : concat.getInput1()) {
        // The whole chain: whichever value of it gets observed (the source,
        // or the input when nothing observes the source) is in the class.
        SmallVector<Value> chain = {input};
        while (Value next = getSharedQParamsSource(chain.back()))
          chain.push_back(next);
        if (!hasFixedQParams(chain.back()) &&
            !matchPattern(chain.back(), m_Constant()))
          values.append(chain);
      }
      inserter.shareQParams(values);
    }
  }

  /// PyTorch 1.13 FX's rules for the ops without weights: their results,
  /// or their inputs.
  void observeOpsWithoutWeights(ArrayRef<OpWithoutWeights> decided,
                                ObserverInserter &inserter, bool results) {
    for (const OpWithoutWeights &entry : decided) {
      Operation *op = entry.op;
      const ObserverConfig &act = entry.config.activation;
      Value result = op->getResult(0);
      if (auto concat = dyn_cast<tosa::ConcatOp>(op)) {
        if (results)
          inserter.observeActivation(result, op, "out", act);
        else
          for (auto [i, input] : llvm::enumerate(concat.getInput1()))
            inserter.observeInput(input, op,
                                  i ? "in" + std::to_string(i) : "in", act);
        continue;
      }
      // Average pooling, padding and resizing share their input's
      // parameters (padding clamps its fill value to them, as PyTorch's
      // quantized F.pad does).
      if (isa<tosa::AvgPool2dOp, tosa::PadOp, tosa::ResizeOp>(op)) {
        if (!results)
          inserter.observeInput(op->getOperand(0), op, "in", act);
        continue;
      }
      const UnaryFunction &function = *entry.function;
      UnaryFunctionKind kind = function.classify();
      if ((kind == UnaryFunctionKind::silu &&
           llvm::is_contained(floatFunctions, "silu")) ||
          (kind == UnaryFunctionKind::gelu &&
           llvm::is_contained(floatFunctions, "gelu")))
        continue;
      if (!results) {
        inserter.observeInput(function.source, op, "in", act);
        continue;
      }
      bool isSigned = act.dtype == QuantDType::s8;
      switch (kind) {
      case UnaryFunctionKind::clamp:
        break; // shares its input's parameters
      case UnaryFunctionKind::sigmoid:
      case UnaryFunctionKind::hardsigmoid:
        inserter.observeFixed(result, op, 1.0 / 256, isSigned ? -128 : 0, act);
        break;
      case UnaryFunctionKind::tanh:
        inserter.observeFixed(result, op, 2.0 / 256, isSigned ? 0 : 128, act);
        break;
      default:
        inserter.observeActivation(result, op, "out", act);
      }
    }
  }

  QConfig defaultConfig;
  SmallVector<std::pair<std::string, QConfig>> overrideConfigs;
};

} // namespace
