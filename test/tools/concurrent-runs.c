/* concurrent-runs.c: runs a model compiled by quant-compile from several
 * threads at once and checks that every result equals the single-threaded
 * one bit for bit (docs/runtime.md, "Threads").
 *
 *   quant-compile m.mlir --name model -o libmodel.so       (writes model.h)
 *   cc -I. concurrent-runs.c -L. -lmodel -lpthread -o concurrent-runs
 *   ./concurrent-runs [--threads T] [--runs R] [--inputs N]
 *                     [--num-threads K[,K...]] [--create main|threads]
 *
 * N fixed pseudo-random inputs (uniform in [-2, 2), the same in every run).
 * Each of the T threads creates its own instance and runs all N inputs R
 * times, keeping every output. With --create threads, the threads call
 * model_create at the same moment, so one of them creates the kernels while
 * the others already run; with --create main (the default) the main thread
 * creates the first instance before the threads start. After the threads
 * have joined, the main thread runs each input once on its own instance and
 * compares. --num-threads gives model_create's argument: thread t passes the
 * (t mod count)-th of the list, the main thread the first (default 0), so
 * a list changes the kernel thread count while other threads run. Prints
 * how many of the
 * T * R * N results differ and exits 1 if any does. */
#include "model.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if MODEL_NUM_INPUTS > 2 || MODEL_NUM_OUTPUTS > 2
#error "this program handles at most two inputs and two outputs"
#endif

static const long input_sizes[] = {
    MODEL_INPUT0_SIZE,
#if MODEL_NUM_INPUTS > 1
    MODEL_INPUT1_SIZE,
#endif
};
static const long output_sizes[] = {
    MODEL_OUTPUT0_SIZE,
#if MODEL_NUM_OUTPUTS > 1
    MODEL_OUTPUT1_SIZE,
#endif
};

enum { kMaxCounts = 8 };
static int num_inputs = 16, runs = 50;
static int kernel_threads[kMaxCounts], num_counts = 1;
static long output_floats; /* all outputs of one run */
static float **inputs;     /* [num_inputs][MODEL_NUM_INPUTS] */
static pthread_barrier_t start;

/* One thread: where it starts and every output it computed. */
typedef struct {
  int index;
  float *results; /* [runs][num_inputs][output_floats] */
  int failed;
} worker_t;

static int run_once(model_t *model, int input, float *out) {
  float *outputs[MODEL_NUM_OUTPUTS];
  long at = 0;
  for (int o = 0; o < MODEL_NUM_OUTPUTS; ++o) {
    outputs[o] = out + at;
    at += output_sizes[o];
  }
  return model_run(
      model, (const float *const *)&inputs[input * MODEL_NUM_INPUTS], outputs);
}

static void *worker(void *arg) {
  worker_t *w = arg;
  pthread_barrier_wait(&start);
  model_t *model = model_create(kernel_threads[w->index % num_counts]);
  if (!model) {
    w->failed = 1;
    return NULL;
  }
  for (int r = 0; r < runs; ++r)
    for (int k = 0; k < num_inputs; ++k) {
      /* Threads start at different inputs, so different call sites and
         different data meet. */
      int i = (k + w->index) % num_inputs;
      float *out = w->results + ((long)r * num_inputs + i) * output_floats;
      if (run_once(model, i, out))
        w->failed = 1;
    }
  model_destroy(model);
  return NULL;
}

/* Deterministic inputs: a 64-bit LCG, uniform in [-2, 2). */
static float next_float(uint64_t *state) {
  *state = *state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((*state >> 40) * (1.0 / (1 << 24))) * 4.0f - 2.0f;
}

/* Parses "N" (min <= N <= 100000) into v[0], or with `max_count` > 1 a
   comma-separated list into v[0..*count). */
static int parse_ints(const char *s, int *v, int max_count, int *count,
                      int min) {
  int n = 0;
  for (;;) {
    char *end;
    long x = strtol(s, &end, 10);
    if (end == s || x < min || x > 100000 || n == max_count)
      return -1;
    v[n++] = (int)x;
    if (*end == '\0')
      break;
    if (*end != ',')
      return -1;
    s = end + 1;
  }
  if (count)
    *count = n;
  return 0;
}

static int parse_int(const char *s, int *v, int min) {
  return parse_ints(s, v, 1, NULL, min);
}

int main(int argc, char **argv) {
  int threads = 4, create_in_threads = 0;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = !v;
    if (!bad && !strcmp(a, "--threads"))
      bad = parse_int(v, &threads, 1);
    else if (!bad && !strcmp(a, "--runs"))
      bad = parse_int(v, &runs, 1);
    else if (!bad && !strcmp(a, "--inputs"))
      bad = parse_int(v, &num_inputs, 1);
    else if (!bad && !strcmp(a, "--num-threads"))
      bad = parse_ints(v, kernel_threads, kMaxCounts, &num_counts, 0);
    else if (!bad && !strcmp(a, "--create") &&
             (!strcmp(v, "main") || !strcmp(v, "threads")))
      create_in_threads = !strcmp(v, "threads");
    else
      bad = 1;
    if (bad) {
      fprintf(stderr, "usage: concurrent-runs [--threads T] [--runs R] "
                      "[--inputs N] [--num-threads K[,K...]] "
                      "[--create main|threads]\n");
      return 2;
    }
    ++i;
  }

  for (int o = 0; o < MODEL_NUM_OUTPUTS; ++o)
    output_floats += output_sizes[o];
  uint64_t state = 42;
  inputs = calloc((size_t)num_inputs * MODEL_NUM_INPUTS, sizeof *inputs);
  if (!inputs)
    return 1;
  for (int i = 0; i < num_inputs; ++i)
    for (int j = 0; j < MODEL_NUM_INPUTS; ++j) {
      /* 16 floats of tail: the model may read past an input (runtime.md). */
      float *in = calloc(input_sizes[j] + 16, sizeof(float));
      if (!in)
        return 1;
      for (long e = 0; e < input_sizes[j]; ++e)
        in[e] = next_float(&state);
      inputs[i * MODEL_NUM_INPUTS + j] = in;
    }

  model_t *reference = NULL;
  if (!create_in_threads && !(reference = model_create(kernel_threads[0]))) {
    fprintf(stderr, "concurrent-runs: model_create failed\n");
    return 1;
  }
  worker_t *workers = calloc(threads, sizeof *workers);
  pthread_t *ids = calloc(threads, sizeof *ids);
  if (!workers || !ids || pthread_barrier_init(&start, NULL, threads))
    return 1;
  for (int t = 0; t < threads; ++t) {
    workers[t].index = t;
    workers[t].results =
        malloc((size_t)runs * num_inputs * output_floats * sizeof(float));
    if (!workers[t].results ||
        pthread_create(&ids[t], NULL, worker, &workers[t])) {
      fprintf(stderr, "concurrent-runs: cannot start thread %d\n", t);
      return 1;
    }
  }
  int failed = 0;
  for (int t = 0; t < threads; ++t) {
    pthread_join(ids[t], NULL);
    failed |= workers[t].failed;
  }
  if (failed) {
    fprintf(stderr, "concurrent-runs: model_create or model_run failed\n");
    return 1;
  }

  if (!reference && !(reference = model_create(kernel_threads[0])))
    return 1;
  float *expected = malloc(output_floats * sizeof(float));
  long differ = 0, total = (long)threads * runs * num_inputs;
  for (int i = 0; i < num_inputs; ++i) {
    if (!expected || run_once(reference, i, expected))
      return 1;
    for (int t = 0; t < threads; ++t)
      for (int r = 0; r < runs; ++r) {
        const float *got =
            workers[t].results + ((long)r * num_inputs + i) * output_floats;
        differ += memcmp(got, expected, output_floats * sizeof(float)) != 0;
      }
  }
  printf("%d threads x %d runs x %d inputs: %ld of %ld results differ from "
         "the single-threaded run\n",
         threads, runs, num_inputs, differ, total);
  model_destroy(reference);
  for (int t = 0; t < threads; ++t)
    free(workers[t].results);
  free(workers);
  free(ids);
  free(expected);
  for (int i = 0; i < num_inputs * MODEL_NUM_INPUTS; ++i)
    free(inputs[i]);
  free(inputs);
  pthread_barrier_destroy(&start);
  return differ != 0;
}
