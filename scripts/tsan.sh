#!/usr/bin/env bash
# tsan.sh: the concurrent inference stress test (test/tools/concurrent-runs.c)
# under ThreadSanitizer. Builds runtime/ with -fsanitize=thread into
# $QNT_BUILD_DIR/tsan/runtime (a standalone build of the directory), compiles
# the CNN and the residual block with quant-compile against it for every
# backend, builds the stress program with -fsanitize=thread and runs it.
# Exits non-zero on any report or differing result. scripts/test.sh runs it
# (about 30 s once the TSan runtime is built, 1-2 min for that build).
#
# Debian's oneDNN, XNNPACK, pthreadpool and libgomp are not instrumented:
# TSan sees the runtime's own code and the calls into those libraries, not
# their insides (so not oneDNN's JIT kernels writing a scratchpad), and it
# does not see how libgomp and pthreadpool hand work to their threads and
# wait for it (futexes and atomics in uninstrumented code). With
# OMP_NUM_THREADS=2 it reports, for example, a libgomp worker's memset in
# oneDNN's weight reorder racing with the free after the parallel region: a
# false positive. So the kernels run on one thread each here
# (OMP_NUM_THREADS=1, and with it no XNNPACK pool) while four threads run the
# model at once, which is the concurrency under test. No suppressions are
# needed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

tsan_dir="$QNT_BUILD_DIR/tsan"
if [[ ! -f "$tsan_dir/runtime/build.ninja" ]]; then
  echo "== configuring $tsan_dir/runtime (ThreadSanitizer)"
  cmake -G Ninja -S "$QNT_ROOT/runtime" -B "$tsan_dir/runtime" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++ \
    -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_CXX_FLAGS=-fsanitize=thread \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
fi
qnt_ninja "$tsan_dir/runtime" "ThreadSanitizer runtime"

export PATH="$QNT_BUILD_DIR/bin:$PATH"
export QNT_RUNTIME_DIR="$tsan_dir/runtime/lib" CC=gcc CFLAGS="-g -fsanitize=thread"
export OMP_NUM_THREADS=1
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"
status=0
for model in cnn residual; do
  for backend in onednn xnnpack auto; do
    out="$tsan_dir/$model-$backend"
    echo "== $model, $backend"
    if ! "$QNT_ROOT/test/tools/concurrent-runs.sh" \
      "$QNT_ROOT/test/tools/Inputs/$model-int8.mlir" "$backend" "$out" \
      --runs 10 ||
      ! "$out/concurrent-runs" --runs 10 --create threads; then
      echo "error: $model on $backend failed under ThreadSanitizer" >&2
      status=1
    fi
  done
done
exit $status
