//===- EarlyDealloc.cpp - --qnt-early-dealloc -----------------------------===//
//
// MLIR's ownership-based buffer deallocation frees every buffer at the end of
// its block, so a model's intermediate tensors all stay alive until the
// model returns: 1 GB per call for a 12-layer BERT-base encoder at batch 8,
// more than the runtime's allocator keeps for reuse, so every call
// page-faulted half of it in again. This pass moves each `memref.dealloc`
// of an allocation of the same block to just after the last use of the
// buffer, its views and the addresses taken from it (calls use those only
// while they run: the runtime's kernels keep no pointer); the allocator then
// hands the same memory to the next tensors (peak live memory: the widest
// layer, not the whole model).
//
//===----------------------------------------------------------------------===//

#include "qnt/Conversion/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/CallInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace qnt {
#define GEN_PASS_DEF_QNTEARLYDEALLOCPASS
#include "qnt/Conversion/Passes.h.inc"
} // namespace qnt

using namespace mlir;

namespace {

/// True when `user` reads or writes through `value` (a load, store, copy
/// or linalg op on the buffer): what it returns is data, not an alias (an
/// address stored as data was refused where it was stored).
bool isAccessThrough(Operation *user, Value value) {
  auto effects = dyn_cast<MemoryEffectOpInterface>(user);
  if (!effects || isa<ViewLikeOpInterface>(user))
    return false;
  SmallVector<MemoryEffects::EffectInstance> instances;
  effects.getEffectsOnValue(value, instances);
  return !instances.empty();
}

/// The last op of `block` that uses `buffer` or an alias of it (a view,
/// its address as an index, integer or pointer, a region result it flows
/// into; uses inside a region count at the op of `block` that holds them),
/// other than `dealloc`. Values loaded through the buffer are data, not
/// aliases. Calls take pointers for their duration (the runtime's kernels
/// keep none). Failure when an alias goes where its uses cannot be seen:
/// stored to memory, yielded by an op without results, used by an op with
/// unknown effects, or outside `block`.
FailureOr<Operation *> lastUseInBlock(Value buffer, Operation *dealloc,
                                      Block &block) {
  Operation *last = nullptr;
  SmallVector<Value> worklist = {buffer};
  DenseSet<Value> seen = {buffer};
  auto follow = [&](ValueRange values) {
    for (Value v : values)
      if (seen.insert(v).second)
        worklist.push_back(v);
  };
  while (!worklist.empty()) {
    Value value = worklist.pop_back_val();
    for (OpOperand &use : value.getUses()) {
      Operation *user = use.getOwner();
      if (user == dealloc)
        continue;
      Operation *ancestor = block.findAncestorOpInBlock(*user);
      if (!ancestor)
        return failure();
      if (!last || last->isBeforeInBlock(ancestor))
        last = ancestor;
      if (isa<CallOpInterface>(user) || isAccessThrough(user, value))
        continue;
      if (user->hasTrait<OpTrait::IsTerminator>()) {
        // A yielded alias lives on in the results of the region's op.
        Operation *parent = user->getParentOp();
        if (parent->getNumResults() == 0)
          return failure();
        follow(parent->getResults());
        continue;
      }
      if (user->getNumRegions() > 0) {
        // Its uses of the region's arguments are inside it; an alias may
        // come out of its results.
        follow(user->getResults());
        continue;
      }
      if (!isa<ViewLikeOpInterface>(user) && !isMemoryEffectFree(user) &&
          !isa<memref::ExtractAlignedPointerAsIndexOp,
               memref::ExtractStridedMetadataOp>(user))
        return failure(); // e.g. the address stored as data
      follow(user->getResults());
    }
  }
  return last;
}

struct QntEarlyDeallocPass
    : qnt::impl::QntEarlyDeallocPassBase<QntEarlyDeallocPass> {
  void runOnOperation() override {
    SmallVector<memref::DeallocOp> deallocs;
    getOperation().walk([&](memref::DeallocOp op) { deallocs.push_back(op); });
    for (memref::DeallocOp dealloc : deallocs) {
      Block *block = dealloc->getBlock();
      auto alloc = dealloc.getMemref().getDefiningOp<memref::AllocOp>();
      if (!alloc || alloc->getBlock() != block)
        continue;
      FailureOr<Operation *> last =
          lastUseInBlock(alloc.getResult(), dealloc, *block);
      if (failed(last))
        continue;
      Operation *after = *last ? *last : alloc.getOperation();
      if (after->isBeforeInBlock(dealloc))
        dealloc->moveAfter(after);
    }
  }
};

} // namespace
