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
#include "llvm/Support/FileSystem.h"

#include <cstdint>
#include <memory>
#include <optional>
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

/// Reads the arrays of a .npy file or .npz archive one sample (an index of
/// their leading axis) at a time, straight from the file: memory for one
/// sample, whatever the file's size. Stored members (numpy.savez) are read
/// in place; an archive with a deflated member (numpy.savez_compressed) is
/// read into memory whole (isStreamed() is false). The checks are
/// readNpyOrNpz's, the CRC of each member once all its samples were read in
/// order (verifyChecksums).
class NpySampleReader {
public:
  static llvm::Expected<std::unique_ptr<NpySampleReader>>
  open(llvm::StringRef path);
  ~NpySampleReader();
  NpySampleReader(const NpySampleReader &) = delete;
  NpySampleReader &operator=(const NpySampleReader &) = delete;

  /// The arrays in archive order: name, dtype and shape (data only when
  /// not streamed).
  llvm::ArrayRef<NpyArray> getArrays() const { return arrays; }
  bool isStreamed() const { return !inMemory; }

  /// Reads sample `sample` of array `index` (shape [S, ...]) into `into`
  /// (shape [...]).
  llvm::Error readSample(size_t index, int64_t sample, NpyArray &into);

  /// A CRC mismatch of a member whose samples were all read in order.
  llvm::Error verifyChecksums() const;

private:
  NpySampleReader() = default;
  struct Location {
    uint64_t dataOffset = 0;             ///< Of the array's data in the file.
    uint64_t sampleBytes = 0;            ///< Bytes per sample.
    std::optional<uint32_t> expectedCrc; ///< Of the .npz member.
    uint32_t crc = 0;                    ///< Of what was read so far.
    int64_t nextSample = 0;              ///< Read in order up to here.
  };
  std::string path;
  std::vector<NpyArray> arrays;
  std::vector<Location> locations;
  bool inMemory = false;
  llvm::sys::fs::file_t file = llvm::sys::fs::kInvalidFile;
};

/// Serializes one array as a .npy image.
std::string serializeNpy(const NpyArray &array);

/// Writes the arrays as an uncompressed .npz archive (numpy.load reads it).
/// The file appears complete or not at all: data goes to a temporary file
/// in the same directory that is renamed over `path` at the end.
llvm::Error writeNpz(llvm::StringRef path, llvm::ArrayRef<NpyArray> arrays);

} // namespace qnt

#endif // QNT_SUPPORT_NPYIO_H
