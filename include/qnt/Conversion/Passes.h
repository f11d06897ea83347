//===- Passes.h - qnt conversion passes -----------------------*- C++ -*-===//

#ifndef QNT_CONVERSION_PASSES_H
#define QNT_CONVERSION_PASSES_H

#include "qnt/Conversion/ApproximateMath.h"
#include "qnt/Conversion/EarlyDealloc.h"
#include "qnt/Conversion/OutlineParallelLoops.h"
#include "qnt/Conversion/QntToLinalg.h"
#include "qnt/Conversion/QntToRuntime.h"
#include "qnt/Conversion/Vectorize.h"

namespace qnt {

#define GEN_PASS_REGISTRATION
#include "qnt/Conversion/Passes.h.inc"

} // namespace qnt

#endif // QNT_CONVERSION_PASSES_H
