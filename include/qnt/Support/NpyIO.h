//===- NpyIO.h - Read and write NumPy .npy / .npz files ---------*- C++ -*-===//
//
// quant-run's data format: a `.npy` file holds one array, a `.npz` archive
// (numpy.savez or numpy.savez_compressed) holds named arrays. Only
// little-endian, C-ordered arrays of the dtypes below are accepted; anything
// else is an error naming the file and what is wrong.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_SUPPORT_NPYIO_H
#define QNT_SUPPORT_NPYIO_H

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qnt {

enum class NpyDType { F32, F64, I8, U8, I16, I32, I64, Bool };

/// The numpy `descr` string of a dtype ("<f4", "|i1", ...).
llvm::StringRef getNpyDescr(NpyDType dtype);
/// Size in bytes of one element.
size_t getNpyElementSize(NpyDType dtype);

struct NpyArray {
  std::string name; ///< Key inside a .npz (without ".npy"); file stem for .npy.
  NpyDType dtype = NpyDType::F32;
  llvm::SmallVector<int64_t> shape;
  std::vector<uint8_t> data; ///< Raw little-endian bytes, C order.

  int64_t getNumElements() const;
};

/// Parses one .npy image held in memory. `what` names it in errors, which
/// read "'<what>': <problem>", and its stem becomes the array's name.
llvm::Expected<NpyArray> parseNpy(llvm::StringRef bytes, llvm::StringRef what);

/// Reads a .npy file (one array) or a .npz archive (all its arrays, in
/// archive order). Stored and deflated archive members are supported.
llvm::Expected<std::vector<NpyArray>> readNpyOrNpz(llvm::StringRef path);

/// Parses a .npy image or a .npz archive held in memory; `what` names it in
/// errors (readNpyOrNpz passes the path).
llvm::Expected<std::vector<NpyArray>> parseNpyOrNpz(llvm::StringRef bytes,
                                                    llvm::StringRef what);

/// Serializes one array as a .npy image.
std::string serializeNpy(const NpyArray &array);

/// Writes the arrays as an uncompressed .npz archive (numpy.load reads it).
/// The file appears complete or not at all: data goes to a temporary file
/// in the same directory that is renamed over `path` at the end.
llvm::Error writeNpz(llvm::StringRef path, llvm::ArrayRef<NpyArray> arrays);

} // namespace qnt

#endif // QNT_SUPPORT_NPYIO_H
