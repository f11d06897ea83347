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

/// How the C API passes an input of one element type.
struct CType {
  const char *name;  ///< C element type
  const char *dtype; ///< suffix of the header's <NAME>_<dtype> enumerator
};

/// The C type of an input element: f32, i64, i32 or i1 (a byte, 0 or 1, as
/// LLVM stores an i1 of an array); nullopt for any other.
std::optional<CType> getCType(Type type) {
  if (type.isF32())
    return CType{"float", "FLOAT32"};
  if (type.isSignlessInteger(64))
    return CType{"int64_t", "INT64"};
  if (type.isSignlessInteger(32))
    return CType{"int32_t", "INT32"};
  if (type.isSignlessInteger(1))
    return CType{"uint8_t", "BOOL"};
  return std::nullopt;
}

/// The entry point's signature; the C API takes f32, int64, int32 and bool
/// inputs and returns f32 tensors.
FailureOr<qnt::EntrySignature> readSignature(func::FuncOp func) {
  FailureOr<qnt::EntrySignature> sig = qnt::readEntrySignature(func);
  if (failed(sig))
    return failure();
  for (const TensorSignature &t : sig->arguments)
    if (!getCType(t.elementType))
      return func.emitError("quant-compile: '")
             << t.name << "' must be an f32, i64, i32 or i1 tensor, got "
             << t.elementType;
  for (const TensorSignature &t : sig->results)
    if (!t.elementType.isF32())
      return func.emitError("quant-compile: '")
             << t.name << "' must be an f32 tensor, got " << t.elementType;
  if (sig->results.empty())
    return func.emitError("quant-compile: the entry point returns nothing");
  return sig;
}

/// True when every input is f32: `_run` then takes `const float *const *`
/// (the API of libraries built before integer inputs existed).
bool hasOnlyFloatInputs(const qnt::EntrySignature &sig) {
  return llvm::all_of(sig.arguments, [](const TensorSignature &t) {
    return t.elementType.isF32();
  });
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

/// What the header and the API source both define: the dtype enum, the
/// statuses and the described-input struct.
std::string apiTypes(StringRef name) {
  std::string upper = StringRef(name).upper();
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "/* Element types (" << name << "_tensor.dtype). */\n"
     << "typedef enum {\n  " << upper << "_FLOAT32 = 0,\n  " << upper
     << "_INT64 = 1,\n  " << upper << "_INT32 = 2,\n  " << upper
     << "_BOOL = 3 /* uint8_t, 0 or 1 */\n} " << name << "_dtype;\n\n";
  os << "/* Statuses of " << name << "_run and " << name << "_run_tensors. */\n"
     << "#define " << upper << "_OK 0\n"
     << "#define " << upper << "_ERROR_NULL (-1)      /* a NULL pointer */\n"
     << "#define " << upper
     << "_ERROR_VALUE (-2)     /* an id outside its valid range, or a bool "
        "not 0 or 1 */\n"
     << "#define " << upper
     << "_ERROR_COUNT (-3)     /* not NUM_INPUTS inputs */\n"
     << "#define " << upper << "_ERROR_DTYPE (-4)     /* a wrong dtype */\n"
     << "#define " << upper
     << "_ERROR_SHAPE (-5)     /* a wrong rank or shape (a longer sequence "
        "than compiled) */\n\n";
  os << "/* An input with its description, for " << name << "_run_tensors. */\n"
     << "typedef struct {\n  " << name << "_dtype dtype;\n  int rank;\n"
     << "  const int64_t *shape;\n  const void *data;\n} " << name
     << "_tensor;\n\n";
  return text;
}

std::string generateHeader(StringRef name, const qnt::EntrySignature &sig) {
  std::string upper = StringRef(name).upper();
  std::string h;
  llvm::raw_string_ostream os(h);
  os << "/* " << name << ".h: C API of the model compiled by quant-compile "
     << "from " << llvm::sys::path::filename(inputFilename) << ".\n"
     << " *\n"
     << " * Tensors are dense row-major arrays (the model's own layout, NCHW\n"
     << " * for images) of the element type each input states; outputs are\n"
     << " * float. Kernels (prepacked weights) live in libqnt_runtime.so per\n"
     << " * call site, shared by every instance. Instances may run at the\n"
     << " * same time from different threads, with the single-threaded\n"
     << " * results; one instance runs from one thread at a time. */\n"
     << "#ifndef QNT_MODEL_" << upper << "_H\n#define QNT_MODEL_" << upper
     << "_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n"
     << "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n";
  os << apiTypes(name);
  auto tensors = [&](const char *kind,
                     const std::vector<TensorSignature> &list) {
    std::string k = StringRef(kind).upper();
    os << "#define " << upper << "_NUM_" << k << "S " << list.size() << "\n";
    for (size_t i = 0; i < list.size(); ++i) {
      CType type = *getCType(list[i].elementType);
      os << "/* " << kind << " " << i << ": \"" << list[i].name << "\", "
         << type.name << ", shape [" << joinShape(list[i].shape) << "]";
      if (list[i].validRange)
        os << ", values in [" << list[i].validRange->first << ", "
           << list[i].validRange->second << ")";
      os << " */\n";
      os << "#define " << upper << "_" << k << i << "_SIZE "
         << list[i].getNumElements() << " /* elements */\n";
      os << "#define " << upper << "_" << k << i << "_DTYPE " << upper << "_"
         << type.dtype << "\n";
      os << "#define " << upper << "_" << k << i << "_RANK "
         << list[i].shape.size() << "\n";
      os << "#define " << upper << "_" << k << i << "_SHAPE {"
         << joinShape(list[i].shape) << "}\n";
    }
    os << "\n";
  };
  tensors("input", sig.arguments);
  tensors("output", sig.results);
  const char *inputType =
      hasOnlyFloatInputs(sig) ? "const float *const *" : "const void *const *";
  os << "typedef struct " << name << " " << name << "_t;\n\n"
     << "/* Creates an instance (from any thread). num_threads > 0 sets the\n"
     << " * kernel thread count: OpenMP's for the calling thread, XNNPACK's\n"
     << " * for the process; 0 keeps the defaults. The first instance runs\n"
     << " * the model once on zeros, which creates every kernel. Returns\n"
     << " * NULL if out of memory or num_threads exceeds "
     << QNT_RT_MAX_NUM_THREADS << ". */\n"
     << name << "_t *" << name << "_create(int num_threads);\n\n"
     << "/* Runs the model: inputs[i] points to " << upper
     << "_INPUTi_SIZE elements of\n"
     << " * input i's type, outputs[i] to " << upper
     << "_OUTPUTi_SIZE floats, written in place.\n"
     << " * Returns " << upper << "_OK, " << upper << "_ERROR_NULL or " << upper
     << "_ERROR_VALUE (outputs\n"
     << " * untouched then). */\n"
     << "int " << name << "_run(" << name << "_t *model, " << inputType
     << "inputs,\n    float *const *outputs);\n\n"
     << "/* " << name << "_run on described inputs: also checks their count, "
     << "dtypes and\n"
     << " * shapes. On an error, writes what is wrong into message (if not\n"
     << " * NULL, at most message_size bytes, terminated). */\n"
     << "int " << name << "_run_tensors(" << name << "_t *model, const " << name
     << "_tensor *inputs,\n    int num_inputs, float *const "
     << "*outputs, char *message,\n    size_t message_size);\n\n"
     << "/* A short description of a status. */\n"
     << "const char *" << name << "_status_string(int status);\n\n"
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

/// `s` as the body of a C string literal.
std::string escapeC(StringRef s) {
  std::string out;
  for (char c : s) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (llvm::isPrint(c)) {
      out += c;
    } else {
      out += '\\';
      for (int shift : {6, 3, 0})
        out += static_cast<char>('0' + ((byte >> shift) & 7));
    }
  }
  return out;
}

/// C that formats a shape ("[2, 128]") and a status message.
constexpr const char *kMessages = R"c(
static void format_shape(char *buf, size_t size, const int64_t *shape,
                         int rank) {
  size_t at = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < rank && at < size; ++i)
    at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? ", " : "",
                           (long long)shape[i]);
  if (at < size)
    snprintf(buf + at, size - at, "]");
}

static int report(char *message, size_t size, int status, const char *format,
                  ...) {
  if (message && size) {
    va_list args;
    va_start(args, format);
    vsnprintf(message, size, format, args);
    va_end(args);
  }
  return status;
}
)c";

std::string generateApi(StringRef name, StringRef symbol,
                        const qnt::EntrySignature &sig, bool needsMemrefCopy) {
  std::string upper = StringRef(name).upper();
  size_t numInputs = sig.arguments.size(), numOutputs = sig.results.size();
  std::string c;
  llvm::raw_string_ostream os(c);
  os << "/* Generated by quant-compile: the C API of " << name
     << " (declared in " << name << ".h). */\n"
     << "#include <stdarg.h>\n#include <stddef.h>\n#include <stdint.h>\n"
     << "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n"
     << "#define API __attribute__((visibility(\"default\")))\n\n"
     << "int qnt_rt_set_num_threads(int n);\n"
     << "void qnt_rt_buffer_free(void *ptr);\n\n"
     << "typedef struct " << name << " {\n  int unused;\n} " << name
     << "_t;\n\n"
     << apiTypes(name);
  auto memref = [&](const TensorSignature &t, const std::string &field,
                    const char *pointer) {
    size_t rank = t.shape.size();
    os << "  struct {\n    " << pointer << " *allocated, *aligned;\n"
       << "    int64_t offset";
    if (rank)
      os << ", sizes[" << rank << "], strides[" << rank << "]";
    os << ";\n  } " << field << ";\n";
  };
  os << "/* Memref descriptors of the entry point's C interface. */\n";
  for (size_t i = 0; i < numInputs; ++i) {
    os << "typedef struct {\n";
    memref(sig.arguments[i], "m", "void");
    os << "} input" << i << "_desc;\n";
  }
  os << "typedef struct {\n";
  for (size_t i = 0; i < numOutputs; ++i)
    memref(sig.results[i], "r" + std::to_string(i), "float");
  os << "} results_desc;\n\n";
  os << "__attribute__((visibility(\"hidden\"))) void _mlir_ciface_" << symbol
     << "(results_desc *";
  for (size_t i = 0; i < numInputs; ++i)
    os << ", input" << i << "_desc *";
  os << ");\n";
  if (needsMemrefCopy)
    os << kMemrefCopy;
  os << kMessages;
  os << R"c(
/* Copies a (possibly strided) rank-`rank` result into a dense array: the
   innermost dimensions that are dense in the result are one memcpy per
   position of the outer ones (a whole dense result is one memcpy). */
static void copy_out(const float *base, int64_t offset, const int64_t *sizes,
                     const int64_t *strides, int rank, float *dst) {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i)
    n *= sizes[i];
  if (n == 0)
    return;
  int64_t run = 1;
  int outer = rank;
  while (outer > 0 && (sizes[outer - 1] == 1 || strides[outer - 1] == run))
    run *= sizes[--outer];
  for (int64_t linear = 0; linear < n / run; ++linear) {
    int64_t rem = linear, at = offset;
    for (int i = outer - 1; i >= 0; --i) {
      at += (rem % sizes[i]) * strides[i];
      rem /= sizes[i];
    }
    memcpy(dst + linear * run, base + at, (size_t)run * sizeof(float));
  }
}

)c";

  // The inputs as the signature has them.
  os << "static const char *const input_names[" << numInputs << " + 1] = {";
  for (const TensorSignature &t : sig.arguments)
    os << "\"" << escapeC(t.name) << "\", ";
  os << "NULL};\nstatic const int input_dtypes[" << numInputs << " + 1] = {";
  for (const TensorSignature &t : sig.arguments)
    os << upper << "_" << getCType(t.elementType)->dtype << ", ";
  os << "0};\nstatic const int input_ranks[" << numInputs << " + 1] = {";
  for (const TensorSignature &t : sig.arguments)
    os << t.shape.size() << ", ";
  os << "0};\n";
  for (size_t i = 0; i < numInputs; ++i)
    os << "static const int64_t input" << i << "_shape["
       << sig.arguments[i].shape.size() << " + 1] = {"
       << joinShape(sig.arguments[i].shape)
       << (sig.arguments[i].shape.empty() ? "0" : "") << "};\n";
  os << "static const int64_t *const input_shapes[" << numInputs << " + 1] = {";
  for (size_t i = 0; i < numInputs; ++i)
    os << "input" << i << "_shape, ";
  os << "NULL};\nstatic const char *const dtype_names[] = {\"float32\", "
     << "\"int64\", \"int32\", \"bool\"};\n\n";

  // Values no run may take: ids outside their range, bools not 0 or 1.
  os << "static int check_values(const void *const *inputs, char *message,\n"
     << "                        size_t size) {\n";
  for (size_t i = 0; i < numInputs; ++i) {
    const TensorSignature &t = sig.arguments[i];
    bool isBool = t.elementType.isInteger(1);
    if (!t.validRange && !isBool)
      continue;
    int64_t lo = isBool ? 0 : t.validRange->first;
    int64_t hi = isBool ? 2 : t.validRange->second;
    os << "  {\n    const " << getCType(t.elementType)->name << " *v = (const "
       << getCType(t.elementType)->name << " *)inputs[" << i << "];\n"
       << "    for (int64_t k = 0; k < " << t.getNumElements() << "; ++k)\n"
       << "      if (" << (lo == 0 && !isBool ? "v[k] < 0" : "")
       << (lo != 0 ? "v[k] < " + std::to_string(lo) + "LL" : "")
       << (lo == 0 && isBool ? "0" : "") << " || v[k] >= " << hi << "LL)\n"
       << "        return report(message, size, " << upper << "_ERROR_VALUE,\n"
       << "                      \"input " << i << " '%s': element %lld is "
       << "%lld, "
       << (isBool ? "not 0 or 1" : "outside the valid range [%lld, %lld)")
       << "\",\n                      input_names[" << i
       << "], (long long)k, (long long)v[k]"
       << (isBool
               ? ""
               : ", " + std::to_string(lo) + "LL, " + std::to_string(hi) + "LL")
       << ");\n  }\n";
  }
  os << "  (void)inputs;\n  (void)message;\n  (void)size;\n  return " << upper
     << "_OK;\n}\n\n";

  // The model on checked inputs.
  os << "static void run_model(const void *const *inputs, "
        "float *const *outputs) {\n";
  for (size_t i = 0; i < numInputs; ++i) {
    const TensorSignature &t = sig.arguments[i];
    os << "  input" << i << "_desc in" << i << ";\n"
       << "  in" << i << ".m.allocated = in" << i
       << ".m.aligned = (void *)inputs[" << i << "];\n"
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
  for (size_t i = 0; i < numInputs; ++i)
    os << ", &in" << i;
  os << ");\n";
  for (size_t i = 0; i < numOutputs; ++i) {
    std::string r = "res.r" + std::to_string(i);
    size_t rank = sig.results[i].shape.size();
    os << "  copy_out(" << r << ".aligned, " << r << ".offset, "
       << (rank ? r + ".sizes" : "NULL") << ", "
       << (rank ? r + ".strides" : "NULL") << ", " << rank << ", outputs[" << i
       << "]);\n";
  }
  os << "  /* Buffers the model allocated are freed once; constants carry\n"
     << "     0xdeadbeef and inputs belong to the caller. */\n"
     << "  void *owned[" << numOutputs << "];\n  int numOwned = 0;\n";
  for (size_t i = 0; i < numOutputs; ++i) {
    os << "  {\n    void *p = res.r" << i << ".allocated;\n"
       << "    int skip = !p || p == (void *)0xdeadbeef;\n";
    for (size_t j = 0; j < numInputs; ++j)
      os << "    skip |= p == inputs[" << j << "];\n";
    os << "    for (int k = 0; k < numOwned; ++k)\n"
       << "      skip |= owned[k] == p;\n"
       << "    if (!skip)\n      owned[numOwned++] = p;\n  }\n";
  }
  os << "  for (int k = 0; k < numOwned; ++k)\n    "
        "qnt_rt_buffer_free(owned[k]);\n}\n\n";

  // The API.
  const char *inputType =
      hasOnlyFloatInputs(sig) ? "const float *const *" : "const void *const *";
  os << "API int " << name << "_run(" << name << "_t *model, " << inputType
     << "inputs,\n    float *const *outputs) {\n"
     << "  if (!model || !inputs || !outputs)\n    return " << upper
     << "_ERROR_NULL;\n"
     << "  for (int i = 0; i < " << numInputs << "; ++i)\n"
     << "    if (!inputs[i])\n      return " << upper << "_ERROR_NULL;\n"
     << "  for (int i = 0; i < " << numOutputs << "; ++i)\n"
     << "    if (!outputs[i])\n      return " << upper << "_ERROR_NULL;\n"
     << "  int status = check_values((const void *const *)inputs, NULL, 0);\n"
     << "  if (status == " << upper << "_OK)\n"
     << "    run_model((const void *const *)inputs, outputs);\n"
     << "  return status;\n}\n\n";
  os << "API int " << name << "_run_tensors(" << name << "_t *model, const "
     << name << "_tensor *inputs,\n"
     << "    int num_inputs, float *const *outputs, char *message,\n"
     << "    size_t message_size) {\n"
     << "  if (message && message_size)\n    message[0] = 0;\n"
     << "  if (!model || (!inputs && num_inputs) || !outputs)\n"
     << "    return report(message, message_size, " << upper
     << "_ERROR_NULL, \"a NULL pointer\");\n"
     << "  if (num_inputs != " << numInputs << ")\n"
     << "    return report(message, message_size, " << upper
     << "_ERROR_COUNT,\n                  \"%d inputs, expected " << numInputs
     << "\", num_inputs);\n"
     << "  const void *data[" << numInputs << " + 1];\n"
     << "  for (int i = 0; i < " << numInputs << "; ++i) {\n"
     << "    const " << name << "_tensor *t = &inputs[i];\n"
     << "    if (!t->data || (!t->shape && t->rank))\n"
     << "      return report(message, message_size, " << upper
     << "_ERROR_NULL,\n"
     << "                    \"input %d '%s': a NULL pointer\", i, "
        "input_names[i]);\n"
     << "    if ((int)t->dtype != input_dtypes[i])\n"
     << "      return report(message, message_size, " << upper
     << "_ERROR_DTYPE,\n"
     << "                    \"input %d '%s': dtype %s, expected %s\", i,\n"
     << "                    input_names[i],\n"
     << "                    (unsigned)t->dtype < 4 ? dtype_names[t->dtype] : "
        "\"unknown\",\n"
     << "                    dtype_names[input_dtypes[i]]);\n"
     << "    int same = t->rank == input_ranks[i];\n"
     << "    for (int d = 0; same && d < t->rank; ++d)\n"
     << "      same = t->shape[d] == input_shapes[i][d];\n"
     << "    if (!same) {\n"
     << "      char got[256], want[256];\n"
     << "      format_shape(got, sizeof got, t->shape, t->rank < 0 ? 0 : "
        "t->rank);\n"
     << "      format_shape(want, sizeof want, input_shapes[i], "
        "input_ranks[i]);\n"
     << "      return report(message, message_size, " << upper
     << "_ERROR_SHAPE,\n"
     << "                    \"input %d '%s': shape %s, expected %s\", i,\n"
     << "                    input_names[i], got, want);\n    }\n"
     << "    data[i] = t->data;\n  }\n"
     << "  for (int i = 0; i < " << numOutputs << "; ++i)\n"
     << "    if (!outputs[i])\n"
     << "      return report(message, message_size, " << upper
     << "_ERROR_NULL,\n"
     << "                    \"output %d: a NULL pointer\", i);\n"
     << "  int status = check_values(data, message, message_size);\n"
     << "  if (status == " << upper << "_OK)\n"
     << "    run_model(data, outputs);\n"
     << "  return status;\n}\n\n";
  os << "API const char *" << name << "_status_string(int status) {\n"
     << "  switch (status) {\n"
     << "  case " << upper << "_OK: return \"ok\";\n"
     << "  case " << upper << "_ERROR_NULL: return \"a NULL pointer\";\n"
     << "  case " << upper
     << "_ERROR_VALUE: return \"an input value outside its valid range\";\n"
     << "  case " << upper
     << "_ERROR_COUNT: return \"a wrong number of inputs\";\n"
     << "  case " << upper << "_ERROR_DTYPE: return \"a wrong input dtype\";\n"
     << "  case " << upper << "_ERROR_SHAPE: return \"a wrong input shape\";\n"
     << "  default: return \"unknown status\";\n  }\n}\n\n";

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
     << "  /* One run on zeros creates every kernel (ids outside their range\n"
     << "     read clamped rows: the model clamps every lookup). */\n"
     << "  void *in[" << numInputs << " + 1];\n  float *out[" << numOutputs
     << "];\n  int ok = 1;\n";
  for (size_t i = 0; i < numInputs; ++i)
    os << "  ok &= (in[" << i << "] = calloc("
       << sig.arguments[i].getNumElements() << " + 16, 8)) != NULL;\n";
  for (size_t i = 0; i < numOutputs; ++i)
    os << "  ok &= (out[" << i << "] = (float *)calloc("
       << sig.results[i].getNumElements() << ", sizeof(float))) != NULL;\n";
  os << "  if (ok)\n    run_model((const void *const *)in, out);\n";
  for (size_t i = 0; i < numInputs; ++i)
    os << "  free(in[" << i << "]);\n";
  for (size_t i = 0; i < numOutputs; ++i)
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
  // Tensor names and id ranges live on in the header and the API only.
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    func.removeArgAttr(i, "qnt.name");
    func.removeArgAttr(i, "qnt.valid_range");
  }
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
