//===- quant-run.cpp - JIT-run a qnt module on NumPy data -----------------===//
//
//   quant-run model.mlir -i input.npz -o output.npz
//   quant-run prepared.mlir --calibrate calib.npz --stats-file stats.json
//   quant-run prepared.mlir --calibrate more.npz --resume-stats stats.json
//             --stats-file stats2.json
//   quant-run model.mlir -i input.npz --bench 100
//
// The module may be at any level: float TOSA/qnt IR, quantized IR, or
// already lowered; what is not yet llvm is lowered with qnt-lower-pipeline.
//
//===----------------------------------------------------------------------===//

#include "qnt/Calibration/Stats.h"
#include "qnt/Dialect/Qnt/QntOps.h"
#include "qnt/InitAll.h"
#include "qnt/Pipelines/Pipelines.h"
#include "qnt/Runtime.h"
#include "qnt/Support/EntrySignature.h"
#include "qnt/Support/NpyIO.h"
#include "qnt/Support/SizeLimits.h"
#include "qnt/Transforms/Utils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Quant/IR/QuantTypes.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Target/TargetMachine.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <limits>

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory category("quant-run options");

static cl::opt<std::string>
    inputFilename(cl::Positional, cl::desc("<module.mlir>"), cl::cat(category));
static cl::list<std::string>
    inputData("i",
              cl::desc("Input data (.npz, or .npy for a single argument); "
                       "arrays are matched to arguments by name and must "
                       "have their dtype (f32 <f4, i64 <i8, i32 <i4, i1 "
                       "bool) and shape; ids are checked against the "
                       "argument's qnt.valid_range"),
              cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string>
    outputFilename("o",
                   cl::desc("Write the results to this .npz file, named by "
                            "their qnt.name attribute, else output (one "
                            "result) or output0, output1, ..."),
                   cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string> entryPoint("entry",
                                       cl::desc("Function to run (default: "
                                                "main)"),
                                       cl::init("main"), cl::cat(category));
static cl::opt<std::string> calibrationData(
    "calibrate",
    cl::desc("Run every sample of this .npz (arrays with a leading sample "
             "axis) through the observers and write --stats-file; stored "
             "(np.savez) archives are read one sample at a time"),
    cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string> resumeStats(
    "resume-stats",
    cl::desc("With --calibrate: continue the observers from this statistics "
             "file (written by --calibrate of the same module), as if its "
             "samples had been run first in this process"),
    cl::value_desc("file"), cl::cat(category));
static cl::list<std::string> mergeInputs(
    "merge-stats",
    cl::desc("Merge these statistics files (from several calibration runs) "
             "into --stats-file; no module is needed"),
    cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string>
    statsFilename("stats-file",
                  cl::desc("Statistics file written by --calibrate"),
                  cl::value_desc("file"), cl::cat(category));
static cl::opt<unsigned>
    benchRuns("bench",
              cl::desc("Run N timed iterations and print the median latency"),
              cl::init(0), cl::cat(category));
static cl::opt<unsigned> warmupRuns("warmup",
                                    cl::desc("Untimed runs before --bench"),
                                    cl::init(3), cl::cat(category));
static constexpr unsigned kMaxNumThreads = QNT_RT_MAX_NUM_THREADS;
static cl::opt<unsigned>
    numThreads("num-threads",
               cl::desc("Kernel threads (0: default; at most 1024)"),
               cl::init(0), cl::cat(category));
static cl::opt<std::string>
    backend("backend",
            cl::desc("Kernel library the module is lowered for: onednn "
                     "(exact everywhere), xnnpack or auto"),
            cl::init("onednn"), cl::cat(category));
static cl::opt<bool> eachSample(
    "samples",
    cl::desc("The -i arrays carry a leading sample axis: run every sample "
             "and write the outputs stacked along that axis"),
    cl::init(false), cl::cat(category));
static cl::opt<bool> printResults("print",
                                  cl::desc("Print the results to stdout"),
                                  cl::init(false), cl::cat(category));
static cl::opt<bool> quiet("quiet", cl::desc("No progress output"),
                           cl::init(false), cl::cat(category));

namespace {

using qnt::TensorSignature;

/// A strided memref descriptor of any rank, laid out as the llvm dialect's
/// {ptr, ptr, i64, [R x i64], [R x i64]} struct.
struct MemRefDescriptor {
  explicit MemRefDescriptor(size_t rank) : words(3 + 2 * rank, 0) {}
  std::vector<int64_t> words;
  void *allocated() const { return reinterpret_cast<void *>(words[0]); }
  void *aligned() const { return reinterpret_cast<void *>(words[1]); }
};

std::string formatShape(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

/// The NumPy dtypes that may feed an element type.
SmallVector<qnt::NpyDType> getCompatibleDTypes(Type type) {
  using qnt::NpyDType;
  if (auto qtype = dyn_cast<quant::QuantizedType>(type))
    type = qtype.getStorageType();
  if (type.isF32())
    return {NpyDType::F32};
  if (type.isInteger(8))
    return {NpyDType::I8, NpyDType::U8};
  if (type.isInteger(16))
    return {NpyDType::I16};
  if (type.isInteger(32))
    return {NpyDType::I32};
  if (type.isInteger(64))
    return {NpyDType::I64};
  if (type.isInteger(1))
    return {NpyDType::Bool};
  return {};
}

std::optional<qnt::NpyDType> getOutputDType(Type type) {
  if (auto qtype = dyn_cast<quant::QuantizedType>(type))
    return qtype.isSigned() ? qnt::NpyDType::I8 : qnt::NpyDType::U8;
  SmallVector<qnt::NpyDType> dtypes = getCompatibleDTypes(type);
  if (dtypes.empty())
    return std::nullopt;
  return dtypes[0];
}

/// What the runtime records for one observer of the module (the
/// parameters its qnt_rt_observe calls pass).
struct ObserverInfo {
  std::string statsKind; ///< The statistics file's kind.
  qnt_rt_observe_params params{};
  float averagingConstant = 0.0f;
};

class Runner {
public:
  LogicalResult load(MLIRContext &context);
  LogicalResult run(ArrayRef<const qnt::NpyArray *> inputs,
                    std::vector<qnt::NpyArray> *outputs);

  std::vector<TensorSignature> arguments, results;
  /// The module's observers by id (fixed_qparams ones record nothing).
  llvm::StringMap<ObserverInfo> observers;

private:
  LogicalResult readSignature(func::FuncOp func);
  void collectObservers(ModuleOp module);
  std::unique_ptr<llvm::TargetMachine> hostMachine;
  /// ExecutionEngineOptions::transformer is a function_ref to this: it must
  /// live as long as the engine may call it.
  std::function<llvm::Error(llvm::Module *)> optimizer;
  std::unique_ptr<ExecutionEngine> engine;
};

llvm::Error makeError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

LogicalResult fail(const Twine &message) {
  llvm::WithColor::error(llvm::errs(), "quant-run") << message << "\n";
  return failure();
}

LogicalResult Runner::readSignature(func::FuncOp func) {
  FailureOr<qnt::EntrySignature> sig = qnt::readEntrySignature(func);
  if (failed(sig))
    return failure();
  for (const TensorSignature &t :
       llvm::concat<const TensorSignature>(sig->arguments, sig->results))
    if (getCompatibleDTypes(t.elementType).empty())
      return fail("'" + entryPoint + "': unsupported element type of " +
                  t.name);
  arguments = std::move(sig->arguments);
  results = std::move(sig->results);
  return success();
}

/// Observers record statistics only with --calibrate (whose statistics
/// need unique ids); without it they are identities and the model runs in
/// float, which is worth a warning.
static LogicalResult checkObservers(ModuleOp module) {
  unsigned numObservers = 0;
  module.walk([&](qnt::ObserveOp) { ++numObservers; });
  if (calibrationData.empty()) {
    if (numObservers)
      llvm::WithColor::warning(llvm::errs(), "quant-run")
          << "'" << inputFilename << "' has " << numObservers
          << " qnt.observe op(s): without --calibrate they record nothing "
             "and the model runs in float (fold them with "
             "--qnt-fold-calibration to run quantized)\n";
    return success();
  }
  if (!numObservers)
    llvm::WithColor::warning(llvm::errs(), "quant-run")
        << "'" << inputFilename
        << "' has no qnt.observe ops: the statistics file will list no "
           "observers (prepare the module with --qnt-prepare first)\n";
  return qnt::verifyObserverIds(module);
}

void Runner::collectObservers(ModuleOp module) {
  module.walk([&](qnt::ObserveOp op) {
    if (op.getKind() == qnt::ObserverKind::fixed_qparams)
      return;
    ObserverInfo info;
    info.statsKind = op.isHistogramKind()
                         ? qnt::stats_kind::kHistogram
                         : qnt::stringifyObserverKind(op.getKind()).str();
    qnt_rt_observe_params &p = info.params;
    p.channels = 1;
    if (qnt::isPerChannelStatsKind(info.statsKind))
      if (std::optional<int64_t> axis = op.getQspec().getAxis())
        p.channels = cast<RankedTensorType>(op.getType()).getDimSize(*axis);
    if (op.isHistogramKind()) {
      p.kind = QNT_RT_OBS_HISTOGRAM;
      p.bins = op.getBinsOrDefault();
      p.upsample_rate = op.getUpsampleRateOrDefault();
    } else {
      p.kind = info.statsKind == qnt::stats_kind::kMinMax ? QNT_RT_OBS_MINMAX
               : info.statsKind == qnt::stats_kind::kPerChannelMinMax
                   ? QNT_RT_OBS_PER_CHANNEL_MINMAX
               : info.statsKind == qnt::stats_kind::kMovingAverageMinMax
                   ? QNT_RT_OBS_MOVING_AVERAGE_MINMAX
                   : QNT_RT_OBS_MOVING_AVERAGE_PER_CHANNEL_MINMAX;
      if (p.kind == QNT_RT_OBS_MOVING_AVERAGE_MINMAX ||
          p.kind == QNT_RT_OBS_MOVING_AVERAGE_PER_CHANNEL_MINMAX)
        info.averagingConstant = op.getAveragingConstantOrDefault();
    }
    observers[op.getId()] = std::move(info);
  });
}

LogicalResult Runner::load(MLIRContext &context) {
  std::string error;
  auto file = openInputFile(inputFilename, &error);
  if (!file)
    return fail(error);
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(file), SMLoc());
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return fail("cannot parse '" + inputFilename + "'");

  auto func = module->lookupSymbol<func::FuncOp>(entryPoint);
  if (!func || func.isExternal())
    return fail("'" + inputFilename + "' has no function '" + entryPoint +
                "' (choose one with --entry)");
  if (failed(readSignature(func)) ||
      failed(qnt::verifyConstantSizes(*module)) ||
      failed(qnt::verifyQuantizedTypes(*module)))
    return failure();
  if (failed(checkObservers(*module)))
    return failure();
  collectObservers(*module);

  PassManager pm(&context);
  qnt::LowerPipelineOptions options;
  options.backend = backend;
  qnt::buildLowerPipeline(pm, options);
  if (failed(pm.run(*module)))
    return fail("cannot lower '" + inputFilename + "' to executable code");

  // Optimize for the host CPU (as the JIT generates code for it): without a
  // target machine the loop vectorizer sees no vector registers and the
  // float ops compiled into the model stay scalar.
  auto machineBuilder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!machineBuilder)
    return fail("cannot detect the host CPU: " +
                llvm::toString(machineBuilder.takeError()));
  auto machine = machineBuilder->createTargetMachine();
  if (!machine)
    return fail("cannot create a target machine for the host: " +
                llvm::toString(machine.takeError()));
  hostMachine = std::move(*machine);
  optimizer = makeOptimizingTransformer(/*optLevel=*/3, /*sizeLevel=*/0,
                                        hostMachine.get());
  ExecutionEngineOptions engineOptions;
  engineOptions.transformer = optimizer;
  auto created = ExecutionEngine::create(*module, engineOptions);
  if (!created)
    return fail("JIT compilation failed: " +
                llvm::toString(created.takeError()));
  engine = std::move(*created);
  return success();
}

/// Copies a returned memref (descriptor `words`, possibly strided) into a
/// dense array.
qnt::NpyArray copyResult(const TensorSignature &sig, const int64_t *words) {
  size_t rank = sig.shape.size();
  qnt::NpyArray array;
  array.name = sig.name;
  array.dtype = *getOutputDType(sig.elementType);
  array.shape = sig.shape;
  size_t elementSize = qnt::getNpyElementSize(array.dtype);
  auto *aligned =
      reinterpret_cast<const uint8_t *>(words[1]) + words[2] * elementSize;
  int64_t n = sig.getNumElements();
  array.data.resize(n * elementSize);
  for (int64_t linear = 0; linear < n; ++linear) {
    int64_t rem = linear, srcOffset = 0;
    for (int64_t d = rank - 1; d >= 0; --d) {
      srcOffset += (rem % sig.shape[d]) * words[3 + rank + d];
      rem /= sig.shape[d];
    }
    std::memcpy(&array.data[linear * elementSize],
                aligned + srcOffset * elementSize, elementSize);
  }
  return array;
}

LogicalResult Runner::run(ArrayRef<const qnt::NpyArray *> inputs,
                          std::vector<qnt::NpyArray> *outputs) {
  // Expanded memref arguments: allocated, aligned, offset, sizes, strides.
  std::vector<MemRefDescriptor> argDescs;
  for (auto [sig, array] : llvm::zip(arguments, inputs)) {
    MemRefDescriptor desc(sig.shape.size());
    auto *data = const_cast<uint8_t *>(array->data.data());
    desc.words[0] = desc.words[1] = reinterpret_cast<int64_t>(data);
    int64_t stride = 1;
    for (int64_t d = sig.shape.size() - 1; d >= 0; --d) {
      desc.words[3 + d] = sig.shape[d];
      desc.words[3 + sig.shape.size() + d] = stride;
      stride *= sig.shape[d];
    }
    argDescs.push_back(std::move(desc));
  }
  std::vector<void *> packed;
  for (MemRefDescriptor &desc : argDescs)
    for (int64_t &word : desc.words)
      packed.push_back(&word);
  // Results come back as one struct of descriptors: consecutive i64 words.
  size_t resultWords = 0;
  for (const TensorSignature &sig : results)
    resultWords += 3 + 2 * sig.shape.size();
  std::vector<int64_t> resultStorage(resultWords, 0);
  if (!results.empty())
    packed.push_back(resultStorage.data());

  if (llvm::Error error = engine->invokePacked(entryPoint, packed))
    return fail("running '" + entryPoint +
                "' failed: " + llvm::toString(std::move(error)));

  size_t offset = 0;
  // Copy every result before freeing any: several may share a buffer.
  llvm::SmallPtrSet<void *, 8> owned;
  for (const TensorSignature &sig : results) {
    size_t rank = sig.shape.size();
    int64_t *words = &resultStorage[offset];
    offset += 3 + 2 * rank;
    auto *allocated = reinterpret_cast<void *>(words[0]);
    if (outputs)
      outputs->push_back(copyResult(sig, words));
    // Buffers the module allocated are ours to free; globals carry the
    // 0xdeadbeef marker and arguments are owned by the caller.
    bool isArgument = llvm::any_of(inputs, [&](const qnt::NpyArray *a) {
      return a->data.data() == allocated;
    });
    if (allocated && allocated != reinterpret_cast<void *>(0xdeadbeef) &&
        !isArgument)
      owned.insert(allocated);
  }
  for (void *buffer : owned)
    qnt_rt_buffer_free(buffer);
  return success();
}

/// "[1, 2]": the index of element `linear` of a C-ordered `shape`.
std::string formatIndex(ArrayRef<int64_t> shape, int64_t linear) {
  SmallVector<int64_t> index(shape.size());
  for (int64_t d = shape.size() - 1; d >= 0; --d) {
    index[d] = linear % shape[d];
    linear /= shape[d];
  }
  return formatShape(index);
}

/// Checks the values of an input the model cannot take any value of: ids
/// outside the argument's qnt.valid_range (an embedding would read outside
/// its table) and bools other than 0 and 1.
llvm::Error checkValues(const TensorSignature &sig, const qnt::NpyArray &array,
                        StringRef source,
                        std::optional<int64_t> sample = std::nullopt) {
  int64_t n = array.getNumElements();
  auto valueAt = [&](int64_t i) -> int64_t {
    switch (array.dtype) {
    case qnt::NpyDType::I64: {
      int64_t v;
      std::memcpy(&v, &array.data[i * 8], 8);
      return v;
    }
    case qnt::NpyDType::I32: {
      int32_t v;
      std::memcpy(&v, &array.data[i * 4], 4);
      return v;
    }
    default:
      return array.data[i];
    }
  };
  std::optional<std::pair<int64_t, int64_t>> range = sig.validRange;
  if (array.dtype == qnt::NpyDType::Bool)
    range = {0, 2};
  if (!range)
    return llvm::Error::success();
  // `array` is one sample of a data set: its index in the set's array.
  auto indexOf = [&](ArrayRef<int64_t> shape, int64_t i) {
    std::string index = formatIndex(shape, i);
    if (sample)
      index.insert(1, std::to_string(*sample) + (shape.empty() ? "" : ","));
    return index;
  };
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = valueAt(i);
    if (v >= range->first && v < range->second)
      continue;
    if (array.dtype == qnt::NpyDType::Bool)
      return makeError("input '" + sig.name + "' in " + source + ": element " +
                       indexOf(array.shape, i) + " of a bool array is " +
                       std::to_string(v) + ", not 0 or 1");
    return makeError("input '" + sig.name + "' in " + source + ": element " +
                     indexOf(array.shape, i) + " is " + std::to_string(v) +
                     ", outside the valid range [" +
                     std::to_string(range->first) + ", " +
                     std::to_string(range->second) +
                     ") (qnt.valid_range: token ids of an embedding)");
  }
  return llvm::Error::success();
}

/// Finds the array feeding each argument; `sampleAxis` means the arrays have
/// a leading axis of samples.
llvm::Expected<std::vector<const qnt::NpyArray *>>
matchInputs(const std::vector<TensorSignature> &arguments,
            ArrayRef<qnt::NpyArray> arrays, StringRef source, bool sampleAxis,
            int64_t &numSamples, bool checkData = true) {
  std::vector<const qnt::NpyArray *> matched;
  numSamples = -1;
  for (const TensorSignature &sig : arguments) {
    const qnt::NpyArray *found = nullptr;
    for (const qnt::NpyArray &array : arrays)
      if (array.name == sig.name)
        found = &array;
    // A lone .npy feeds a lone argument whatever its name.
    if (!found && arrays.size() == 1 && arguments.size() == 1 &&
        StringRef(source).ends_with(".npy"))
      found = &arrays[0];
    if (!found)
      return makeError(
          "missing input '" + sig.name + "' in " + source + " (it has: " +
          llvm::join(llvm::map_range(
                         arrays, [](const qnt::NpyArray &a) { return a.name; }),
                     ", ") +
          ")");
    SmallVector<int64_t> expected = sig.shape;
    if (sampleAxis) {
      if (found->shape.empty())
        return makeError("input '" + sig.name + "' in " + source +
                         " needs a leading sample axis");
      expected.insert(expected.begin(), found->shape[0]);
      if (numSamples >= 0 && numSamples != found->shape[0])
        return makeError("inputs in " + source +
                         " have different sample counts");
      numSamples = found->shape[0];
    }
    SmallVector<qnt::NpyDType> dtypes = getCompatibleDTypes(sig.elementType);
    if (!llvm::is_contained(dtypes, found->dtype) ||
        ArrayRef<int64_t>(found->shape) != ArrayRef<int64_t>(expected))
      return makeError("input '" + sig.name + "' in " + source + ": expected " +
                       getNpyDescr(dtypes[0]) + " " + formatShape(expected) +
                       ", got " + getNpyDescr(found->dtype) + " " +
                       formatShape(found->shape));
    if (checkData)
      if (llvm::Error error = checkValues(sig, *found, source))
        return std::move(error);
    matched.push_back(found);
  }
  return matched;
}

/// Reads every -i file into one list of named arrays.
llvm::Expected<std::vector<qnt::NpyArray>> readInputs(std::string &source) {
  std::vector<qnt::NpyArray> arrays;
  for (const std::string &path : inputData) {
    auto read = qnt::readNpyOrNpz(path);
    if (!read)
      return read.takeError();
    for (qnt::NpyArray &array : *read)
      arrays.push_back(std::move(array));
    source += (source.empty() ? "" : ", ") + path;
  }
  return arrays;
}

/// Copies sample `s` of `array` (leading sample axis) into `into`.
void sliceSample(const qnt::NpyArray &array, int64_t s, qnt::NpyArray &into) {
  size_t bytes = array.data.size() / array.shape[0];
  into.name = array.name;
  into.dtype = array.dtype;
  into.shape.assign(array.shape.begin() + 1, array.shape.end());
  into.data.assign(array.data.begin() + s * bytes,
                   array.data.begin() + (s + 1) * bytes);
}

void printArray(const qnt::NpyArray &array) {
  llvm::outs() << array.name << " " << formatShape(array.shape) << ":";
  size_t elementSize = qnt::getNpyElementSize(array.dtype);
  for (size_t i = 0; i < array.data.size() / elementSize; ++i) {
    const uint8_t *p = &array.data[i * elementSize];
    llvm::outs() << " ";
    switch (array.dtype) {
    case qnt::NpyDType::F32:
      llvm::outs() << llvm::format("%.6g", *reinterpret_cast<const float *>(p));
      break;
    case qnt::NpyDType::I8:
      llvm::outs() << int(*reinterpret_cast<const int8_t *>(p));
      break;
    case qnt::NpyDType::U8:
      llvm::outs() << int(*p);
      break;
    case qnt::NpyDType::I32:
      llvm::outs() << *reinterpret_cast<const int32_t *>(p);
      break;
    case qnt::NpyDType::I64:
      llvm::outs() << *reinterpret_cast<const int64_t *>(p);
      break;
    default:
      llvm::outs() << "?";
    }
  }
  llvm::outs() << "\n";
}

/// Fills one argument's array of sample `s`.
using SampleFetcher = llvm::function_ref<llvm::Error(size_t argument, int64_t s,
                                                     qnt::NpyArray &)>;

/// Runs every sample (`fetch` provides its arguments), reporting progress as
/// `verb`; with `outputs`, stacks the results along a new leading axis.
LogicalResult runSamples(Runner &runner, SampleFetcher fetch,
                         int64_t numSamples, StringRef verb,
                         std::vector<qnt::NpyArray> *outputs) {
  std::vector<qnt::NpyArray> sample(runner.arguments.size());
  std::vector<const qnt::NpyArray *> pointers;
  for (qnt::NpyArray &array : sample)
    pointers.push_back(&array);
  int64_t step = std::max<int64_t>(1, numSamples / 10);
  std::vector<qnt::NpyArray> results;
  for (int64_t s = 0; s < numSamples; ++s) {
    for (size_t i = 0; i < sample.size(); ++i)
      if (llvm::Error error = fetch(i, s, sample[i]))
        return fail(llvm::toString(std::move(error)));
    results.clear();
    if (failed(runner.run(pointers, outputs ? &results : nullptr)))
      return failure();
    if (outputs) {
      if (s == 0) {
        *outputs = results;
        for (qnt::NpyArray &out : *outputs) {
          out.shape.insert(out.shape.begin(), numSamples);
          out.data.reserve(out.data.size() * numSamples);
        }
      } else {
        for (size_t i = 0; i < results.size(); ++i)
          (*outputs)[i].data.insert((*outputs)[i].data.end(),
                                    results[i].data.begin(),
                                    results[i].data.end());
      }
    }
    if (!quiet && ((s + 1) % step == 0 || s + 1 == numSamples))
      llvm::errs() << verb << ": " << s + 1 << "/" << numSamples
                   << " samples\n";
  }
  return success();
}

/// Matches a data set whose arrays carry a leading sample axis (their
/// values are checked unless `checkData` is false).
FailureOr<std::vector<const qnt::NpyArray *>>
matchSampleSet(Runner &runner, ArrayRef<qnt::NpyArray> arrays, StringRef path,
               int64_t &numSamples, bool checkData = true) {
  auto matched = matchInputs(runner.arguments, arrays, path,
                             /*sampleAxis=*/true, numSamples, checkData);
  if (!matched)
    return fail(llvm::toString(matched.takeError()));
  if (numSamples <= 0)
    return fail("data set '" + path + "' has no samples");
  return std::move(*matched);
}

/// A float32 as the statistics file prints it (round-trips).
std::string formatFloat(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", double(v));
  return buf;
}

/// "'minmax' with 8 channels": an observer's kind and parameters, for messages.
std::string describeObserver(StringRef kind, int64_t channels, int64_t bins,
                             int64_t upsampleRate) {
  std::string text = "'" + kind.str() + "'";
  if (qnt::isPerChannelStatsKind(kind))
    text += " with " + std::to_string(channels) + " channels";
  if (kind == qnt::stats_kind::kHistogram)
    text += " with bins = " + std::to_string(bins) +
            ", upsample_rate = " + std::to_string(upsampleRate);
  return text;
}

/// --resume-stats: loads the observers' state from `path` into the
/// runtime's table; the observers must be the module's. Returns the
/// file's sample count.
FailureOr<int64_t> resumeObservers(Runner &runner, StringRef path) {
  auto file = qnt::readStatsFile(path);
  if (!file)
    return fail(llvm::toString(file.takeError()));
  auto mismatch = [&](StringRef id, const Twine &message) {
    return fail("cannot resume from '" + path + "': observer '" + id + "' " +
                message + " (statistics of another module or qconfig?)");
  };
  SmallVector<StringRef> ids;
  for (const auto &entry : runner.observers)
    ids.push_back(entry.getKey());
  for (const auto &entry : file->observers)
    if (!runner.observers.count(entry.getKey()))
      ids.push_back(entry.getKey());
  llvm::sort(ids);
  for (StringRef id : ids) {
    auto info = runner.observers.find(id);
    auto stats = file->observers.find(id);
    if (info == runner.observers.end())
      return mismatch(id, "is not in '" + inputFilename + "'");
    if (stats == file->observers.end())
      return mismatch(id, "of '" + inputFilename + "' has no statistics");
    const ObserverInfo &o = info->second;
    qnt::ObserverStats &s = stats->second;
    const int64_t channels = o.params.channels;
    if (s.min.empty()) { // no finite value seen yet
      s.min.assign(channels, std::numeric_limits<float>::infinity());
      s.max.assign(channels, -std::numeric_limits<float>::infinity());
    }
    if (s.kind != o.statsKind || int64_t(s.min.size()) != channels ||
        s.bins != o.params.bins || s.upsampleRate != o.params.upsample_rate)
      return mismatch(
          id,
          "is " +
              describeObserver(o.statsKind, channels, o.params.bins,
                               o.params.upsample_rate) +
              " in '" + inputFilename + "' but " +
              describeObserver(s.kind, s.min.size(), s.bins, s.upsampleRate) +
              " in the file");
    if (s.averagingConstant && *s.averagingConstant != o.averagingConstant)
      return mismatch(
          id, "has averaging constant " + formatFloat(o.averagingConstant) +
                  " in '" + inputFilename + "' but " +
                  formatFloat(*s.averagingConstant) + " in the file");
    const int64_t counts[3] = {s.count, s.calls, s.nonfinite};
    char error[512] = {0};
    if (qnt_rt_stats_restore(
            id.str().c_str(), reinterpret_cast<const int64_t *>(&o.params),
            o.averagingConstant, s.min.data(), s.max.data(), s.histogram.data(),
            counts, error, sizeof(error)) != 0)
      return fail("cannot resume from '" + path + "': " + error);
  }
  return file->numSamples;
}

LogicalResult calibrate(Runner &runner) {
  if (statsFilename.empty())
    return fail(
        "--calibrate needs --stats-file FILE to write the statistics to");
  // One sample in memory at a time (np.savez_compressed archives: all).
  auto reader = qnt::NpySampleReader::open(calibrationData);
  if (!reader)
    return fail(llvm::toString(reader.takeError()));
  if (!(*reader)->isStreamed() && !quiet)
    llvm::WithColor::note(llvm::errs(), "quant-run")
        << "'" << calibrationData
        << "' has compressed members: it is read into memory at once (save "
           "it with np.savez to stream it sample by sample)\n";
  ArrayRef<qnt::NpyArray> arrays = (*reader)->getArrays();
  int64_t numSamples;
  auto matched = matchSampleSet(runner, arrays, calibrationData, numSamples,
                                /*checkData=*/false);
  if (failed(matched))
    return failure();

  qnt_rt_stats_reset();
  int64_t previousSamples = 0;
  if (!resumeStats.empty()) {
    FailureOr<int64_t> resumed = resumeObservers(runner, resumeStats);
    if (failed(resumed))
      return failure();
    previousSamples = *resumed;
  }
  auto fetch = [&](size_t argument, int64_t s,
                   qnt::NpyArray &into) -> llvm::Error {
    size_t index = (*matched)[argument] - arrays.data();
    if (llvm::Error error = (*reader)->readSample(index, s, into))
      return error;
    return checkValues(runner.arguments[argument], into, calibrationData, s);
  };
  if (failed(runSamples(runner, fetch, numSamples, "calibrating", nullptr)))
    return failure();
  if (llvm::Error error = (*reader)->verifyChecksums())
    return fail(llvm::toString(std::move(error)));
  if (previousSamples > std::numeric_limits<int64_t>::max() - numSamples)
    return fail("cannot resume from '" + resumeStats +
                "': 'num_samples' overflows int64");
  numSamples += previousSamples;
  if (int64_t bad = qnt_rt_stats_nonfinite_count())
    llvm::WithColor::warning(llvm::errs(), "quant-run")
        << bad << " NaN/Inf value(s) in the calibration run; they are "
        << "excluded from the ranges (see the 'nonfinite' counts in '"
        << statsFilename << "')\n";
  char error[512] = {0};
  if (qnt_rt_stats_write_json(statsFilename.c_str(), numSamples, error,
                              sizeof(error)) != 0)
    return fail(error);
  if (!quiet)
    llvm::errs() << "wrote statistics of " << numSamples << " samples to '"
                 << statsFilename << "'\n";
  return success();
}

/// --print and -o.
LogicalResult emitOutputs(ArrayRef<qnt::NpyArray> outputs) {
  if (printResults)
    for (const qnt::NpyArray &array : outputs)
      printArray(array);
  if (!outputFilename.empty())
    if (llvm::Error error = qnt::writeNpz(outputFilename, outputs))
      return fail(llvm::toString(std::move(error)));
  return success();
}

/// --merge-stats: one statistics file from several calibration runs.
LogicalResult mergeStatsFiles() {
  if (statsFilename.empty())
    return fail("--merge-stats needs --stats-file FILE to write the merged "
                "statistics to");
  std::vector<qnt::StatsFile> runs;
  for (const std::string &path : mergeInputs) {
    auto run = qnt::readStatsFile(path);
    if (!run)
      return fail(llvm::toString(run.takeError()));
    runs.push_back(std::move(*run));
  }
  auto merged = qnt::mergeStats(runs);
  if (!merged)
    return fail(llvm::toString(merged.takeError()));
  if (llvm::Error error = qnt::writeStatsFile(*merged, statsFilename))
    return fail(llvm::toString(std::move(error)));
  if (!quiet)
    llvm::errs() << "merged " << runs.size() << " statistics files ("
                 << merged->numSamples << " samples) into '" << statsFilename
                 << "'\n";
  return success();
}

LogicalResult runOnce(Runner &runner) {
  std::string source;
  auto arrays = readInputs(source);
  if (!arrays)
    return fail(llvm::toString(arrays.takeError()));
  std::vector<qnt::NpyArray> outputs;
  if (eachSample) {
    int64_t numSamples;
    auto matched = matchSampleSet(runner, *arrays, source, numSamples);
    if (failed(matched))
      return failure();
    auto fetch = [&](size_t argument, int64_t s, qnt::NpyArray &into) {
      sliceSample(*(*matched)[argument], s, into);
      return llvm::Error::success();
    };
    if (failed(runSamples(runner, fetch, numSamples, "running", &outputs)))
      return failure();
    return emitOutputs(outputs);
  }

  int64_t unused;
  auto matched = matchInputs(runner.arguments, *arrays,
                             source.empty() ? "(no -i given)" : source,
                             /*sampleAxis=*/false, unused);
  if (!matched)
    return fail(llvm::toString(matched.takeError()));
  if (failed(runner.run(*matched, &outputs)))
    return failure();
  if (failed(emitOutputs(outputs)))
    return failure();

  if (benchRuns) {
    for (unsigned i = 0; i < warmupRuns; ++i)
      if (failed(runner.run(*matched, nullptr)))
        return failure();
    std::vector<double> times;
    for (unsigned i = 0; i < benchRuns; ++i) {
      auto start = std::chrono::steady_clock::now();
      if (failed(runner.run(*matched, nullptr)))
        return failure();
      std::chrono::duration<double, std::milli> elapsed =
          std::chrono::steady_clock::now() - start;
      times.push_back(elapsed.count());
    }
    std::sort(times.begin(), times.end());
    llvm::outs() << llvm::format("latency: median %.3f ms, min %.3f ms "
                                 "over %u runs\n",
                                 times[times.size() / 2], times[0],
                                 benchRuns.getValue());
  }
  return success();
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  qnt::registerAllPasses();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "quant-run: JIT-compile a qnt module and run it on NumPy data\n\n"
      "  quant-run model.mlir -i input.npz [-o out.npz] [--print] [--bench N]\n"
      "  quant-run model.mlir -i dataset.npz --samples -o outputs.npz\n"
      "  quant-run prepared.mlir --calibrate calib.npz --stats-file "
      "stats.json\n"
      "  quant-run prepared.mlir --calibrate more.npz --resume-stats "
      "stats.json --stats-file stats2.json\n"
      "  quant-run --merge-stats a.json --merge-stats b.json --stats-file "
      "all.json\n");

  if (!mergeInputs.empty()) {
    if (!inputFilename.empty() || !calibrationData.empty() ||
        !inputData.empty() || !resumeStats.empty())
      return fail("--merge-stats takes no module, -i, --calibrate or "
                  "--resume-stats"),
             EXIT_FAILURE;
    return succeeded(mergeStatsFiles()) ? EXIT_SUCCESS : EXIT_FAILURE;
  }
  if (inputFilename.empty())
    return fail("no module given (quant-run --help)"), EXIT_FAILURE;
  if (!calibrationData.empty() && (!inputData.empty() || benchRuns))
    return fail("--calibrate cannot be combined with -i or --bench"),
           EXIT_FAILURE;
  if (!resumeStats.empty() && calibrationData.empty())
    return fail("--resume-stats needs --calibrate"), EXIT_FAILURE;
  if (eachSample && benchRuns)
    return fail("--samples cannot be combined with --bench"), EXIT_FAILURE;
  if (calibrationData.empty() && inputData.empty() && !benchRuns &&
      outputFilename.empty() && !printResults)
    return fail("nothing to do: give -i with -o/--print/--bench, or "
                "--calibrate"),
           EXIT_FAILURE;
  if (numThreads > kMaxNumThreads)
    return fail("--num-threads " + Twine(numThreads.getValue()) +
                " exceeds the limit of " + Twine(kMaxNumThreads)),
           EXIT_FAILURE;
  if (numThreads)
    qnt_rt_set_num_threads(numThreads);

  DialectRegistry registry;
  qnt::registerAllDialects(registry);
  registerAllToLLVMIRTranslations(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();

  Runner runner;
  if (failed(runner.load(context)))
    return EXIT_FAILURE;
  LogicalResult result =
      calibrationData.empty() ? runOnce(runner) : calibrate(runner);
  // --print and --bench write to stdout; raw_fd_ostream would turn a write
  // error (stdout on a full disk) into a fatal error at exit.
  llvm::outs().flush();
  if (llvm::outs().has_error()) {
    std::error_code ec = llvm::outs().error();
    llvm::outs().clear_error();
    result = fail("cannot write to stdout: " + ec.message());
  }
  return succeeded(result) ? EXIT_SUCCESS : EXIT_FAILURE;
}
