//===- FoldCalibration.cpp - --qnt-fold-calibration -----------------------===//
//
// Turns every qnt.observe into a quant.qcast / quant.dcast pair whose
// !quant.uniform type carries the scale and zero point PyTorch would compute
// from the same statistics.
//
//===----------------------------------------------------------------------===//

#include "qnt/Calibration/QParams.h"
#include "qnt/Calibration/Stats.h"
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

/// Min/max of a constant, per channel along `axis` or over the whole tensor.
static ObserverStats computeConstantStats(ArrayRef<float> data,
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

/// The !quant.uniform element type for `qspec` and per-channel (or single)
/// min/max ranges.
static Type buildQuantizedType(QSpecAttr qspec, const ObserverStats &stats) {
  MLIRContext *ctx = qspec.getContext();
  QTarget target{qspec.getQuantMin(), qspec.getQuantMax(),
                 qspec.getScheme() == QuantScheme::symmetric,
                 qspec.isSigned()};
  SmallVector<double> scales;
  SmallVector<int64_t> zeroPoints;
  for (size_t c = 0; c < stats.min.size(); ++c) {
    QParams params = computeQParams(stats.min[c], stats.max[c], target);
    scales.push_back(params.scale);
    zeroPoints.push_back(params.zeroPoint);
  }
  unsigned flags = qspec.isSigned() ? quant::QuantizationFlags::Signed : 0;
  Type storage = IntegerType::get(ctx, 8);
  Type expressed = Float32Type::get(ctx);
  if (qspec.isPerChannel())
    return quant::UniformQuantizedPerAxisType::get(
        flags, storage, expressed, scales, zeroPoints, *qspec.getAxis(),
        target.quantMin, target.quantMax);
  return quant::UniformQuantizedType::get(flags, storage, expressed,
                                          scales[0], zeroPoints[0],
                                          target.quantMin, target.quantMax);
}

struct QntFoldCalibrationPass
    : qnt::impl::QntFoldCalibrationPassBase<QntFoldCalibrationPass> {
  using QntFoldCalibrationPassBase::QntFoldCalibrationPassBase;

  /// Statistics of `op`: from its constant input, else from the file.
  FailureOr<ObserverStats> getStats(ObserveOp op, const StatsFile *file) {
    auto type = cast<ShapedType>(op.getInput().getType());
    if (auto data = getConstantFloats(op.getInput()))
      return computeConstantStats(*data, type, op.getQspec().getAxis());
    if (!file)
      return op.emitError("observer '")
             << op.getId()
             << "' needs calibration statistics: pass stats=FILE";
    auto it = file->observers.find(op.getId());
    if (it == file->observers.end())
      return op.emitError("no statistics for observer '")
             << op.getId() << "' in '" << statsFile << "'";
    const ObserverStats &stats = it->second;
    if (stats.min.empty())
      return op.emitError("observer '")
             << op.getId() << "' has no finite range (it saw no finite value)";
    if (stats.kind != stringifyObserverKind(op.getKind()))
      return op.emitError("observer '")
             << op.getId() << "' is '" << stringifyObserverKind(op.getKind())
             << "' but its statistics are '" << stats.kind << "'";
    int64_t channels =
        op.getQspec().isPerChannel()
            ? type.getDimSize(*op.getQspec().getAxis())
            : 1;
    if ((int64_t)stats.min.size() != channels)
      return op.emitError("observer '")
             << op.getId() << "' has " << stats.min.size()
             << " channel statistics, expected " << channels;
    return stats;
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

    SmallVector<ObserveOp> observers;
    getOperation().walk([&](ObserveOp op) { observers.push_back(op); });
    bool failed = false;
    for (ObserveOp op : observers) {
      FailureOr<ObserverStats> stats =
          getStats(op, file ? &*file : nullptr);
      if (mlir::failed(stats)) {
        failed = true;
        continue;
      }
      if (stats->nonfinite)
        op.emitWarning("observer '")
            << op.getId() << "' saw " << stats->nonfinite
            << " NaN/Inf value(s); they are excluded from its range";
      auto isFinite = [](float v) { return std::isfinite(v); };
      if (!llvm::all_of(stats->min, isFinite) ||
          !llvm::all_of(stats->max, isFinite)) {
        op.emitError("observer '")
            << op.getId() << "' has a channel without finite values";
        failed = true;
        continue;
      }
      auto type = cast<RankedTensorType>(op.getInput().getType());
      Type qtype = type.clone(buildQuantizedType(op.getQspec(), *stats));
      OpBuilder builder(op);
      Value q = quant::QuantizeCastOp::create(builder, op.getLoc(), qtype,
                                              op.getInput());
      Value dq =
          quant::DequantizeCastOp::create(builder, op.getLoc(), type, q);
      op.replaceAllUsesWith(dq);
      op.erase();
    }
    if (failed)
      signalPassFailure();
  }
};

} // namespace
