/* token-ids.c: drives the C API of Inputs/token-ids.mlir compiled as
 * "model" (int64 ids in [0, 40) and a bool padding mask, both [2, 6]).
 * With `ids.bin mask.bin`, prints the outputs of model_run on them (one line
 * of %.9g floats); then prints the status of each bad call, and whether
 * the outputs stayed untouched. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_file(const char *path, void *data, size_t bytes) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return 0;
  size_t n = fread(data, 1, bytes, f);
  fclose(f);
  return n == bytes;
}

static float out[MODEL_OUTPUT0_SIZE];
static float *const outputs[] = {out};

/* Runs a bad call: prints its status and message, checks the outputs. */
static void expect_error(const char *what, int status, const char *message) {
  int untouched = 1;
  for (int i = 0; i < MODEL_OUTPUT0_SIZE; ++i)
    untouched &= out[i] == -7.0f;
  printf("%s: %d (%s) %s\n", what, status, model_status_string(status),
         untouched ? "outputs untouched" : "OUTPUTS WRITTEN");
  if (message && *message)
    printf("  message: %s\n", message);
}

int main(int argc, char **argv) {
  int64_t ids[MODEL_INPUT0_SIZE];
  uint8_t mask[MODEL_INPUT1_SIZE];
  if (argc != 3 || !read_file(argv[1], ids, sizeof ids) ||
      !read_file(argv[2], mask, sizeof mask)) {
    fprintf(stderr, "usage: token-ids ids.i64 mask.u8\n");
    return 2;
  }
  model_t *model = model_create(1);
  if (!model)
    return 1;
  const void *inputs[] = {ids, mask};
  if (model_run(model, inputs, outputs) != MODEL_OK)
    return 1;
  for (int i = 0; i < MODEL_OUTPUT0_SIZE; ++i)
    printf("%s%.9g", i ? " " : "", out[i]);
  printf("\n");

  const int64_t shape[] = MODEL_INPUT0_SHAPE, longer[] = {2, 7};
  model_tensor tensors[] = {{MODEL_INT64, 2, shape, ids},
                            {MODEL_BOOL, 2, shape, mask}};
  char message[256];
  int status =
      model_run_tensors(model, tensors, 2, outputs, message, sizeof message);
  printf("run_tensors: %d\n", status);

  /* Bad calls: none may write the outputs. */
  for (int i = 0; i < MODEL_OUTPUT0_SIZE; ++i)
    out[i] = -7.0f;
  int64_t saved = ids[7];
  ids[7] = 40;
  expect_error("id 40", model_run(model, inputs, outputs), NULL);
  ids[7] = -1;
  status =
      model_run_tensors(model, tensors, 2, outputs, message, sizeof message);
  expect_error("id -1", status, message);
  ids[7] = saved;
  mask[3] = 2;
  status =
      model_run_tensors(model, tensors, 2, outputs, message, sizeof message);
  expect_error("bool 2", status, message);
  mask[3] = 0;
  tensors[1].shape = longer;
  status =
      model_run_tensors(model, tensors, 2, outputs, message, sizeof message);
  expect_error("longer sequence", status, message);
  tensors[1].shape = shape;
  tensors[0].dtype = MODEL_INT32;
  status =
      model_run_tensors(model, tensors, 2, outputs, message, sizeof message);
  expect_error("int32 ids", status, message);
  tensors[0].dtype = MODEL_INT64;
  tensors[1].dtype = MODEL_FLOAT32;
  status =
      model_run_tensors(model, tensors, 2, outputs, message, sizeof message);
  expect_error("float mask", status, message);
  tensors[1].dtype = MODEL_BOOL;
  tensors[1].rank = 1;
  status =
      model_run_tensors(model, tensors, 2, outputs, message, sizeof message);
  expect_error("rank 1", status, message);
  tensors[1].rank = 2;
  status =
      model_run_tensors(model, tensors, 1, outputs, message, sizeof message);
  expect_error("one input", status, message);
  tensors[1].data = NULL;
  status =
      model_run_tensors(model, tensors, 2, outputs, message, sizeof message);
  expect_error("NULL data", status, message);
  tensors[1].data = mask;
  status = model_run_tensors(model, tensors, 2, outputs, NULL, 0);
  printf("no message buffer: %d\n", status);
  model_destroy(model);
  return 0;
}
