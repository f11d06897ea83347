//===- npy-fuzzer.cpp - libFuzzer target for the .npy / .npz reader -------===//
//
// Feeds arbitrary bytes to parseNpyOrNpz (what quant-run --input reads). Any
// input must give arrays or an llvm::Error; a crash, an abort, a sanitizer
// report or a leak is a bug. An accepted array must also be consistent
// (data size = elements x element size) and survive a round trip through
// serializeNpy.
//
//===----------------------------------------------------------------------===//

#include "qnt/Support/NpyIO.h"

#include "llvm/Support/Error.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  llvm::Expected<std::vector<qnt::NpyArray>> arrays =
      qnt::parseNpyOrNpz(bytes, "fuzz.npz");
  if (!arrays) {
    llvm::consumeError(arrays.takeError());
    return 0;
  }
  for (const qnt::NpyArray &array : *arrays) {
    if (uint64_t(array.getNumElements()) * qnt::getNpyElementSize(array.dtype) !=
        array.data.size())
      abort();
    std::string image = qnt::serializeNpy(array);
    llvm::Expected<qnt::NpyArray> again = qnt::parseNpy(image, "again.npy");
    if (!again || again->data != array.data || again->shape != array.shape ||
        again->dtype != array.dtype)
      abort();
  }
  return 0;
}
