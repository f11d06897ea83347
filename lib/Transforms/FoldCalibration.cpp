//===- FoldCalibration.cpp - --qnt-fold-calibration -----------------------===//
//
// Turns every qnt.observe into a quant.qcast / quant.dcast pair whose
// !quant.uniform type carries the scale and zero point PyTorch would compute
// from the same statistics.
//
//===----------------------------------------------------------------------===//

#include "qnt/Calibration/QParams.h"
#include "qnt/Calibration/Range.h"
#include "qnt/Calibration/Stats.h"
#include "qnt/Support/SizeLimits.h"
#include "qnt/Transforms/Passes.h"
#include "qnt/Transforms/Utils.h"

#include "mlir/Dialect/Quant/IR/Quant.h"

#include <cmath>

namespace qnt {
#define GEN_PASS_DEF_QNTFOLDCALIBRATIONPASS
#include "qnt/Transforms/Passes.h.inc"
} // namespace qnt

using namespace mlir;
using namespace qnt;

namespace {

static QTarget getTarget(QSpecAttr qspec) {
  return {qspec.getQuantMin(), qspec.getQuantMax(),
          qspec.getScheme() == QuantScheme::symmetric, qspec.isSigned(),
          qspec.getEpsOrDefault()};
}

/// How the range of `op` follows from its statistics, and the kind of
/// statistics that must back it.
static std::pair<RangeOptions, StringRef> getRangeOptions(ObserveOp op) {
  RangeOptions options;
  options.target = getTarget(op.getQspec());
  switch (op.getKind()) {
  case ObserverKind::histogram:
    options.method = RangeMethod::HistogramL2;
    return {options, "histogram"};
  case ObserverKind::percentile:
    options.method = RangeMethod::Percentile;
    options.percentile = op.getPercentileOrDefault();
    return {options, "histogram"};
  case ObserverKind::entropy:
    options.method = RangeMethod::Entropy;
    return {options, "histogram"};
  default:
    options.method = RangeMethod::MinMax;
    return {options, stringifyObserverKind(op.getKind())};
  }
}

struct QntFoldCalibrationPass
    : qnt::impl::QntFoldCalibrationPassBase<QntFoldCalibrationPass> {
  using QntFoldCalibrationPassBase::QntFoldCalibrationPassBase;

  /// The calibrated [min, max] of every channel of `op`: from its constant
  /// input (weights: their min / max), else from the statistics file.
  FailureOr<std::vector<std::pair<float, float>>>
  getRanges(ObserveOp op, const StatsFile *file) {
    auto type = cast<ShapedType>(op.getInput().getType());
    auto [options, statsKind] = getRangeOptions(op);
    ObserverStats constantStats;
    const ObserverStats *stats = &constantStats;
    if (auto data = getConstantFloats(op.getInput())) {
      constantStats =
          computeConstantStats(*data, type, op.getQspec().getAxis());
      options.method = RangeMethod::MinMax;
    } else {
      if (!file)
        return op.emitError("observer '")
               << op.getId()
               << "' needs calibration statistics: pass stats=FILE";
      auto it = file->observers.find(op.getId());
      if (it == file->observers.end()) {
        // Ids come from locations: a file written without
        // --mlir-print-debuginfo numbers them instead (op0:in, ...).
        SmallVector<StringRef> known;
        for (const auto &entry : file->observers)
          known.push_back(entry.getKey());
        llvm::sort(known);
        known.resize(std::min<size_t>(known.size(), 4));
        return op.emitError("no statistics for observer '")
               << op.getId() << "' in '" << statsFile << "' (it has "
               << llvm::join(known, ", ")
               << (file->observers.size() > known.size() ? ", ..." : "")
               << "; observer ids come from locations: keep them with "
                  "--mlir-print-debuginfo)";
      }
      stats = &it->second;
      if (stats->min.empty())
        return op.emitError("observer '")
               << op.getId()
               << "' has no finite range (it saw no finite value)";
      if (stats->kind != statsKind)
        return op.emitError("observer '")
               << op.getId() << "' is '" << stringifyObserverKind(op.getKind())
               << "' but its statistics are '" << stats->kind << "'";
      int64_t channels = op.getQspec().isPerChannel()
                             ? type.getDimSize(*op.getQspec().getAxis())
                             : 1;
      if ((int64_t)stats->min.size() != channels)
        return op.emitError("observer '")
               << op.getId() << "' has " << stats->min.size()
               << " channel statistics, expected " << channels;
    }
    if (stats->nonfinite)
      op.emitWarning("observer '")
          << op.getId() << "' saw " << stats->nonfinite
          << " NaN/Inf value(s); they are excluded from its range";
    auto ranges = computeCalibratedRanges(*stats, options);
    if (!ranges)
      return op.emitError("observer '")
             << op.getId() << "': " << llvm::toString(ranges.takeError());
    return std::move(*ranges);
  }

  void runOnOperation() override {
    std::optional<StatsFile> file;
    if (!statsFile.empty()) {
      llvm::Expected<StatsFile> read = readStatsFile(statsFile);
      if (!read) {
        getOperation().emitError(llvm::toString(read.takeError()));
        return signalPassFailure();
      }
      file = std::move(*read);
    }

    if (mlir::failed(verifyObserverIds(getOperation())) ||
        mlir::failed(verifyConstantSizes(getOperation())))
      return signalPassFailure();
    SmallVector<ObserveOp> observers;
    getOperation().walk([&](ObserveOp op) { observers.push_back(op); });
    bool failed = false;
    for (ObserveOp op : observers) {
      auto type = cast<RankedTensorType>(op.getInput().getType());
      Type element;
      if (op.getKind() == ObserverKind::fixed_qparams) {
        // Given, not observed: no statistics.
        element = buildUniformQuantizedType(
            &getContext(), getTarget(op.getQspec()),
            ArrayRef<double>{op.getFixedScale()->convertToDouble()},
            ArrayRef<int64_t>{*op.getFixedZeroPoint()}, std::nullopt,
            clampToQuantRange);
      } else {
        FailureOr<std::vector<std::pair<float, float>>> ranges =
            getRanges(op, file ? &*file : nullptr);
        if (mlir::failed(ranges)) {
          failed = true;
          continue;
        }
        std::vector<float> mins, maxs;
        for (auto [lo, hi] : *ranges) {
          mins.push_back(lo);
          maxs.push_back(hi);
        }
        llvm::Expected<Type> computed = buildUniformQuantizedType(
            &getContext(), getTarget(op.getQspec()), mins, maxs,
            op.getQspec().getAxis(), clampToQuantRange);
        if (!computed) {
          op.emitError("observer '")
              << op.getId() << "': " << llvm::toString(computed.takeError());
          failed = true;
          continue;
        }
        element = *computed;
      }
      Type qtype = type.clone(element);
      OpBuilder builder(op);
      Value q = quant::QuantizeCastOp::create(builder, op.getLoc(), qtype,
                                              op.getInput());
      Value dq = quant::DequantizeCastOp::create(builder, op.getLoc(), type, q);
      op.replaceAllUsesWith(dq);
      op.erase();
    }
    if (failed)
      signalPassFailure();
  }
};

} // namespace
