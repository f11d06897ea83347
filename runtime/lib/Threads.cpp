//===- Threads.cpp - qnt_rt_set_num_threads -------------------------------===//

#include "Common.h"
#include "Xnnpack.h"

#include <omp.h>

extern "C" int qnt_rt_set_num_threads(int n) {
  // Bounded for every caller, not only the tools: libgomp crashes creating
  // 100000 threads.
  if (n < 1 || n > QNT_RT_MAX_NUM_THREADS)
    return -1;
  // oneDNN (OpenMP runtime) and the reference kernels both use the OpenMP
  // thread pool of the calling thread; XNNPACK has its own pool.
  omp_set_num_threads(n);
  qnt::rt::setXnnNumThreads(n);
  return 0;
}

extern "C" void qnt_rt_parallel_for(qnt_rt_parallel_body body, void *context,
                                    int64_t n) {
  if (n <= 0)
    return;
  if (n == 1 || omp_in_parallel() || omp_get_max_threads() == 1) {
    body(context, 0, n);
    return;
  }
#pragma omp parallel
  {
    int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t begin = n * t / threads, end = n * (t + 1) / threads;
    if (begin < end)
      body(context, begin, end);
  }
}
