//===- ThreadsTest.cpp - qnt_rt_parallel_for ------------------------------===//

#include "qnt/Runtime.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <vector>

namespace {

struct Visits {
  std::vector<std::atomic<int>> count;
  std::atomic<int> calls{0};
  std::atomic<int> threadsSeen{0};
  explicit Visits(int64_t n) : count(n) {}
};

void visit(void *context, int64_t begin, int64_t end) {
  auto *v = static_cast<Visits *>(context);
  ++v->calls;
  v->threadsSeen |= 1 << omp_get_thread_num();
  for (int64_t i = begin; i < end; ++i)
    ++v->count[i];
}

// Every iteration runs exactly once, for sizes below, at and above the
// thread count.
TEST(ParallelFor, EveryIterationOnce) {
  ASSERT_EQ(qnt_rt_set_num_threads(2), 0);
  for (int64_t n : {1, 2, 3, 7, 64, 1001}) {
    Visits v(n);
    qnt_rt_parallel_for(visit, &v, n);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(v.count[i].load(), 1) << "n=" << n << " i=" << i;
    EXPECT_LE(v.calls.load(), 2) << "one contiguous range per thread";
  }
}

TEST(ParallelFor, UsesTheKernelThreads) {
  ASSERT_EQ(qnt_rt_set_num_threads(2), 0);
  Visits v(64);
  qnt_rt_parallel_for(visit, &v, 64);
  EXPECT_EQ(v.calls.load(), 2);
  EXPECT_EQ(v.threadsSeen.load(), 3);
}

TEST(ParallelFor, EmptyRangeCallsNothing) {
  Visits v(0);
  qnt_rt_parallel_for(visit, &v, 0);
  qnt_rt_parallel_for(visit, &v, -5);
  EXPECT_EQ(v.calls.load(), 0);
}

TEST(ParallelFor, OneThreadRunsInline) {
  ASSERT_EQ(qnt_rt_set_num_threads(1), 0);
  Visits v(100);
  qnt_rt_parallel_for(visit, &v, 100);
  EXPECT_EQ(v.calls.load(), 1);
  EXPECT_EQ(v.threadsSeen.load(), 1);
  ASSERT_EQ(qnt_rt_set_num_threads(2), 0);
}

// Called from inside a parallel region (a model run from an OpenMP
// thread): no nested team, the caller runs the whole range.
TEST(ParallelFor, NestedRunsOnTheCaller) {
  ASSERT_EQ(qnt_rt_set_num_threads(2), 0);
  std::vector<int> calls(2, 0);
#pragma omp parallel num_threads(2)
  {
    Visits v(10);
    qnt_rt_parallel_for(visit, &v, 10);
    calls[omp_get_thread_num()] = v.calls.load();
    for (int64_t i = 0; i < 10; ++i)
      EXPECT_EQ(v.count[i].load(), 1);
  }
  EXPECT_EQ(calls[0], 1);
  EXPECT_EQ(calls[1], 1);
}

} // namespace
