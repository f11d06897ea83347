#!/usr/bin/env bash
# libfuzzer.sh: the libFuzzer targets (fuzz/*-fuzzer.cpp) for the .npy/.npz
# reader and the statistics-file parser. Builds each with clang-22
# (-fsanitize=fuzzer,address,undefined) from the library sources it needs,
# into $QNT_BUILD_DIR/fuzz/<target>, seeds a corpus from the test inputs
# (the stats files under test/, .npy/.npz images numpy writes) and a
# dictionary (fuzz/<target>.dict), and runs it
# for QNT_FUZZ_SECONDS (default 60) with a fixed seed. Exits non-zero if a
# target finds a crash, a sanitizer report, a leak or a slow input (> 10 s);
# the input is left in $QNT_BUILD_DIR/fuzz/<target>/crash-* (reproduce:
# `<target>/fuzzer <that file>`). libLLVM (llvm::json, Support) is Debian's
# uninstrumented build: its insides are not checked, only our code and
# what it hands over.
#   QNT_FUZZ_TARGETS  targets to run (default: npy stats)
set -euo pipefail
QNT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QNT_BUILD_DIR="${QNT_BUILD_DIR:-$QNT_ROOT/build}"
seconds="${QNT_FUZZ_SECONDS:-60}"
fuzz_dir="$QNT_BUILD_DIR/fuzz"
cxx=/usr/bin/clang++-22

# Sources of the code under test, per target.
declare -A sources=(
  [npy]="lib/Support/NpyIO.cpp lib/Support/AtomicFile.cpp"
  [stats]="lib/Calibration/Stats.cpp lib/Support/AtomicFile.cpp"
)

build_target() {
  local target="$1" dir="$fuzz_dir/$1" files=()
  for f in ${sources[$target]} "fuzz/$target-fuzzer.cpp"; do
    files+=("$QNT_ROOT/$f")
  done
  # Rebuild only when a source is newer than the binary.
  if [[ -x "$dir/fuzzer" ]]; then
    local stale=0 f
    for f in "${files[@]}" "$QNT_ROOT"/include/qnt/*/*.h "$0"; do
      [[ "$f" -nt "$dir/fuzzer" ]] && stale=1
    done
    [[ $stale -eq 0 ]] && return 0
  fi
  echo "== building $target fuzzer (clang-22)"
  # libLLVM is built without RTTI and exceptions; match it.
  "$cxx" -std=c++17 -O1 -g -fno-omit-frame-pointer -fno-rtti -fno-exceptions \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    $(llvm-config-22 --cppflags) -I"$QNT_ROOT/include" \
    "${files[@]}" -o "$dir/fuzzer" \
    -L/usr/lib/llvm-22/lib -Wl,-rpath,/usr/lib/llvm-22/lib -lLLVM-22 -lz
}

seed_corpus() {
  local target="$1" seeds="$fuzz_dir/$1/seeds"
  rm -rf "$seeds"
  mkdir -p "$seeds"
  # Inputs that once failed (fuzz/corpus/<target>): regression seeds.
  if [[ -d "$QNT_ROOT/fuzz/corpus/$target" ]]; then
    cp "$QNT_ROOT/fuzz/corpus/$target"/* "$seeds/"
  fi
  case "$target" in
  stats)
    local i=0 f
    while IFS= read -r f; do
      i=$((i + 1))
      cp "$f" "$seeds/$i-$(basename "$f")"
    done < <(find "$QNT_ROOT/test" -name '*.json' | sort)
    ;;
  npy)
    /usr/bin/python3 - "$seeds" <<'PY'
import sys, numpy as np
d = sys.argv[1]
a = {"f32": np.arange(6, dtype=np.float32).reshape(2, 3),
     "f64": np.array([1.5, -2.0]), "i8": np.array([-128, 127], np.int8),
     "u8": np.zeros((1, 2, 2), np.uint8), "i64": np.array(7, np.int64),
     "b": np.array([True, False]), "empty": np.zeros((0, 3), np.float32)}
for k, v in a.items():
    np.save(f"{d}/{k}.npy", v)
np.savez(f"{d}/stored.npz", **a)
np.savez_compressed(f"{d}/deflated.npz", x=a["f32"], y=a["i8"])
np.savez(f"{d}/none.npz")
PY
    ;;
  esac
}

status=0
for target in ${QNT_FUZZ_TARGETS:-npy stats}; do
  dir="$fuzz_dir/$target"
  mkdir -p "$dir/corpus"
  build_target "$target"
  seed_corpus "$target"
  echo "== fuzzing $target for ${seconds}s"
  if ! (cd "$dir" && ASAN_OPTIONS="detect_leaks=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" ./fuzzer \
    -seed=1 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$dir/" \
    -dict="$QNT_ROOT/fuzz/$target.dict" \
    corpus seeds >"$dir/fuzz.log" 2>&1); then
    tail -n 40 "$dir/fuzz.log"
    echo "error: the $target fuzzer failed; input: $(ls "$dir"/{crash,leak,timeout,oom,slow-unit}-* 2>/dev/null | head -n1)" >&2
    status=1
  fi
  grep -E '^stat::number_of_executed_units|Done [0-9]+ runs' "$dir/fuzz.log" | tail -n1
done
exit $status
