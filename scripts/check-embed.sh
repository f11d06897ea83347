#!/usr/bin/env bash
# check-embed.sh BUILD_DIR
#
# Checks that qnt works as an installed CMake package: installs BUILD_DIR
# into BUILD_DIR/install, builds the out-of-tree consumer examples/embed
# against it (find_package(QNT), in BUILD_DIR/embed) and runs
#   qnt-embed examples/cnn/model.mlir
# which must exit 0 and print IR containing qnt.observe and qnt.conv2d.
# Incremental: re-running only re-copies changed files and rebuilds what
# changed. Prints "embed: N passed, M failed"; exits 1 on failure.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -f "$1/CMakeCache.txt" ]]; then
  echo "embed: FAIL: $1 is not a configured qnt build directory" >&2
  echo "embed: 0 passed, 1 failed"
  exit 1
fi
BUILD="$(cd "$1" && pwd)"
PREFIX="$BUILD/install"
EMBED="$BUILD/embed"
INPUT="$ROOT/examples/cnn/model.mlir"
LOG="$EMBED/check-embed.log"
mkdir -p "$EMBED"
: >"$LOG"

failed=0
fail() {
  echo "embed: FAIL: $1" >&2
  if [[ -s "$LOG" ]]; then
    echo "---- last lines of $LOG ----" >&2
    tail -n 40 "$LOG" >&2
  fi
  failed=1
}

run_check() {
  # 1. Install the (already built) project; unchanged files are skipped.
  if ! cmake --install "$BUILD" --prefix "$PREFIX" >>"$LOG" 2>&1; then
    fail "cmake --install $BUILD --prefix $PREFIX"; return
  fi

  # 2. Configure examples/embed once (later builds re-run CMake by themselves
  #    if QNTConfig.cmake / QNTTargets*.cmake change). Use the compiler of the
  #    main build.
  if [[ ! -f "$EMBED/CMakeCache.txt" ]]; then
    local args=(-S "$ROOT/examples/embed" -B "$EMBED"
                -DQNT_DIR="$PREFIX/lib/cmake/qnt" -DCMAKE_BUILD_TYPE=Release)
    command -v ninja >/dev/null 2>&1 && args+=(-G Ninja)
    local cxx
    cxx="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)"
    [[ -n "$cxx" ]] && args+=(-DCMAKE_CXX_COMPILER="$cxx")
    if ! cmake "${args[@]}" >>"$LOG" 2>&1; then
      rm -f "$EMBED/CMakeCache.txt" # configure again next time
      fail "configuring examples/embed against $PREFIX"; return
    fi
  fi

  # 3. Build qnt-embed.
  if ! cmake --build "$EMBED" >>"$LOG" 2>&1; then
    fail "building examples/embed"; return
  fi

  # 4. Run it on the CNN example.
  local out="$EMBED/model.out.mlir" err="$EMBED/model.err" rc=0
  "$EMBED/qnt-embed" "$INPUT" >"$out" 2>"$err" || rc=$?
  cat "$err" >>"$LOG"
  if [[ $rc -ne 0 ]]; then
    fail "qnt-embed $INPUT exited with $rc"; return
  fi
  local op
  for op in qnt.observe qnt.conv2d; do
    if ! grep -q "$op" "$out"; then
      fail "qnt-embed output ($out) has no $op"; return
    fi
  done
}

run_check
if [[ $failed -eq 0 ]]; then
  echo "embed: 1 passed, 0 failed"
else
  echo "embed: 0 passed, 1 failed"
  exit 1
fi
