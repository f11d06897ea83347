//===- Vectorize.cpp - --qnt-vectorize ------------------------------------===//
//
// Vector codegen for the linalg.generic ops qnt generates itself (tables,
// requantization, pooling sums, float elementwise chains): simplify the
// iteration space, tile it into parallel chunks (scf.forall) and vector
// tiles (scf.for), and vectorize the tiles with upstream linalg::vectorize.
// Every tile size divides its dimension, so all shapes stay static and no
// masks or remainder loops are needed.
//
//===----------------------------------------------------------------------===//

#include "qnt/Conversion/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/Tensor/Transforms/Transforms.h"
#include "mlir/Dialect/Vector/Transforms/VectorRewritePatterns.h"
#include "mlir/Interfaces/TilingInterface.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/LoopInvariantCodeMotionUtils.h"

namespace qnt {
#define GEN_PASS_DEF_QNTVECTORIZEPASS
#include "qnt/Conversion/Passes.h.inc"
} // namespace qnt

using namespace mlir;

namespace {

/// Parallel chunks a large op is split into at least (the runtime hands
/// each thread a contiguous range of them).
constexpr int64_t kMinChunks = 64;

/// The longest innermost reduction vectorized as one vector per row (48
/// AVX-512 registers for a BERT-base layer norm's 768).
constexpr int64_t kMaxRowReduction = 4096;

/// The largest divisor of `n` that is at most `limit`.
static int64_t largestDivisorAtMost(int64_t n, int64_t limit) {
  for (int64_t d = std::min(n, limit); d > 1; --d)
    if (n % d == 0)
      return d;
  return 1;
}

static bool hasStaticTensorOperands(linalg::GenericOp op) {
  return op.hasPureTensorSemantics() &&
         llvm::all_of(op->getOperandTypes(), [](Type type) {
           auto tensor = dyn_cast<RankedTensorType>(type);
           return tensor && tensor.hasStaticShape();
         });
}

/// True when an operand or result holds i1: LLVM packs vectors of i1 into
/// bits but stores each i1 of an array in a byte, so a vector transfer of
/// a bool tensor would read the wrong elements; such ops stay scalar.
static bool hasBoolOperand(linalg::GenericOp op) {
  return llvm::any_of(op->getOperandTypes(), [](Type type) {
    return cast<ShapedType>(type).getElementType().isInteger(1);
  });
}

/// True when an operand is a slice of a larger tensor, also through an
/// expand_shape of one: collapsing it would need a copy (a concatenation's
/// input written in place into its result, attention's q/k/v slices of
/// the fused projection split into heads).
static bool hasSliceOperand(linalg::GenericOp op) {
  return llvm::any_of(op->getOperands(), [](Value v) {
    if (auto expand = v.getDefiningOp<tensor::ExpandShapeOp>())
      v = expand.getSrc();
    return v.getDefiningOp<tensor::ExtractSliceOp>() != nullptr;
  });
}

/// True when the body reads a tensor at a computed index (a table).
static bool hasDataDependentLoad(linalg::GenericOp op) {
  return !op.getBody()->getOps<tensor::ExtractOp>().empty();
}

/// True when every indexing map only permutes and drops loop dimensions
/// (no pooling window such as d1 * 2 + d3).
static bool hasPermutationMaps(linalg::GenericOp op) {
  return llvm::all_of(op.getIndexingMapsArray(), [](AffineMap map) {
    return map.isProjectedPermutation();
  });
}

/// `op` without its unit dimensions (operands reshaped with `strategy`),
/// or `op` itself when it has none.
static linalg::GenericOp dropUnitDimensions(
    RewriterBase &rewriter, linalg::GenericOp op,
    linalg::ControlDropUnitDims::RankReductionStrategy strategy) {
  rewriter.setInsertionPoint(op);
  linalg::ControlDropUnitDims options;
  options.rankReductionStrategy = strategy;
  FailureOr<linalg::DropUnitDimsResult> dropped =
      linalg::dropUnitDims(rewriter, op, options);
  if (failed(dropped))
    return op;
  rewriter.replaceOp(op, dropped->replacements);
  return cast<linalg::GenericOp>(dropped->resultOp.getOperation());
}

/// Drops unit dimensions and collapses runs of dimensions of one iterator
/// type that every indexing map keeps contiguous. Returns the new op.
static linalg::GenericOp simplifyIterationSpace(RewriterBase &rewriter,
                                                linalg::GenericOp op) {
  op = dropUnitDimensions(
      rewriter, op,
      linalg::ControlDropUnitDims::RankReductionStrategy::ReassociativeReshape);

  // areDimSequencesPreserved looks at dimension results only: a pooling
  // window (d1 * 2 + d3) is not collapsible.
  if (!hasPermutationMaps(op))
    return op;
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  SmallVector<ReassociationIndices> groups;
  ReassociationIndices current;
  auto flush = [&] {
    if (current.size() > 1)
      groups.push_back(current);
    current.clear();
  };
  for (int64_t dim = 0, e = op.getNumLoops(); dim < e; ++dim) {
    if (!current.empty()) {
      ReassociationIndices extended = current;
      extended.push_back(dim);
      if (iterators[dim] == iterators[current.front()] &&
          linalg::areDimSequencesPreserved(maps, {extended})) {
        current = std::move(extended);
        continue;
      }
      flush();
    }
    current.push_back(dim);
  }
  flush();
  if (groups.empty())
    return op;
  rewriter.setInsertionPoint(op);
  FailureOr<linalg::CollapseResult> collapsed =
      linalg::collapseOpIterationDims(op, groups, rewriter);
  if (failed(collapsed))
    return op;
  rewriter.replaceOp(op, collapsed->results);
  return cast<linalg::GenericOp>(collapsed->collapsedOp.getOperation());
}

/// True when `value` is computed in place into the slice `insert` writes
/// (its producer's init is that slice of the destination).
static bool isWrittenInPlace(Value value, tensor::InsertSliceOp insert) {
  auto producer = value.getDefiningOp<DestinationStyleOpInterface>();
  if (!producer)
    return false;
  auto slice = producer.getTiedOpOperand(cast<OpResult>(value))
                   ->get()
                   .getDefiningOp<tensor::ExtractSliceOp>();
  return slice && slice.getSource() == insert.getDest() &&
         slice.getMixedOffsets() == insert.getMixedOffsets() &&
         slice.getMixedSizes() == insert.getMixedSizes() &&
         slice.getMixedStrides() == insert.getMixedStrides();
}

/// The last `tensor.insert_slice` of the chain that builds a
/// concatenation, starting at `insert` (each insert's result is the next
/// one's destination and has no other use).
static tensor::InsertSliceOp lastOfChain(tensor::InsertSliceOp insert) {
  while (insert->hasOneUse()) {
    auto next = dyn_cast<tensor::InsertSliceOp>(*insert->user_begin());
    if (!next || next.getDest() != insert.getResult())
      break;
    insert = next;
  }
  return insert;
}

/// Makes the readers of `insert`'s source that come after the whole
/// concatenation read its slice of the concatenation instead. The source
/// is written in place into that slice; a later reader of the source
/// itself is a read after the concatenation's other writes, which
/// bufferization resolves by writing the source out of place and copying
/// it back with a strided `memref.copy`. (A dense block's input is
/// inserted into every concatenation of the block.)
static void readLaterUsesFromSlice(RewriterBase &rewriter,
                                   tensor::InsertSliceOp insert) {
  tensor::InsertSliceOp last = lastOfChain(insert);
  Block *block = insert->getBlock();
  SmallVector<OpOperand *> later;
  for (OpOperand &use : insert.getSource().getUses()) {
    Operation *user = block->findAncestorOpInBlock(*use.getOwner());
    if (user && last->isBeforeInBlock(user))
      later.push_back(&use);
  }
  if (later.empty())
    return;
  rewriter.setInsertionPointAfter(last);
  Value slice = tensor::ExtractSliceOp::create(
      rewriter, insert.getLoc(), insert.getSourceType(), last.getResult(),
      insert.getMixedOffsets(), insert.getMixedSizes(),
      insert.getMixedStrides());
  for (OpOperand *use : later)
    rewriter.modifyOpInPlace(use->getOwner(), [&] { use->set(slice); });
}

/// A concatenation's input that is not written in place (a kernel's
/// result) is copied into its slice by an explicit `linalg.generic`, which
/// is then vectorized and split across threads like the other generated
/// loops; bufferization would make it a `memref.copy` of a strided slice,
/// an element-by-element loop in MLIR's runtime library.
static void materializeCopy(RewriterBase &rewriter,
                            tensor::InsertSliceOp insert) {
  auto sourceType = dyn_cast<RankedTensorType>(insert.getSourceType());
  if (!sourceType || !sourceType.hasStaticShape() ||
      !insert.getDestType().hasStaticShape() ||
      sourceType.getRank() != insert.getDestType().getRank() ||
      sourceType.getRank() == 0)
    return;
  if (isWrittenInPlace(insert.getSource(), insert))
    return readLaterUsesFromSlice(rewriter, insert);
  Location loc = insert.getLoc();
  rewriter.setInsertionPoint(insert);
  Value slice = tensor::ExtractSliceOp::create(
      rewriter, loc, sourceType, insert.getDest(), insert.getMixedOffsets(),
      insert.getMixedSizes(), insert.getMixedStrides());
  AffineMap id = rewriter.getMultiDimIdentityMap(sourceType.getRank());
  SmallVector<utils::IteratorType> parallel(sourceType.getRank(),
                                            utils::IteratorType::parallel);
  auto copy = linalg::GenericOp::create(
      rewriter, loc, sourceType, ValueRange{insert.getSource()},
      ValueRange{slice}, ArrayRef<AffineMap>{id, id}, parallel,
      [](OpBuilder &b, Location loc, ValueRange args) {
        linalg::YieldOp::create(b, loc, args[0]);
      });
  rewriter.modifyOpInPlace(
      insert, [&] { insert.getSourceMutable().assign(copy.getResult(0)); });
}

/// Tiles `op` with `sizes` (0: not tiled) and returns the tiled op, or
/// `op` itself when no dimension is tiled.
static FailureOr<linalg::GenericOp>
tile(RewriterBase &rewriter, linalg::GenericOp op, ArrayRef<int64_t> sizes,
     scf::SCFTilingOptions::LoopType loopType) {
  if (llvm::all_of(sizes, [](int64_t s) { return s == 0; }))
    return op;
  scf::SCFTilingOptions options;
  options.setLoopType(loopType);
  options.setTileSizes(getAsIndexOpFoldResult(rewriter.getContext(), sizes));
  rewriter.setInsertionPoint(op);
  FailureOr<scf::SCFTilingResult> tiled = scf::tileUsingSCF(
      rewriter, cast<TilingInterface>(op.getOperation()), options);
  if (failed(tiled))
    return failure();
  rewriter.replaceOp(op, tiled->replacements);
  return cast<linalg::GenericOp>(tiled->tiledOps.back());
}

struct QntVectorizePass : qnt::impl::QntVectorizePassBase<QntVectorizePass> {
  using QntVectorizePassBase::QntVectorizePassBase;

  void runOnOperation() override {
    if (vectorSize < 1) {
      getOperation().emitError("qnt-vectorize: vector-size must be >= 1, got ")
          << vectorSize.getValue();
      return signalPassFailure();
    }
    IRRewriter rewriter(&getContext());
    SmallVector<tensor::InsertSliceOp> inserts;
    getOperation().walk(
        [&](tensor::InsertSliceOp op) { inserts.push_back(op); });
    for (tensor::InsertSliceOp op : inserts)
      materializeCopy(rewriter, op);
    // TOSA's transposes (attention's head split and merge) are named ops:
    // as generic ops they are tiled and vectorized like the rest (the
    // innermost dimension usually stays in place, so the vectors are
    // contiguous on both sides) instead of becoming scalar loops.
    SmallVector<linalg::TransposeOp> transposes;
    getOperation().walk(
        [&](linalg::TransposeOp op) { transposes.push_back(op); });
    for (linalg::TransposeOp op : transposes) {
      rewriter.setInsertionPoint(op);
      (void)linalg::generalizeNamedOp(rewriter, op);
    }
    SmallVector<linalg::GenericOp> candidates;
    getOperation().walk([&](linalg::GenericOp op) {
      if (hasStaticTensorOperands(op) && op.getNumLoops() > 0 &&
          !hasBoolOperand(op))
        candidates.push_back(op);
    });
    for (linalg::GenericOp op : candidates)
      vectorizeOne(rewriter, op);
    cleanUp();
  }

  void vectorizeOne(RewriterBase &rewriter, linalg::GenericOp op) {
    if (!hasSliceOperand(op))
      op = simplifyIterationSpace(rewriter, op);
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
    int64_t rank = ranges.size();
    if (rank == 0)
      return;
    if (iterators.back() == utils::IteratorType::reduction)
      return vectorizeRowReduction(rewriter, op);
    if (iterators.back() != utils::IteratorType::parallel)
      return;
    // One vector along the innermost dimension: contiguous in the output.
    int64_t lanes = largestDivisorAtMost(ranges.back(), vectorSize);
    if (lanes < 2)
      return;

    // Level 1: parallel chunks over the leading parallel dimensions.
    int64_t parallelElements = 1;
    for (auto [range, iterator] : llvm::zip(ranges, iterators))
      if (iterator == utils::IteratorType::parallel)
        parallelElements *= range;
    SmallVector<int64_t> chunk(rank, 0);
    if (parallel && parallelElements >= minParallelElements) {
      if (rank == 1) {
        int64_t vectors = ranges[0] / lanes;
        chunk[0] =
            lanes * largestDivisorAtMost(
                        vectors, std::max<int64_t>(1, vectors / kMinChunks));
      } else {
        int64_t chunks = 1;
        for (int64_t dim = 0; dim + 1 < rank && chunks < kMinChunks &&
                              iterators[dim] == utils::IteratorType::parallel;
             ++dim) {
          chunk[dim] = 1;
          chunks *= ranges[dim];
        }
        if (chunks == 1)
          chunk.assign(rank, 0);
      }
    }
    FailureOr<linalg::GenericOp> inner =
        tile(rewriter, op, chunk, scf::SCFTilingOptions::LoopType::ForallOp);
    if (failed(inner))
      return;

    // Level 2: vector tiles (1 along every other dimension).
    SmallVector<int64_t> tileRanges = inner->getStaticLoopRanges();
    SmallVector<int64_t> vectorTile(rank, 0);
    for (int64_t dim = 0; dim < rank; ++dim)
      vectorTile[dim] = dim + 1 == rank ? (tileRanges[dim] > lanes ? lanes : 0)
                                        : (tileRanges[dim] > 1 ? 1 : 0);
    // A table lookup stays scalar: x86 has no byte gather, and 64-bit
    // index gathers are slower than one load per element.
    if (hasDataDependentLoad(*inner))
      return;
    FailureOr<linalg::GenericOp> vectorOp = tile(
        rewriter, *inner, vectorTile, scf::SCFTilingOptions::LoopType::ForOp);
    if (failed(vectorOp))
      return;
    // A pooling window's unit dimensions (d1 * 2 + d3 with both of size 1)
    // go, which leaves maps the vectorizer takes. Through rank-reducing
    // slices, which fold into the vector transfers: a reshape of the tile
    // would make its write back a copy.
    if (!hasPermutationMaps(*vectorOp))
      vectorOp =
          dropUnitDimensions(rewriter, *vectorOp,
                             linalg::ControlDropUnitDims::
                                 RankReductionStrategy::ExtractInsertSlice);
    if (failed(linalg::vectorizeOpPrecondition(*vectorOp, {}, {},
                                               /*vectorizeNDExtract=*/true)))
      return;
    rewriter.setInsertionPoint(*vectorOp);
    FailureOr<linalg::VectorizationResult> result =
        linalg::vectorize(rewriter, *vectorOp, {}, {},
                          /*vectorizeNDExtract=*/true);
    if (succeeded(result))
      rewriter.replaceOp(*vectorOp, result->replacements);
  }

  /// Folds the tiles' slices into the vector transfers, drops the unit
  /// dimensions of the vectors (1-D vectors lower directly to LLVM) and
  /// hoists loop-invariant reads and writes of the accumulators.
  /// A reduction over the innermost dimension only (softmax's row max and
  /// sum, layer norm's mean and variance): parallel chunks of rows, each
  /// row one vector reduced at once (a tree: reassociated, see
  /// reassociateRowReductions).
  void vectorizeRowReduction(RewriterBase &rewriter, linalg::GenericOp op) {
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
    int64_t rank = ranges.size(), row = ranges.back();
    if (row < 2 || row > kMaxRowReduction ||
        llvm::count(iterators, utils::IteratorType::reduction) != 1 ||
        !hasPermutationMaps(op) || hasDataDependentLoad(op))
      return;
    int64_t rows = 1;
    for (int64_t dim = 0; dim + 1 < rank; ++dim)
      rows *= ranges[dim];
    SmallVector<int64_t> chunk(rank, 0);
    if (parallel && rows * row >= minParallelElements) {
      int64_t chunks = 1;
      for (int64_t dim = 0; dim + 1 < rank && chunks < kMinChunks; ++dim) {
        chunk[dim] = 1;
        chunks *= ranges[dim];
      }
    }
    FailureOr<linalg::GenericOp> inner =
        tile(rewriter, op, chunk, scf::SCFTilingOptions::LoopType::ForallOp);
    if (failed(inner))
      return;
    SmallVector<int64_t> rowTile(rank, 0);
    SmallVector<int64_t> tileRanges = inner->getStaticLoopRanges();
    for (int64_t dim = 0; dim + 1 < rank; ++dim)
      rowTile[dim] = tileRanges[dim] > 1 ? 1 : 0;
    FailureOr<linalg::GenericOp> rowOp =
        tile(rewriter, *inner, rowTile, scf::SCFTilingOptions::LoopType::ForOp);
    if (failed(rowOp) ||
        failed(linalg::vectorizeOpPrecondition(*rowOp, {}, {}, false)))
      return;
    rewriter.setInsertionPoint(*rowOp);
    FailureOr<linalg::VectorizationResult> result =
        linalg::vectorize(rewriter, *rowOp, {}, {}, false);
    if (succeeded(result))
      rewriter.replaceOp(*rowOp, result->replacements);
  }

  /// The 1-D reductions of whole rows (vectorizeRowReduction) as
  /// vector.reduction, with fastmath<reassoc> on floats: LLVM then sums a
  /// row as a tree of vector adds, not as a chain of one scalar add per
  /// element in order. Reassociating changes the rounding of a float sum by
  /// a few ulp (the tolerance of the FP32 tests covers it); max, min and
  /// integer sums (pooling windows) are exact.
  void reassociateRowReductions(RewriterBase &rewriter) {
    // vector<1x...x1xR> reduced over its last dimension into vector<1x..x1>
    // (or a scalar).
    SmallVector<vector::MultiDimReductionOp> reductions;
    getOperation().walk([&](vector::MultiDimReductionOp op) {
      VectorType source = op.getSourceVectorType();
      ArrayRef<int64_t> shape = source.getShape();
      if (!source.isScalable() && op.getReductionDims().size() == 1 &&
          op.getReductionDims()[0] == source.getRank() - 1 &&
          llvm::all_of(shape.drop_back(), [](int64_t d) { return d == 1; }))
        reductions.push_back(op);
    });
    for (vector::MultiDimReductionOp op : reductions) {
      rewriter.setInsertionPoint(op);
      Location loc = op.getLoc();
      VectorType source = op.getSourceVectorType();
      Value row = vector::ShapeCastOp::create(
          rewriter, loc,
          VectorType::get({source.getShape().back()}, source.getElementType()),
          op.getSource());
      Value acc = op.getAcc();
      if (auto accType = dyn_cast<VectorType>(acc.getType()))
        acc = vector::ExtractOp::create(
            rewriter, loc, acc, SmallVector<int64_t>(accType.getRank(), 0));
      Value reduced =
          vector::ReductionOp::create(rewriter, loc, op.getKind(), row, acc,
                                      isa<FloatType>(source.getElementType())
                                          ? arith::FastMathFlags::reassoc
                                          : arith::FastMathFlags::none);
      if (isa<VectorType>(op.getType()))
        reduced =
            vector::BroadcastOp::create(rewriter, loc, op.getType(), reduced);
      rewriter.replaceOp(op, reduced);
    }
  }

  void cleanUp() {
    MLIRContext *context = &getContext();
    IRRewriter rewriter(context);
    reassociateRowReductions(rewriter);
    RewritePatternSet patterns(context);
    vector::ShapeCastOp::getCanonicalizationPatterns(patterns, context);
    vector::BroadcastOp::getCanonicalizationPatterns(patterns, context);
    vector::ExtractOp::getCanonicalizationPatterns(patterns, context);
    vector::populateCastAwayVectorLeadingOneDimPatterns(patterns);
    vector::populateVectorTransferDropUnitDimsPatterns(patterns);
    tensor::populateFoldTensorSubsetIntoVectorTransferPatterns(patterns);
    vector::TransferReadOp::getCanonicalizationPatterns(patterns, context);
    vector::TransferWriteOp::getCanonicalizationPatterns(patterns, context);
    scf::ForOp::getCanonicalizationPatterns(patterns, context);
    scf::ForallOp::getCanonicalizationPatterns(patterns, context);
    tensor::ExtractSliceOp::getCanonicalizationPatterns(patterns, context);
    tensor::InsertSliceOp::getCanonicalizationPatterns(patterns, context);
    affine::AffineApplyOp::getCanonicalizationPatterns(patterns, context);
    affine::AffineMinOp::getCanonicalizationPatterns(patterns, context);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    getOperation().walk([&](scf::ForOp loop) {
      hoistLoopInvariantSubsets(rewriter,
                                cast<LoopLikeOpInterface>(loop.getOperation()));
    });
  }
};

} // namespace
