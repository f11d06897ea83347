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
