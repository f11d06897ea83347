//===- OutlineParallelLoops.cpp - --qnt-outline-parallel-loops -----------===//
//
// scf.forall on memrefs -> qnt_rt_parallel_for(body, context, n): the body
// is outlined into `void body(void *context, i64 begin, i64 end)`, which
// runs the iterations [begin, end) of the linearized iteration space; the
// values it uses from above are stored in a stack struct. Memrefs travel as
// their LLVM descriptors through unrealized casts, which the memref-to-LLVM
// conversion later makes real.
//
//===----------------------------------------------------------------------===//

#include "qnt/Conversion/Passes.h"

#include "mlir/Conversion/LLVMCommon/TypeConverter.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"

namespace qnt {
#define GEN_PASS_DEF_QNTOUTLINEPARALLELLOOPSPASS
#include "qnt/Conversion/Passes.h.inc"
} // namespace qnt

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kParallelFor = "qnt_rt_parallel_for";

/// Ops cloned into the outlined body instead of being passed in.
static bool isRematerializable(Operation *op) {
  return op->getNumOperands() == 0 && op->getNumRegions() == 0 &&
         isMemoryEffectFree(op);
}

struct OutlinedLoop {
  SmallVector<Value> captures;
  SmallVector<Operation *> rematerialized;
  SmallVector<Type> fields;
  SmallVector<int64_t> lowerBounds, steps, tripCounts;
};

/// What outlining `loop` needs, or failure when it cannot be outlined.
static FailureOr<OutlinedLoop> analyze(scf::ForallOp loop,
                                       const LLVMTypeConverter &converter) {
  if (loop.getNumResults() != 0)
    return failure();
  OutlinedLoop info;
  ArrayRef<int64_t> lbs = loop.getStaticLowerBound(),
                    ubs = loop.getStaticUpperBound(),
                    steps = loop.getStaticStep();
  for (auto [lb, ub, step] : llvm::zip(lbs, ubs, steps)) {
    if (ShapedType::isDynamic(lb) || ShapedType::isDynamic(ub) ||
        ShapedType::isDynamic(step) || step <= 0 || ub < lb)
      return failure();
    info.lowerBounds.push_back(lb);
    info.steps.push_back(step);
    info.tripCounts.push_back(llvm::divideCeil(ub - lb, step));
  }
  SetVector<Value> above;
  getUsedValuesDefinedAbove(loop.getRegion(), above);
  Type i64 = IntegerType::get(loop.getContext(), 64);
  for (Value value : above) {
    Operation *def = value.getDefiningOp();
    if (def && isRematerializable(def)) {
      info.rematerialized.push_back(def);
      continue;
    }
    Type type = value.getType(), field;
    if (isa<MemRefType>(type))
      field = converter.convertType(type);
    else if (isa<IndexType>(type))
      field = i64;
    else if (isa<IntegerType, FloatType>(type))
      field = type;
    if (!field)
      return failure();
    info.captures.push_back(value);
    info.fields.push_back(field);
  }
  return info;
}

/// `void name(ptr context, i64 begin, i64 end)` running the iterations
/// [begin, end) of `loop`.
static func::FuncOp outlineBody(OpBuilder &b, scf::ForallOp loop,
                                const OutlinedLoop &info,
                                LLVM::LLVMStructType contextType,
                                StringRef name) {
  Location loc = loop.getLoc();
  MLIRContext *ctx = b.getContext();
  Type ptr = LLVM::LLVMPointerType::get(ctx), i64 = b.getI64Type();
  auto body = func::FuncOp::create(b, loc, name,
                                   b.getFunctionType({ptr, i64, i64}, {}));
  body.setPrivate();
  Block *entry = body.addEntryBlock();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(entry);

  IRMapping map;
  if (!info.captures.empty()) {
    Value context =
        LLVM::LoadOp::create(b, loc, contextType, entry->getArgument(0));
    for (auto [i, value] : llvm::enumerate(info.captures)) {
      Value field = LLVM::ExtractValueOp::create(b, loc, context, i);
      Type type = value.getType();
      if (isa<MemRefType>(type))
        field = UnrealizedConversionCastOp::create(b, loc, type, field)
                    .getResult(0);
      else if (isa<IndexType>(type))
        field = arith::IndexCastOp::create(b, loc, type, field);
      map.map(value, field);
    }
  }
  for (Operation *op : info.rematerialized)
    b.clone(*op, map);

  Type index = b.getIndexType();
  Value begin =
      arith::IndexCastOp::create(b, loc, index, entry->getArgument(1));
  Value end = arith::IndexCastOp::create(b, loc, index, entry->getArgument(2));
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  auto iterations = scf::ForOp::create(b, loc, begin, end, one);
  b.setInsertionPointToStart(iterations.getBody());
  // Delinearize, innermost dimension fastest.
  Value rest = iterations.getInductionVar();
  SmallVector<Value> ivs(info.tripCounts.size());
  for (int64_t dim = info.tripCounts.size() - 1; dim >= 0; --dim) {
    Value count = arith::ConstantIndexOp::create(b, loc, info.tripCounts[dim]);
    Value position = rest;
    if (dim > 0) {
      position = arith::RemUIOp::create(b, loc, rest, count);
      rest = arith::DivUIOp::create(b, loc, rest, count);
    }
    Value iv = arith::MulIOp::create(
        b, loc, position,
        arith::ConstantIndexOp::create(b, loc, info.steps[dim]));
    ivs[dim] = arith::AddIOp::create(
        b, loc, iv,
        arith::ConstantIndexOp::create(b, loc, info.lowerBounds[dim]));
  }
  map.map(loop.getInductionVars(), ivs);
  for (Operation &op : loop.getBody()->without_terminator())
    b.clone(op, map);

  b.setInsertionPointToEnd(entry);
  func::ReturnOp::create(b, loc);
  return body;
}

/// Replaces `loop` by the context struct and the runtime call.
static void replaceWithCall(OpBuilder &b, scf::ForallOp loop,
                            const OutlinedLoop &info,
                            LLVM::LLVMStructType contextType,
                            func::FuncOp body) {
  Location loc = loop.getLoc();
  MLIRContext *ctx = b.getContext();
  Type ptr = LLVM::LLVMPointerType::get(ctx), i64 = b.getI64Type();
  Value context;
  if (info.captures.empty()) {
    b.setInsertionPoint(loop);
    context = LLVM::ZeroOp::create(b, loc, ptr);
  } else {
    // One slot per loop at the function's entry: the stack does not grow
    // when the loop sits inside another one.
    auto func = loop->getParentOfType<FunctionOpInterface>();
    b.setInsertionPointToStart(&func.getFunctionBody().front());
    Value count = LLVM::ConstantOp::create(b, loc, i64, 1);
    context = LLVM::AllocaOp::create(b, loc, ptr, contextType, count);
    b.setInsertionPoint(loop);
    Value aggregate = LLVM::PoisonOp::create(b, loc, contextType);
    for (auto [i, value] : llvm::enumerate(info.captures)) {
      Value field = value;
      if (isa<MemRefType>(value.getType()))
        field =
            UnrealizedConversionCastOp::create(b, loc, info.fields[i], value)
                .getResult(0);
      else if (isa<IndexType>(value.getType()))
        field = arith::IndexCastOp::create(b, loc, i64, value);
      aggregate = LLVM::InsertValueOp::create(b, loc, aggregate, field, i);
    }
    LLVM::StoreOp::create(b, loc, aggregate, context);
  }
  Value function = func::ConstantOp::create(b, loc, body.getFunctionType(),
                                            SymbolRefAttr::get(body));
  Value pointer =
      UnrealizedConversionCastOp::create(b, loc, ptr, function).getResult(0);
  int64_t total = 1;
  for (int64_t count : info.tripCounts)
    total *= count;
  Value n = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(total));
  func::CallOp::create(b, loc, kParallelFor, TypeRange{},
                       ValueRange{pointer, context, n});
  loop.erase();
}

struct QntOutlineParallelLoopsPass
    : qnt::impl::QntOutlineParallelLoopsPassBase<QntOutlineParallelLoopsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    LLVMTypeConverter converter(ctx);
    SymbolTable symbols(module);
    SmallVector<scf::ForallOp> loops;
    module.walk([&](scf::ForallOp loop) {
      if (!loop->getParentOfType<scf::ForallOp>())
        loops.push_back(loop);
    });
    if (loops.empty())
      return;

    OpBuilder b(ctx);
    Type ptr = LLVM::LLVMPointerType::get(ctx);
    if (!symbols.lookup(kParallelFor)) {
      b.setInsertionPointToEnd(module.getBody());
      auto decl = func::FuncOp::create(
          b, module.getLoc(), kParallelFor,
          b.getFunctionType({ptr, ptr, b.getI64Type()}, {}));
      decl.setPrivate();
      symbols.insert(decl);
    }
    unsigned counter = 0;
    for (scf::ForallOp loop : loops) {
      FailureOr<OutlinedLoop> info = analyze(loop, converter);
      if (failed(info))
        continue;
      auto contextType = LLVM::LLVMStructType::getLiteral(ctx, info->fields);
      auto parent = loop->getParentOfType<func::FuncOp>();
      std::string name =
          (parent.getSymName() + "_parallel_" + Twine(counter++)).str();
      b.setInsertionPointAfter(parent);
      func::FuncOp body = outlineBody(b, loop, *info, contextType, name);
      symbols.insert(body); // renames on a clash
      replaceWithCall(b, loop, *info, contextType, body);
    }
  }
};

} // namespace
