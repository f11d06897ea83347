/* INT8 dot-product compute ceiling of this CPU, in GMAC/s (u8 x s8 -> s32
 * multiply-accumulates per second), on 1 thread and on N threads.
 *
 *   cc -O2 -mavx2 -pthread bench/ceiling.c -o ceiling && ./ceiling [threads]
 *
 * Kernels (register-resident operands: this is the arithmetic peak, what a
 * conv / GEMM kernel can reach when its data is in L1):
 *   avx2        vpmaddubsw + vpmaddwd + vpaddd on ymm (32 MAC per triple);
 *               what oneDNN's jit_uni_int8:avx2 uses
 *   avx512vnni  vpdpbusd on zmm (64 MAC per instruction); oneDNN's
 *               avx512_core_vnni kernels. Run only if cpuid reports
 *               AVX-512 VNNI; the function carries its own target attribute,
 *               so the binary still runs on AVX2-only CPUs.
 * Each kernel keeps 12 independent accumulator chains, enough to cover the
 * instruction latencies. Best of 5 runs of ~0.1 s. Output lines:
 *   CEILING isa=<isa> threads=<n> gmacs=<GMAC/s>                            */

#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const uint8_t kA[64] __attribute__((aligned(64))) = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const int8_t kB[64] __attribute__((aligned(64))) = {
    -1, 2, -3, 4, -5, 6, -7, 8, -1, 2, -3, 4, -5, 6, -7, 8,
    -1, 2, -3, 4, -5, 6, -7, 8, -1, 2, -3, 4, -5, 6, -7, 8,
    -1, 2, -3, 4, -5, 6, -7, 8, -1, 2, -3, 4, -5, 6, -7, 8,
    -1, 2, -3, 4, -5, 6, -7, 8, -1, 2, -3, 4, -5, 6, -7, 8};
static const int16_t kOnes[16] __attribute__((aligned(64))) = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

/* MACs per loop iteration of each kernel. */
#define AVX2_MACS_PER_ITER (12 * 32)
#define VNNI_MACS_PER_ITER (12 * 64)

#define AVX2_STEP(acc, tmp)                                                    \
  "vpmaddubsw %%ymm13, %%ymm14, %%ymm" #tmp "\n\t"                             \
  "vpmaddwd %%ymm15, %%ymm" #tmp ", %%ymm" #tmp "\n\t"                         \
  "vpaddd %%ymm" #tmp ", %%ymm" #acc ", %%ymm" #acc "\n\t"

__attribute__((target("avx2"), noinline)) static int32_t
avx2_kernel(int64_t iters) {
  int32_t out[8] __attribute__((aligned(32)));
  __asm__ volatile(
      "vmovdqa (%[a]), %%ymm14\n\t"
      "vmovdqa (%[b]), %%ymm13\n\t"
      "vmovdqa (%[ones]), %%ymm15\n\t"
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
      "vpxor %%ymm1, %%ymm1, %%ymm1\n\t"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n\t"
      "vpxor %%ymm3, %%ymm3, %%ymm3\n\t"
      "vpxor %%ymm4, %%ymm4, %%ymm4\n\t"
      "vpxor %%ymm5, %%ymm5, %%ymm5\n\t"
      "1:\n\t"
      /* 12 steps: 6 accumulators, 6 temporaries, used twice. */
      AVX2_STEP(0, 6) AVX2_STEP(1, 7) AVX2_STEP(2, 8) AVX2_STEP(3, 9)
      AVX2_STEP(4, 10) AVX2_STEP(5, 11)
      AVX2_STEP(0, 6) AVX2_STEP(1, 7) AVX2_STEP(2, 8) AVX2_STEP(3, 9)
      AVX2_STEP(4, 10) AVX2_STEP(5, 11)
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vpaddd %%ymm1, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm2, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm3, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm4, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm5, %%ymm0, %%ymm0\n\t"
      "vmovdqa %%ymm0, (%[out])\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(iters)
      : [a] "r"(kA), [b] "r"(kB), [ones] "r"(kOnes), [out] "r"(out)
      : "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
        "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
        "xmm15");
  return out[0];
}

#define VNNI_STEP(acc) "vpdpbusd %%zmm31, %%zmm30, %%zmm" #acc "\n\t"

__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) static int32_t
vnni_kernel(int64_t iters) {
  int32_t out[16] __attribute__((aligned(64)));
  __asm__ volatile(
      "vmovdqa64 (%[a]), %%zmm30\n\t"
      "vmovdqa64 (%[b]), %%zmm31\n\t"
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
      "vpxord %%zmm1, %%zmm1, %%zmm1\n\t"
      "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"
      "vpxord %%zmm3, %%zmm3, %%zmm3\n\t"
      "vpxord %%zmm4, %%zmm4, %%zmm4\n\t"
      "vpxord %%zmm5, %%zmm5, %%zmm5\n\t"
      "vpxord %%zmm6, %%zmm6, %%zmm6\n\t"
      "vpxord %%zmm7, %%zmm7, %%zmm7\n\t"
      "vpxord %%zmm8, %%zmm8, %%zmm8\n\t"
      "vpxord %%zmm9, %%zmm9, %%zmm9\n\t"
      "vpxord %%zmm10, %%zmm10, %%zmm10\n\t"
      "vpxord %%zmm11, %%zmm11, %%zmm11\n\t"
      "1:\n\t"
      VNNI_STEP(0) VNNI_STEP(1) VNNI_STEP(2) VNNI_STEP(3) VNNI_STEP(4)
      VNNI_STEP(5) VNNI_STEP(6) VNNI_STEP(7) VNNI_STEP(8) VNNI_STEP(9)
      VNNI_STEP(10) VNNI_STEP(11)
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vpaddd %%zmm1, %%zmm0, %%zmm0\n\t"
      "vpaddd %%zmm2, %%zmm0, %%zmm0\n\t"
      "vpaddd %%zmm3, %%zmm0, %%zmm0\n\t"
      "vpaddd %%zmm4, %%zmm0, %%zmm0\n\t"
      "vpaddd %%zmm5, %%zmm0, %%zmm0\n\t"
      "vpaddd %%zmm6, %%zmm0, %%zmm0\n\t"
      "vpaddd %%zmm7, %%zmm0, %%zmm0\n\t"
      "vpaddd %%zmm8, %%zmm0, %%zmm0\n\t"
      "vpaddd %%zmm9, %%zmm0, %%zmm0\n\t"
      "vpaddd %%zmm10, %%zmm0, %%zmm0\n\t"
      "vpaddd %%zmm11, %%zmm0, %%zmm0\n\t"
      "vmovdqa64 %%zmm0, (%[out])\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(iters)
      : [a] "r"(kA), [b] "r"(kB), [out] "r"(out)
      : "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
        "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm30", "xmm31");
  return out[0];
}

typedef int32_t (*kernel_fn)(int64_t);

struct job {
  kernel_fn fn;
  int64_t iters;
  pthread_barrier_t *start;
  volatile int32_t sink;
};

static void *worker(void *arg) {
  struct job *j = arg;
  pthread_barrier_wait(j->start);
  j->sink = j->fn(j->iters);
  return NULL;
}

/* Wall time of `threads` threads each running fn(iters). */
static double run_threads(kernel_fn fn, int64_t iters, int threads) {
  pthread_t tid[64];
  struct job jobs[64];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
  for (int t = 0; t < threads; ++t) {
    jobs[t].fn = fn;
    jobs[t].iters = iters;
    jobs[t].start = &start;
    pthread_create(&tid[t], NULL, worker, &jobs[t]);
  }
  pthread_barrier_wait(&start);
  double t0 = now();
  for (int t = 0; t < threads; ++t)
    pthread_join(tid[t], NULL);
  double t1 = now();
  pthread_barrier_destroy(&start);
  return t1 - t0;
}

/* Best GMAC/s over 5 runs of about 0.1 s. */
static double measure(kernel_fn fn, int64_t macs_per_iter, int threads) {
  int64_t iters = 1000;
  while (run_threads(fn, iters, 1) < 0.02)
    iters *= 2;
  iters *= 5; /* ~0.1 s */
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    double s = run_threads(fn, iters, threads);
    double g = (double)iters * macs_per_iter * threads / s * 1e-9;
    if (g > best)
      best = g;
  }
  return best;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  if (threads < 1 || threads > 64) {
    fprintf(stderr, "usage: %s [threads (1..64)]\n", argv[0]);
    return 2;
  }
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2")) {
    fprintf(stderr, "ceiling: this CPU has no AVX2\n");
    return 1;
  }
  int vnni = __builtin_cpu_supports("avx512vnni") &&
             __builtin_cpu_supports("avx512bw");
  printf("INT8 dot-product ceiling (u8 x s8 -> s32), GMAC/s, best of 5\n");
  int counts[2] = {1, threads};
  int nc = threads == 1 ? 1 : 2;
  for (int i = 0; i < nc; ++i)
    printf("CEILING isa=avx2 threads=%d gmacs=%.1f\n", counts[i],
           measure(avx2_kernel, AVX2_MACS_PER_ITER, counts[i]));
  if (vnni) {
    for (int i = 0; i < nc; ++i)
      printf("CEILING isa=avx512vnni threads=%d gmacs=%.1f\n", counts[i],
             measure(vnni_kernel, VNNI_MACS_PER_ITER, counts[i]));
  } else {
    printf("(no AVX-512 VNNI on this CPU: vpdpbusd not measured)\n");
  }
  return 0;
}
