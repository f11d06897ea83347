//===- AtomicFile.h - Write a file completely or not at all -----*- C++ -*-===//
//
// What every tool writes goes through writeFileAtomically: the file appears
// complete or not at all, an existing one survives a failure, and a write
// error (a full disk) is an llvm::Error, never raw_fd_ostream's fatal error.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_SUPPORT_ATOMICFILE_H
#define QNT_SUPPORT_ATOMICFILE_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

namespace qnt {

/// Writes `path` with `write`: into a temporary file beside it that is
/// renamed over `path` once everything is written, or, if `path` is an
/// existing device or pipe (/dev/null; renaming would replace it), in
/// place. An error from `write` (returned as is) or from writing (naming
/// `path`) leaves `path` untouched and no temporary file.
llvm::Error
writeFileAtomically(llvm::StringRef path,
                    llvm::function_ref<llvm::Error(llvm::raw_ostream &)> write);

} // namespace qnt

#endif // QNT_SUPPORT_ATOMICFILE_H
