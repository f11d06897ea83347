//===- Memory.cpp - Heap buffers of compiled models -----------------------===//
//
// Compiled code allocates its intermediate tensors through
// _mlir_memref_to_llvm_alloc / _free (finalize-memref-to-llvm with
// use-generic-functions). Plain malloc hands large blocks back to the kernel
// (munmap / heap trim) on free, so every inference page-faulted its
// activations in again: ~0.7 ms of a 3.4 ms ResNet-18. Here freed blocks of
// 64 KiB and more are kept per exact size and reused; a model allocates the
// same sizes every run, so after the first run no memory comes from the
// kernel. At most kMaxCachedBytes are kept. Which pointers are ours is
// recorded (`live`), not guessed from the bytes before them: reading in front
// of a foreign pointer is out of bounds (ASan reported it), and malloc's own
// header there could look like ours.
//
//===----------------------------------------------------------------------===//

#include "Common.h"

#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

constexpr size_t kHeader = 16; // keeps malloc's 16-byte alignment
// XNNPACK may read up to XNN_EXTRA_BYTES (16) past an input: every block
// has that much readable tail, so its over-reads stay inside the block.
constexpr size_t kTail = 16;
constexpr size_t kMinCached = size_t(64) << 10;
constexpr size_t kMaxCachedBytes = size_t(512) << 20;

struct Header {
  uint64_t size;
};

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void *>> free; // size -> blocks
  std::unordered_set<void *> live; // pointers handed out, not yet freed
  size_t bytes = 0;
};

Cache &cache() {
  static Cache *c = new Cache; // leaked: buffers may be freed at exit
  return *c;
}

void *allocate(size_t size) {
  Cache &c = cache();
  if (size >= kMinCached) {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free.find(size);
    if (it != c.free.end() && !it->second.empty()) {
      void *block = it->second.back();
      it->second.pop_back();
      c.bytes -= size;
      void *ptr = static_cast<char *>(block) + kHeader;
      c.live.insert(ptr);
      return ptr;
    }
  }
  void *block = std::malloc(kHeader + size + kTail);
  if (!block)
    qnt::rt::fatal("out of memory allocating " + std::to_string(size) +
                   " bytes");
  Header h{size};
  std::memcpy(block, &h, sizeof h);
  void *ptr = static_cast<char *>(block) + kHeader;
  std::lock_guard<std::mutex> lock(c.mutex);
  c.live.insert(ptr);
  return ptr;
}

} // namespace

extern "C" {

void *_mlir_memref_to_llvm_alloc(size_t size) { return allocate(size); }

void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment, size_t size) {
  // Only used with use-aligned-alloc, which the qnt pipeline does not set;
  // served by over-allocating like the default lowering would.
  if (alignment <= kHeader)
    return allocate(size);
  qnt::rt::fatal("aligned heap allocation is not supported");
}

void _mlir_memref_to_llvm_free(void *ptr) {
  if (!ptr)
    return;
  Cache &c = cache();
  std::unique_lock<std::mutex> lock(c.mutex);
  if (!c.live.erase(ptr)) {
    // Not ours: a buffer of code lowered without generic functions.
    lock.unlock();
    std::free(ptr);
    return;
  }
  void *block = static_cast<char *>(ptr) - kHeader;
  Header h;
  std::memcpy(&h, block, sizeof h);
  if (h.size >= kMinCached && c.bytes + h.size <= kMaxCachedBytes) {
    c.free[h.size].push_back(block);
    c.bytes += h.size;
    return;
  }
  lock.unlock();
  std::free(block);
}

void qnt_rt_buffer_free(void *ptr) { _mlir_memref_to_llvm_free(ptr); }

} // extern "C"
