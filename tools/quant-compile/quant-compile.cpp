//===- quant-compile.cpp - Compile a qnt module to a shared library -------===//
//
//   quant-compile model.mlir -o libmodel.so [--target x86_64|aarch64]
//
// Lowers the module (qnt-lower-pipeline), compiles it for the target with
// LLVM, and links it with a generated C API into a shared library that
// depends only on libqnt_runtime.so. Next to it goes the API's header
// (model.h): create / run on caller buffers / destroy. See docs/compile.md.
//
//===----------------------------------------------------------------------===//

#include "qnt/Dialect/Qnt/QntOps.h"
#include "qnt/InitAll.h"
#include "qnt/Pipelines/Pipelines.h"
#include "qnt/Runtime.h"
#include "qnt/Support/EntrySignature.h"
#include "qnt/Support/SizeLimits.h"
#include "qnt/Transforms/Utils.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#include <cstdlib>
#include <string>
#include <vector>

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory category("quant-compile options");

static cl::opt<std::string>
    inputFilename(cl::Positional, cl::desc("<model.mlir>"), cl::cat(category));
static cl::opt<std::string> outputFilename("o",
                                           cl::desc("Shared library to write"),
                                           cl::value_desc("libmodel.so"),
                                           cl::cat(category));
static cl::opt<std::string>
    targetArch("target", cl::desc("Target: x86_64 (default) or aarch64"),
               cl::init("x86_64"), cl::cat(category));
static cl::opt<std::string> headerFilename(
    "header",
    cl::desc("C header to write (default: <name>.h next to the library)"),
    cl::value_desc("model.h"), cl::cat(category));
static cl::opt<std::string> modelName(
    "name",
    cl::desc("Prefix of the C API (default: from -o, libfoo.so -> foo)"),
    cl::cat(category));
static cl::opt<std::string> entryPoint("entry", cl::desc("Function to compile"),
                                       cl::init("main"), cl::cat(category));
static cl::opt<std::string> backend(
    "backend",
    cl::desc("Kernel library: onednn, xnnpack or auto (default: onednn on "
             "x86_64, as quant-run, so both give the same integers; "
             "xnnpack on aarch64)"),
    cl::cat(category));
static cl::opt<std::string>
    targetCpu("mcpu",
              cl::desc("CPU the model's own code is tuned for: an LLVM CPU "
                       "name of the target, or native (the host's; x86_64 "
                       "only). Default: generic; kernels choose their ISA at "
                       "run time"),
              cl::init("generic"), cl::cat(category));
static cl::opt<std::string> compilerDriver(
    "cc",
    cl::desc("C compiler driver used to compile the API and link (default: "
             "cc on x86_64, aarch64-linux-gnu-gcc on aarch64)"),
    cl::cat(category));
static cl::opt<std::string> runtimeDir(
    "runtime-dir",
    cl::desc("Directory of libqnt_runtime.so built for the target (default "
             "on x86_64: the lib/ directory next to quant-compile's bin/)"),
    cl::cat(category));
static cl::list<std::string>
    linkArgs("link-arg", cl::desc("Extra argument for the link step"),
             cl::cat(category));
static cl::opt<bool>
    saveTemps("save-temps",
              cl::desc("Keep the object file and the API source (written "
                       "next to the library)"),
              cl::cat(category));

namespace {

LogicalResult fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "quant-compile") << message << "\n";
  return failure();
}

using qnt::TensorSignature;

/// The entry point's signature; the C API takes and returns f32 tensors.
FailureOr<qnt::EntrySignature> readSignature(func::FuncOp func) {
  FailureOr<qnt::EntrySignature> sig = qnt::readEntrySignature(func);
  if (failed(sig))
    return failure();
  for (const TensorSignature &t :
       llvm::concat<const TensorSignature>(sig->arguments, sig->results))
    if (!t.elementType.isF32())
      return func.emitError("quant-compile: '")
             << t.name << "' must be an f32 tensor, got " << t.elementType;
  if (sig->results.empty())
    return func.emitError("quant-compile: the entry point returns nothing");
  return sig;
}

/// An identifier usable as the API's prefix and struct tag from C and C++:
/// not a keyword of either (`--name int` would only fail when the generated
/// C is compiled).
bool isCIdentifier(StringRef s) {
  if (s.empty() || !(llvm::isAlpha(s[0]) || s[0] == '_'))
    return false;
  if (!llvm::all_of(s, [](char c) { return llvm::isAlnum(c) || c == '_'; }))
    return false;
  static constexpr const char *kKeywords[] = {
      "_Alignas",  "_Alignof",   "_Atomic",   "_Bool",          "_Complex",
      "_Generic",  "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local",
      "alignas",   "alignof",    "auto",      "bool",           "break",
      "case",      "catch",      "char",      "class",          "const",
      "constexpr", "continue",   "default",   "delete",         "do",
      "double",    "else",       "enum",      "explicit",       "extern",
      "false",     "float",      "for",       "friend",         "goto",
      "if",        "inline",     "int",       "long",           "namespace",
      "new",       "noexcept",   "nullptr",   "operator",       "private",
      "protected", "public",     "register",  "restrict",       "return",
      "short",     "signed",     "sizeof",    "static",         "struct",
      "switch",    "template",   "this",      "throw",          "true",
      "try",       "typedef",    "typename",  "union",          "unsigned",
      "using",     "virtual",    "void",      "volatile",       "while"};
  return !llvm::is_contained(kKeywords, s);
}

/// "libfoo.so" -> "foo", with anything not valid in C turned into '_'.
std::string defaultModelName(StringRef output) {
  StringRef stem = llvm::sys::path::stem(output);
  stem.consume_front("lib");
  std::string name;
  for (char c : stem)
    name += llvm::isAlnum(c) ? c : '_';
  if (name.empty() || llvm::isDigit(name[0]))
    name = "model_" + name;
  return name;
}

std::string joinShape(ArrayRef<int64_t> shape) {
  std::string s;
  for (int64_t d : shape)
    s += (s.empty() ? "" : ", ") + std::to_string(d);
  return s;
}

//===----------------------------------------------------------------------===//
// Generated C: the header and the API around _mlir_ciface_<entry>
//===----------------------------------------------------------------------===//

std::string generateHeader(StringRef name, const qnt::EntrySignature &sig) {
  std::string upper = StringRef(name).upper();
  std::string h;
  llvm::raw_string_ostream os(h);
  os << "/* " << name << ".h: C API of the model compiled by quant-compile "
     << "from " << llvm::sys::path::filename(inputFilename) << ".\n"
     << " *\n"
     << " * Tensors are dense row-major float arrays (the model's own\n"
     << " * layout, NCHW for images). Kernels (prepacked weights) live in\n"
     << " * libqnt_runtime.so per call site, shared by every instance.\n"
     << " * Instances may run at the same time from different threads, with\n"
     << " * the single-threaded results; one instance runs from one thread\n"
     << " * at a time. */\n"
     << "#ifndef QNT_MODEL_" << upper << "_H\n#define QNT_MODEL_" << upper
     << "_H\n\n#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n"
     << "#endif\n\n";
  auto tensors = [&](const char *kind,
                     const std::vector<TensorSignature> &list) {
    std::string k = StringRef(kind).upper();
    os << "#define " << upper << "_NUM_" << k << "S " << list.size() << "\n";
    for (size_t i = 0; i < list.size(); ++i) {
      os << "/* " << kind << " " << i << ": \"" << list[i].name << "\", "
         << "shape [" << joinShape(list[i].shape) << "] */\n";
      os << "#define " << upper << "_" << k << i << "_SIZE "
         << list[i].getNumElements() << " /* floats */\n";
      os << "#define " << upper << "_" << k << i << "_RANK "
         << list[i].shape.size() << "\n";
      os << "#define " << upper << "_" << k << i << "_SHAPE {"
         << joinShape(list[i].shape) << "}\n";
    }
    os << "\n";
  };
  tensors("input", sig.arguments);
  tensors("output", sig.results);
  os << "typedef struct " << name << " " << name << "_t;\n\n"
     << "/* Creates an instance (from any thread). num_threads > 0 sets the\n"
     << " * kernel thread count: OpenMP's for the calling thread, XNNPACK's\n"
     << " * for the process; 0 keeps the defaults. The first instance runs\n"
     << " * the model once on zeros, which creates every kernel. Returns\n"
     << " * NULL if out of memory or num_threads exceeds "
     << QNT_RT_MAX_NUM_THREADS << ". */\n"
     << name << "_t *" << name << "_create(int num_threads);\n\n"
     << "/* Runs the model: inputs[i] points to " << upper
     << "_INPUTi_SIZE floats,\n"
     << " * outputs[i] to " << upper
     << "_OUTPUTi_SIZE floats, written in place. Returns 0,\n"
     << " * or -1 if a pointer is NULL. */\n"
     << "int " << name << "_run(" << name
     << "_t *model, const float *const *inputs,\n"
     << "    float *const *outputs);\n\n"
     << "/* Destroys an instance (NULL is ignored). */\n"
     << "void " << name << "_destroy(" << name << "_t *model);\n\n"
     << "#ifdef __cplusplus\n}\n#endif\n\n#endif\n";
  return h;
}

/// C for memrefCopy (upstream's is in libmlir_c_runner_utils, which the
/// library must not depend on): a strided copy of `elemSize`-byte elements,
/// one memcpy per run of elements contiguous in both source and destination
/// (a concatenation along channels copies each pixel's channels at once).
constexpr const char *kMemrefCopy = R"c(
typedef struct { int64_t rank; void *descriptor; } qnt_unranked_memref;

__attribute__((visibility("hidden"))) void
memrefCopy(int64_t elemSize, qnt_unranked_memref *src,
           qnt_unranked_memref *dst) {
  int64_t rank = src->rank;
  char **s = (char **)src->descriptor, **d = (char **)dst->descriptor;
  /* descriptor: allocated, aligned, offset, sizes[rank], strides[rank] */
  const int64_t *sm = (const int64_t *)(s + 2), *dm = (const int64_t *)(d + 2);
  const int64_t *sizes = sm + 1, *ss = sm + 1 + rank, *ds = dm + 1 + rank;
  for (int64_t i = 0; i < rank; ++i)
    if (sizes[i] == 0)
      return;
  /* The innermost dimensions contiguous in both make one run. */
  int64_t outer = rank, run = 1;
  while (outer > 0 && (sizes[outer - 1] == 1 ||
                       (ss[outer - 1] == run && ds[outer - 1] == run))) {
    run *= sizes[outer - 1];
    --outer;
  }
  int64_t index[outer > 0 ? outer : 1];
  memset(index, 0, sizeof index);
  int64_t so = sm[0], doff = dm[0];
  size_t bytes = (size_t)(run * elemSize);
  for (;;) {
    memcpy(d[1] + doff * elemSize, s[1] + so * elemSize, bytes);
    int64_t axis = outer - 1;
    for (; axis >= 0; --axis) {
      so += ss[axis];
      doff += ds[axis];
      if (++index[axis] < sizes[axis])
        break;
      so -= ss[axis] * sizes[axis];
      doff -= ds[axis] * sizes[axis];
      index[axis] = 0;
    }
    if (axis < 0)
      return;
  }
}
)c";

std::string generateApi(StringRef name, StringRef symbol,
                        const qnt::EntrySignature &sig, bool needsMemrefCopy) {
  std::string c;
  llvm::raw_string_ostream os(c);
  os << "/* Generated by quant-compile: the C API of " << name
     << " (declared in " << name << ".h). */\n"
     << "#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n\n"
     << "#define API __attribute__((visibility(\"default\")))\n\n"
     << "int qnt_rt_set_num_threads(int n);\n"
     << "void qnt_rt_buffer_free(void *ptr);\n\n"
     << "typedef struct " << name << " {\n  int unused;\n} " << name
     << "_t;\n\n";
  auto memref = [&](const TensorSignature &t, const std::string &field) {
    size_t rank = t.shape.size();
    os << "  struct {\n    float *allocated, *aligned;\n    int64_t offset";
    if (rank)
      os << ", sizes[" << rank << "], strides[" << rank << "]";
    os << ";\n  } " << field << ";\n";
  };
  os << "/* Memref descriptors of the entry point's C interface. */\n";
  for (size_t i = 0; i < sig.arguments.size(); ++i) {
    os << "typedef struct {\n";
    memref(sig.arguments[i], "m");
    os << "} input" << i << "_desc;\n";
  }
  os << "typedef struct {\n";
  for (size_t i = 0; i < sig.results.size(); ++i)
    memref(sig.results[i], "r" + std::to_string(i));
  os << "} results_desc;\n\n";
  os << "__attribute__((visibility(\"hidden\"))) void _mlir_ciface_" << symbol
     << "(results_desc *";
  for (size_t i = 0; i < sig.arguments.size(); ++i)
    os << ", input" << i << "_desc *";
  os << ");\n";
  if (needsMemrefCopy)
    os << kMemrefCopy;
  os << R"c(
/* Copies a (possibly strided) rank-`rank` result into a dense array. */
static void copy_out(const float *base, int64_t offset, const int64_t *sizes,
                     const int64_t *strides, int rank, float *dst) {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i)
    n *= sizes[i];
  for (int64_t linear = 0; linear < n; ++linear) {
    int64_t rem = linear, at = offset;
    for (int i = rank - 1; i >= 0; --i) {
      at += (rem % sizes[i]) * strides[i];
      rem /= sizes[i];
    }
    dst[linear] = base[at];
  }
}

)c";
  os << "API int " << name << "_run(" << name
     << "_t *model, const float *const *inputs,\n    float *const *outputs) "
        "{\n"
     << "  if (!model || !inputs || !outputs)\n    return -1;\n";
  for (size_t i = 0; i < sig.arguments.size(); ++i)
    os << "  if (!inputs[" << i << "])\n    return -1;\n";
  for (size_t i = 0; i < sig.results.size(); ++i)
    os << "  if (!outputs[" << i << "])\n    return -1;\n";
  for (size_t i = 0; i < sig.arguments.size(); ++i) {
    const TensorSignature &t = sig.arguments[i];
    os << "  input" << i << "_desc in" << i << ";\n"
       << "  in" << i << ".m.allocated = in" << i
       << ".m.aligned = (float *)inputs[" << i << "];\n"
       << "  in" << i << ".m.offset = 0;\n";
    int64_t stride = 1;
    for (int64_t d = t.shape.size() - 1; d >= 0; --d) {
      os << "  in" << i << ".m.sizes[" << d << "] = " << t.shape[d] << ";\n"
         << "  in" << i << ".m.strides[" << d << "] = " << stride << ";\n";
      stride *= t.shape[d];
    }
  }
  os << "  results_desc res;\n  memset(&res, 0, sizeof res);\n"
     << "  _mlir_ciface_" << symbol << "(&res";
  for (size_t i = 0; i < sig.arguments.size(); ++i)
    os << ", &in" << i;
  os << ");\n";
  for (size_t i = 0; i < sig.results.size(); ++i) {
    std::string r = "res.r" + std::to_string(i);
    size_t rank = sig.results[i].shape.size();
    os << "  copy_out(" << r << ".aligned, " << r << ".offset, "
       << (rank ? r + ".sizes" : "NULL") << ", "
       << (rank ? r + ".strides" : "NULL") << ", " << rank << ", outputs[" << i
       << "]);\n";
  }
  os << "  /* Buffers the model allocated are freed once; constants carry\n"
     << "     0xdeadbeef and inputs belong to the caller. */\n"
     << "  void *owned[" << sig.results.size() << "];\n  int numOwned = 0;\n";
  for (size_t i = 0; i < sig.results.size(); ++i) {
    os << "  {\n    void *p = res.r" << i << ".allocated;\n"
       << "    int skip = !p || p == (void *)0xdeadbeef;\n";
    for (size_t j = 0; j < sig.arguments.size(); ++j)
      os << "    skip |= p == (const void *)inputs[" << j << "];\n";
    os << "    for (int k = 0; k < numOwned; ++k)\n"
       << "      skip |= owned[k] == p;\n"
       << "    if (!skip)\n      owned[numOwned++] = p;\n  }\n";
  }
  os << "  for (int k = 0; k < numOwned; ++k)\n    "
        "qnt_rt_buffer_free(owned[k]);\n"
     << "  return 0;\n}\n\n";

  os << "static int kernels_created;\n\n"
     << "API " << name << "_t *" << name << "_create(int num_threads) {\n"
     << "  if (num_threads > " << QNT_RT_MAX_NUM_THREADS
     << ")\n    return NULL;\n"
     << "  if (num_threads > 0)\n    qnt_rt_set_num_threads(num_threads);\n"
     << "  " << name << "_t *model = (" << name
     << "_t *)calloc(1, sizeof *model);\n"
     << "  if (!model || __atomic_exchange_n(&kernels_created, 1, "
        "__ATOMIC_ACQ_REL))\n"
     << "    return model;\n"
     << "  /* One run on zeros creates every kernel. */\n"
     << "  float *in[" << sig.arguments.size() << " + 1], *out["
     << sig.results.size() << "];\n  int ok = 1;\n";
  for (size_t i = 0; i < sig.arguments.size(); ++i)
    os << "  ok &= (in[" << i << "] = (float *)calloc("
       << sig.arguments[i].getNumElements()
       << " + 16, sizeof(float))) != NULL;\n";
  for (size_t i = 0; i < sig.results.size(); ++i)
    os << "  ok &= (out[" << i << "] = (float *)calloc("
       << sig.results[i].getNumElements() << ", sizeof(float))) != NULL;\n";
  os << "  if (ok)\n    " << name
     << "_run(model, (const float *const *)in, out);\n";
  for (size_t i = 0; i < sig.arguments.size(); ++i)
    os << "  free(in[" << i << "]);\n";
  for (size_t i = 0; i < sig.results.size(); ++i)
    os << "  free(out[" << i << "]);\n";
  os << "  if (!ok) {\n    __atomic_store_n(&kernels_created, 0, "
        "__ATOMIC_RELEASE);\n    free(model);\n    return NULL;\n  }\n"
     << "  return model;\n}\n\n"
     << "API void " << name << "_destroy(" << name
     << "_t *model) { free(model); }\n";
  return c;
}

//===----------------------------------------------------------------------===//
// Compilation
//===----------------------------------------------------------------------===//

/// Where `path` is written before it is renamed into place: beside it, or
/// `path` itself for an existing device or pipe (/dev/null), which is
/// written in place (renaming over it would replace the device).
std::string getStagingPath(StringRef path) {
  llvm::sys::fs::file_status status;
  if (!llvm::sys::fs::status(path, status) &&
      status.type() != llvm::sys::fs::file_type::regular_file)
    return path.str();
  return (path + ".tmp").str();
}

/// Renames each staged file (from getStagingPath) over its path, all of
/// them or none: an existing file is first moved aside, and if a later
/// rename fails the files already renamed are removed and the old ones put
/// back, so a library never meets a header from another build.
LogicalResult
commitStaged(ArrayRef<std::pair<std::string, std::string>> stagedToPath) {
  struct Committed {
    StringRef path;
    std::string backup; // empty: there was no old file
  };
  SmallVector<Committed> committed;
  auto rollBack = [&] {
    for (const Committed &c : llvm::reverse(committed)) {
      llvm::sys::fs::remove(c.path);
      if (!c.backup.empty())
        llvm::sys::fs::rename(c.backup, c.path);
    }
  };
  for (const auto &[staging, path] : stagedToPath) {
    if (staging == path)
      continue;
    Committed c{path, {}};
    if (llvm::sys::fs::is_regular_file(path)) {
      c.backup = path + ".qnt-old";
      if (std::error_code ec = llvm::sys::fs::rename(path, c.backup)) {
        rollBack();
        return fail("cannot replace '" + path + "': " + ec.message());
      }
    }
    if (std::error_code ec = llvm::sys::fs::rename(staging, path)) {
      if (!c.backup.empty())
        llvm::sys::fs::rename(c.backup, path);
      rollBack();
      return fail("cannot write '" + path + "': " + ec.message());
    }
    committed.push_back(std::move(c));
  }
  for (const Committed &c : committed)
    if (!c.backup.empty())
      llvm::sys::fs::remove(c.backup);
  return success();
}

/// Flushes `os` and fails naming `path` if any write failed (clearing the
/// error, which raw_fd_ostream would otherwise turn into a fatal error).
LogicalResult checkWritten(llvm::raw_fd_ostream &os, StringRef path) {
  os.flush();
  if (!os.has_error())
    return success();
  std::error_code ec = os.error();
  os.clear_error();
  return fail("cannot write '" + path + "': " + ec.message());
}

/// Writes `contents` to `path` (created or replaced).
LogicalResult writeFile(StringRef path, StringRef contents) {
  std::string error;
  auto file = openOutputFile(path, &error);
  if (!file)
    return fail(error);
  file->os() << contents;
  if (failed(checkWritten(file->os(), path)))
    return failure();
  file->keep();
  return success();
}

/// The CPU --mcpu names for `target`: "native" is the host's (only when
/// compiling for the host's architecture); anything else must be a CPU
/// LLVM knows for the target (LLVM would otherwise abort on some names).
FailureOr<std::string> resolveTargetCpu(const llvm::Target &target,
                                        const llvm::Triple &triple) {
  std::string cpu = targetCpu;
  if (cpu == "native") {
    llvm::Triple host(llvm::sys::getProcessTriple());
    if (host.getArch() != triple.getArch())
      return fail("--mcpu=native needs the host's architecture (" +
                  host.getArchName() + "), not " + triple.getArchName());
    cpu = llvm::sys::getHostCPUName().str();
  }
  std::unique_ptr<llvm::MCSubtargetInfo> generic(
      target.createMCSubtargetInfo(triple, "", ""));
  if (!generic || !generic->isCPUStringValid(cpu))
    return fail("unknown --mcpu '" + cpu + "' for " + triple.getArchName() +
                " (use generic, native or a CPU LLVM knows, e.g. "
                "x86-64-v3 or neoverse-n1)");
  // A 32-bit x86 CPU (i386, pentium4, ...) is a valid name, but the x86
  // backend aborts on it for 64-bit code.
  std::unique_ptr<llvm::MCSubtargetInfo> subtarget(
      target.createMCSubtargetInfo(triple, cpu, ""));
  if (triple.isX86() && triple.isArch64Bit() &&
      !subtarget->checkFeatures("+64bit"))
    return fail("--mcpu '" + cpu + "' is a 32-bit CPU: it cannot run " +
                triple.getArchName() + " code");
  return cpu;
}

/// Compiles the lowered module for `target` / `cpu` (from
/// resolveTargetCpu) to an object file at `objPath`; sets `needsMemrefCopy`
/// if the code calls memrefCopy.
LogicalResult emitObject(ModuleOp module, const llvm::Target &target,
                         const llvm::Triple &triple, StringRef cpu,
                         StringRef objPath, bool &needsMemrefCopy) {
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> machine(target.createTargetMachine(
      triple, cpu, "", options, llvm::Reloc::PIC_, std::nullopt,
      llvm::CodeGenOptLevel::Aggressive));
  if (!machine)
    return fail("cannot create a target machine for " + triple.str() +
                " (CPU '" + cpu + "')");

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, llvmContext, "qnt_model");
  if (!llvmModule)
    return fail("cannot translate the lowered module to LLVM IR");
  llvmModule->setTargetTriple(triple);
  llvmModule->setDataLayout(machine->createDataLayout());
  // Only the generated C API is exported.
  for (llvm::Function &fn : *llvmModule)
    if (!fn.isDeclaration())
      fn.setVisibility(llvm::GlobalValue::HiddenVisibility);
  llvm::Function *copy = llvmModule->getFunction("memrefCopy");
  needsMemrefCopy = copy && copy->isDeclaration();

  auto optimize =
      makeOptimizingTransformer(/*optLevel=*/3, /*sizeLevel=*/0, machine.get());
  if (llvm::Error err = optimize(llvmModule.get()))
    return fail("LLVM optimization failed: " + llvm::toString(std::move(err)));

  std::error_code ec;
  llvm::ToolOutputFile obj(objPath, ec, llvm::sys::fs::OF_None);
  if (ec)
    return fail("cannot write '" + objPath + "': " + ec.message());
  llvm::legacy::PassManager codegen;
  if (machine->addPassesToEmitFile(codegen, obj.os(), nullptr,
                                   llvm::CodeGenFileType::ObjectFile))
    return fail("the target cannot emit object files");
  codegen.run(*llvmModule);
  if (failed(checkWritten(obj.os(), objPath)))
    return failure();
  obj.keep();
  return success();
}

/// Runs `program args...`; fails with its command line if it fails.
LogicalResult runProgram(StringRef program, ArrayRef<std::string> args) {
  auto path = llvm::sys::findProgramByName(program);
  if (!path)
    return fail("cannot find '" + program +
                "' (choose a C compiler driver with --cc)");
  SmallVector<StringRef> argv = {*path};
  for (const std::string &a : args)
    argv.push_back(a);
  std::string error;
  int rc =
      llvm::sys::ExecuteAndWait(*path, argv, std::nullopt, {}, 0, 0, &error);
  if (rc != 0) {
    std::string cmd = llvm::join(argv, " ");
    return fail(
        "'" + cmd + "' failed" +
        (error.empty() ? " (exit " + std::to_string(rc) + ")" : ": " + error));
  }
  return success();
}

LogicalResult compile(MLIRContext &context, const char *argv0) {
  if (inputFilename.empty())
    return fail("no module given (quant-compile --help)");
  if (outputFilename.empty())
    return fail("no output given: -o libmodel.so");
  llvm::Triple triple;
  std::string defaultCc, defaultBackend;
  if (targetArch == "x86_64") {
    triple = llvm::Triple("x86_64-unknown-linux-gnu");
    defaultCc = "cc";
    defaultBackend = "onednn";
  } else if (targetArch == "aarch64") {
    triple = llvm::Triple("aarch64-unknown-linux-gnu");
    defaultCc = "aarch64-linux-gnu-gcc";
    defaultBackend = "xnnpack";
  } else {
    return fail("unknown target '" + targetArch +
                "'; expected x86_64 or aarch64");
  }
  std::string targetError;
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, targetError);
  if (!target)
    return fail("no LLVM target for " + triple.str() + ": " + targetError);
  FailureOr<std::string> cpu = resolveTargetCpu(*target, triple);
  if (failed(cpu))
    return failure();
  std::string name =
      modelName.empty() ? defaultModelName(outputFilename) : modelName;
  if (!isCIdentifier(name))
    return fail("--name '" + name +
                "' is not a C identifier (or is a C/C++ keyword)");

  std::string rtDir = runtimeDir;
  if (rtDir.empty()) {
    if (targetArch != "x86_64")
      return fail("--runtime-dir is required for --target " + targetArch +
                  " (a libqnt_runtime.so built for it, docs/compile.md)");
    std::string exe = llvm::sys::fs::getMainExecutable(
        argv0, reinterpret_cast<void *>(&fail));
    SmallString<256> dir(llvm::sys::path::parent_path(exe));
    llvm::sys::path::append(dir, "..", "lib");
    rtDir = dir.str().str();
  }
  SmallString<256> rtLib(rtDir);
  llvm::sys::path::append(rtLib, "libqnt_runtime.so");
  if (!llvm::sys::fs::exists(rtLib))
    return fail("'" + rtLib + "' not found (set --runtime-dir)");
  SmallString<256> rtDirAbs(rtDir);
  llvm::sys::fs::make_absolute(rtDirAbs);
  llvm::sys::path::remove_dots(rtDirAbs, /*remove_dot_dot=*/true);

  std::string error;
  auto file = openInputFile(inputFilename, &error);
  if (!file)
    return fail(error);
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return fail("cannot parse '" + inputFilename + "'");
  auto func = module->lookupSymbol<func::FuncOp>(entryPoint);
  if (!func || func.isExternal())
    return fail("'" + inputFilename + "' has no function '" + entryPoint +
                "' (choose one with --entry)");
  FailureOr<qnt::EntrySignature> sig = readSignature(func);
  if (failed(sig) || failed(qnt::verifyConstantSizes(*module)) ||
      failed(qnt::verifyQuantizedTypes(*module)))
    return failure();
  // A library that observes would record statistics on every run, into a
  // table nothing reads.
  qnt::ObserveOp observer;
  unsigned numObservers = 0;
  module->walk([&](qnt::ObserveOp op) {
    if (!numObservers++)
      observer = op;
  });
  if (observer)
    return observer.emitError("quant-compile: the module has ")
           << numObservers
           << " qnt.observe op(s) left: calibrate (quant-run --calibrate) "
              "and fold them (--qnt-fold-calibration) before compiling";
  // Tensor names live on in the header only.
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    func.removeArgAttr(i, "qnt.name");
  for (unsigned i = 0; i < func.getNumResults(); ++i)
    func.removeResultAttr(i, StringAttr::get(&context, "qnt.name"));

  // The entry gets a name of its own (a "main" in a library would be called
  // in place of the program's), a C interface, and read-only arguments.
  std::string symbol = "qnt_model_" + name;
  if (failed(SymbolTable::replaceAllSymbolUses(
          func, StringAttr::get(&context, symbol), *module)))
    return fail("cannot rename '" + entryPoint + "'");
  SymbolTable::setSymbolName(func, symbol);
  func->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                UnitAttr::get(&context));
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    func.setArgAttr(i, bufferization::BufferizationDialect::kWritableAttrName,
                    BoolAttr::get(&context, false));

  PassManager pm(&context);
  qnt::LowerPipelineOptions options;
  options.backend = backend.empty() ? defaultBackend : backend.getValue();
  qnt::buildLowerPipeline(pm, options);
  if (failed(pm.run(*module)))
    return fail("cannot lower '" + inputFilename + "'");

  // Intermediate files live next to the output, so nothing half-written
  // ever replaces it: the link goes to a temporary name and is renamed.
  SmallString<256> outDir(llvm::sys::path::parent_path(outputFilename));
  if (outDir.empty())
    outDir = ".";
  auto sibling = [&](StringRef suffix) {
    SmallString<256> p(outDir);
    llvm::sys::path::append(p, llvm::sys::path::stem(outputFilename) + suffix);
    return std::string(p.str());
  };
  std::string header = headerFilename;
  if (header.empty()) {
    SmallString<256> p(outDir);
    llvm::sys::path::append(p, name + ".h");
    header = p.str().str();
  }
  std::string objPath = sibling(".qnt.o"), apiPath = sibling(".qnt-api.c");
  // The library and its header appear together, or neither changes.
  std::string tmpOut = getStagingPath(outputFilename);
  std::string tmpHeader = getStagingPath(header);
  auto cleanup = llvm::make_scope_exit([&] {
    if (!saveTemps) {
      llvm::sys::fs::remove(objPath);
      llvm::sys::fs::remove(apiPath);
    }
    if (tmpOut != outputFilename)
      llvm::sys::fs::remove(tmpOut);
    if (tmpHeader != header)
      llvm::sys::fs::remove(tmpHeader);
  });

  bool needsMemrefCopy = false;
  if (failed(
          emitObject(*module, *target, triple, *cpu, objPath, needsMemrefCopy)))
    return failure();
  if (failed(writeFile(tmpHeader, generateHeader(name, *sig))) ||
      failed(
          writeFile(apiPath, generateApi(name, symbol, *sig, needsMemrefCopy))))
    return failure();

  std::vector<std::string> args = {"-shared",
                                   "-fPIC",
                                   "-O2",
                                   "-fvisibility=hidden",
                                   "-o",
                                   tmpOut,
                                   apiPath,
                                   objPath,
                                   "-L" + rtDirAbs.str().str(),
                                   "-Wl,-rpath," + rtDirAbs.str().str(),
                                   "-lqnt_runtime",
                                   "-lm"};
  for (const std::string &a : linkArgs)
    args.push_back(a);
  if (failed(runProgram(compilerDriver.empty() ? defaultCc : compilerDriver,
                        args)))
    return failure();
  return commitStaged({{tmpHeader, header}, {tmpOut, outputFilename}});
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  llvm::InitializeAllTargetInfos();
  llvm::InitializeAllTargets();
  llvm::InitializeAllTargetMCs();
  llvm::InitializeAllAsmPrinters();
  qnt::registerAllPasses();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "quant-compile: compile a qnt module ahead of time into a shared "
      "library with a C API\n\n"
      "  quant-compile model.mlir -o libmodel.so            (x86_64, "
      "writes model.h)\n"
      "  quant-compile model.mlir --target aarch64 --runtime-dir DIR "
      "-o libmodel.so\n");

  DialectRegistry registry;
  qnt::registerAllDialects(registry);
  registerAllToLLVMIRTranslations(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  return succeeded(compile(context, argv[0])) ? EXIT_SUCCESS : EXIT_FAILURE;
}
