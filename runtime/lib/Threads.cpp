//===- Threads.cpp - qnt_rt_set_num_threads -------------------------------===//

#include "Common.h"
#include "Xnnpack.h"

#include <omp.h>

extern "C" void qnt_rt_set_num_threads(int n) {
  // oneDNN (OpenMP runtime) and the reference kernels both use the OpenMP
  // thread pool of the calling thread; XNNPACK has its own pool.
  if (n > 0) {
    omp_set_num_threads(n);
    qnt::rt::setXnnNumThreads(n);
  }
}
