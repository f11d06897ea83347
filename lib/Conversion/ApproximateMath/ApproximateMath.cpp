//===- ApproximateMath.cpp - --qnt-approximate-math -----------------------===//
//
// math.erf (GELU) has no LLVM intrinsic, so convert-to-llvm cannot lower it;
// math.exp, math.tanh and math.log lower to a libm call per element (also in
// vector code). All four become upstream's polynomial approximations: plain
// arith on scalars or vectors.
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

/// The functions rewritten: erf has no LLVM intrinsic; exp, tanh and log
/// have intrinsics that x86 and AArch64 lower to a libm call per element
/// (softmax, sigmoid, GELU's tanh form, LSTM gates, log_softmax).
constexpr StringLiteral kApproximated[] = {"erf", "exp", "tanh", "log"};

struct QntApproximateMathPass
    : qnt::impl::QntApproximateMathPassBase<QntApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      name.consume_front("math.");
      return llvm::is_contained(kApproximated, name);
    });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
