/* run_model.c: runs a model compiled by quant-compile through its C API.
 *
 *   quant-compile int8.mlir --name model -o libmodel.so      (writes model.h)
 *   cc -I. run_model.c -L. -lmodel -Wl,-rpath,'$ORIGIN' -o run_model
 *   ./run_model input0.f32 [input1.f32 ...] [--runs N] [--threads T]
 *
 * Each input file holds the input's floats, raw little-endian (numpy:
 * array.astype('<f4').tofile(path)). Prints every output as one line of
 * "%.9g" values (exact float round trip); with --runs N > 1 it also prints
 * the median latency of N runs to stderr. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const long input_sizes[] = {
    MODEL_INPUT0_SIZE,
#if MODEL_NUM_INPUTS > 1
    MODEL_INPUT1_SIZE,
#endif
#if MODEL_NUM_INPUTS > 2
#error "this example reads at most two inputs"
#endif
};
static const long output_sizes[] = {
    MODEL_OUTPUT0_SIZE,
#if MODEL_NUM_OUTPUTS > 1
    MODEL_OUTPUT1_SIZE,
#endif
#if MODEL_NUM_OUTPUTS > 2
#error "this example prints at most two outputs"
#endif
};

static int read_floats(const char *path, float *dst, long n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "run_model: cannot open '%s'\n", path);
    return -1;
  }
  size_t got = fread(dst, sizeof(float), (size_t)n, f);
  int extra = fgetc(f) != EOF;
  fclose(f);
  if (got != (size_t)n || extra) {
    fprintf(stderr, "run_model: '%s' must hold exactly %ld floats\n", path, n);
    return -1;
  }
  return 0;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *paths[MODEL_NUM_INPUTS] = {0};
  int num_paths = 0, runs = 1, threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--runs") && i + 1 < argc)
      runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = atoi(argv[++i]);
    else if (num_paths < MODEL_NUM_INPUTS)
      paths[num_paths++] = argv[i];
    else {
      fprintf(stderr, "run_model: unexpected argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (num_paths != MODEL_NUM_INPUTS || runs < 1) {
    fprintf(stderr, "usage: run_model input0.f32 ... (%d inputs) [--runs N] "
                    "[--threads T]\n", MODEL_NUM_INPUTS);
    return 2;
  }

  float *inputs[MODEL_NUM_INPUTS], *outputs[MODEL_NUM_OUTPUTS];
  for (int i = 0; i < MODEL_NUM_INPUTS; ++i) {
    inputs[i] = malloc(input_sizes[i] * sizeof(float));
    if (!inputs[i] || read_floats(paths[i], inputs[i], input_sizes[i]))
      return 1;
  }
  for (int i = 0; i < MODEL_NUM_OUTPUTS; ++i)
    if (!(outputs[i] = malloc(output_sizes[i] * sizeof(float))))
      return 1;

  model_t *model = model_create(threads);
  if (!model) {
    fprintf(stderr, "run_model: model_create failed\n");
    return 1;
  }
  double *times = malloc(runs * sizeof(double));
  for (int r = 0; r < runs; ++r) {
    double t0 = now_ms();
    if (model_run(model, (const float *const *)inputs, outputs)) {
      fprintf(stderr, "run_model: model_run failed\n");
      return 1;
    }
    times[r] = now_ms() - t0;
  }
  for (int i = 0; i < MODEL_NUM_OUTPUTS; ++i) {
    for (long j = 0; j < output_sizes[i]; ++j)
      printf("%s%.9g", j ? " " : "", outputs[i][j]);
    printf("\n");
  }
  if (runs > 1) {
    qsort(times, runs, sizeof(double), cmp_double);
    fprintf(stderr, "latency: median %.3f ms over %d runs\n", times[runs / 2],
            runs);
  }
  model_destroy(model);
  free(times);
  for (int i = 0; i < MODEL_NUM_INPUTS; ++i)
    free(inputs[i]);
  for (int i = 0; i < MODEL_NUM_OUTPUTS; ++i)
    free(outputs[i]);
  return 0;
}
