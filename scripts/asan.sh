#!/usr/bin/env bash
# asan.sh: the whole project (tools, runtime, unit tests) built with
# AddressSanitizer and UndefinedBehaviorSanitizer into $QNT_BUILD_DIR/asan,
# then lit (check-qnt, which includes the concurrent-runs stress tests) and
# ctest run against that build. Any ASan, LSan or UBSan report fails the
# test it happens in (halt_on_error, and lit and ctest see the exit code).
# scripts/test.sh runs it: about 18 min to build the ASan tree the first
# time on 2 shared cores, then 2-3 min for lit and ctest.
#
# Debian's libMLIR, libLLVM, oneDNN, XNNPACK and libgomp are not
# instrumented. That works with ASan (its malloc and interceptors are
# global; only the instrumented code's own accesses are checked), so no
# ASan or UBSan suppressions are needed. LeakSanitizer needs one entry
# (scripts/lsan.supp): kernels are never freed by design, and where their
# pointer lives in memory of the uninstrumented JIT LSan cannot see it. Programs the tests build against the
# instrumented runtime (quant-compile's libraries, the C programs that load
# them) must carry the ASan runtime too, or they refuse to start ("ASan
# runtime does not come first"): `cc` is a wrapper that adds the flags.
# The AArch64 tests use the normal build's cross runtime (not instrumented;
# it runs under qemu).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

asan_dir="$QNT_BUILD_DIR/asan"
sanitize="-fsanitize=address,undefined -fno-omit-frame-pointer"
if [[ ! -f "$asan_dir/build.ninja" ]]; then
  echo "== configuring $asan_dir (AddressSanitizer + UBSan)"
  cmake -G Ninja -S "$QNT_ROOT" -B "$asan_dir" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++ \
    -DCMAKE_C_FLAGS="$sanitize -g1" -DCMAKE_CXX_FLAGS="$sanitize -g1" \
    -DCMAKE_EXE_LINKER_FLAGS="$sanitize" \
    -DCMAKE_SHARED_LINKER_FLAGS="$sanitize" \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
    -DQNT_PYTHON="$QNT_PYTHON" >/dev/null
fi
qnt_ninja "$asan_dir" "ASan+UBSan build"

# The cross runtime the AArch64 lit tests link (built by test.sh).
ln -sfn "$QNT_BUILD_DIR/aarch64" "$asan_dir/aarch64"

mkdir -p "$asan_dir/wrappers"
cat >"$asan_dir/wrappers/cc" <<EOF
#!/bin/sh
exec gcc $sanitize "\$@"
EOF
chmod +x "$asan_dir/wrappers/cc"
export PATH="$asan_dir/wrappers:$PATH"

# halt_on_error: the first report ends the process with a non-zero exit.
# allow_user_poisoning=0: LLVM's BumpPtrAllocator (Allocator.h, inline)
# poisons a new slab and unpoisons what it hands out when compiled with
# ASan. Our instrumented inline copies and libMLIR's uninstrumented ones
# share the MLIR context's allocators, so objects libMLIR allocates from a
# slab our code poisoned stay poisoned: a false use-after-poison, e.g. on
# parsing a #qnt.qspec (found by fuzz/mutate.py). Real heap errors are
# still reported; only that manual poisoning is ignored.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:allow_user_poisoning=0"
export LSAN_OPTIONS="suppressions=$QNT_ROOT/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

status=0
log_dir="$asan_dir/logs"
mkdir -p "$log_dir"
echo "== lit (ASan+UBSan)"
/usr/lib/llvm-22/bin/lit -sv "$asan_dir/test" >"$log_dir/lit.log" 2>&1 || status=1
grep -E '^(FAIL|XPASS|UNRESOLVED):|Passed *:|Failed *:' "$log_dir/lit.log" || true
echo "== ctest (ASan+UBSan)"
(cd "$asan_dir" && ctest --output-on-failure) >"$log_dir/ctest.log" 2>&1 || status=1
grep -E 'tests passed|\*\*\*Failed|Not Run|Exception' "$log_dir/ctest.log" || true
if [[ $status -ne 0 ]]; then
  grep -hE -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
    "$log_dir/lit.log" "$log_dir/ctest.log" | head -n 60 || true
  echo "error: failures under ASan+UBSan (logs: $log_dir)" >&2
fi
exit $status
