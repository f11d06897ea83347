//===- MemoryTest.cpp - Heap buffers of compiled code ---------------------===//

#include "qnt/Runtime.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

namespace {

TEST(Memory, LargeBlocksAreReusedPerSize) {
  const size_t size = 300000;
  void *a = _mlir_memref_to_llvm_alloc(size);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 16, 0u);
  std::memset(a, 0x5A, size); // the whole block is usable
  _mlir_memref_to_llvm_free(a);
  void *b = _mlir_memref_to_llvm_alloc(size);
  EXPECT_EQ(a, b) << "a freed block of the same size is reused";
  void *c = _mlir_memref_to_llvm_alloc(size);
  EXPECT_NE(b, c);
  void *d = _mlir_memref_to_llvm_alloc(size + 1);
  EXPECT_NE(d, b);
  qnt_rt_buffer_free(b);
  qnt_rt_buffer_free(c);
  qnt_rt_buffer_free(d);
}

TEST(Memory, SmallBlocksAndForeignPointers) {
  void *small = _mlir_memref_to_llvm_alloc(24);
  ASSERT_NE(small, nullptr);
  std::memset(small, 1, 24);
  _mlir_memref_to_llvm_free(small);
  // malloc'ed buffers (code lowered without the runtime's allocator) are
  // released with free().
  void *foreign = std::malloc(1 << 20);
  ASSERT_NE(foreign, nullptr);
  qnt_rt_buffer_free(foreign);
  qnt_rt_buffer_free(nullptr);
  _mlir_memref_to_llvm_free(nullptr);
}

} // namespace
