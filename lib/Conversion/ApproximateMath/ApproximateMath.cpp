//===- ApproximateMath.cpp - --qnt-approximate-math -----------------------===//
//
// math.erf (GELU) has no LLVM intrinsic, so convert-to-llvm cannot lower it:
// it becomes upstream's polynomial approximation, plain arith on scalars or
// vectors (no libm call per element).
//
//===----------------------------------------------------------------------===//

#include "qnt/Conversion/Passes.h"

#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace qnt {
#define GEN_PASS_DEF_QNTAPPROXIMATEMATHPASS
#include "qnt/Conversion/Passes.h.inc"
} // namespace qnt

using namespace mlir;

namespace {

struct QntApproximateMathPass
    : qnt::impl::QntApproximateMathPassBase<QntApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populatePolynomialApproximateErfPattern(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
