#!/usr/bin/env bash
# setup.sh: what scripts/demo.sh and scripts/test.sh share. Installs the
# Debian packages the build and the tests need (when missing), configures
# build/ on first use and builds incrementally. Source it or run it.
#   QNT_BUILD_DIR  build directory (default: <repo>/build)
set -euo pipefail

QNT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QNT_BUILD_DIR="${QNT_BUILD_DIR:-$QNT_ROOT/build}"
# Debian's numpy/torch live under /usr/bin/python3, which need not be the
# python3 first on PATH.
QNT_PYTHON=/usr/bin/python3

qnt_packages=(
  cmake ninja-build g++ pkg-config
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
  libdnnl-dev libxnnpack-dev libpthreadpool-dev libgtest-dev zlib1g-dev
  python3 python3-numpy python3-pytest
  python3-torch python3-torchvision python3-onnx dataset-fashion-mnist
  # Sharded calibration on a Dask cluster (qnt.calibration, quantize_static(client=...)).
  python3-distributed
  # The PNG charts of python -m qnt analyze (qnt.accuracy.analyze) and bench/run.py.
  python3-matplotlib
  # The libFuzzer targets (fuzz/libfuzzer.sh): clang and its sanitizer runtimes.
  clang-22 libclang-rt-22-dev
)

qnt_install_packages() {
  local missing=()
  for p in "${qnt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  echo "== installing: ${missing[*]}"
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

# qnt_ninja DIR WHAT: builds DIR, logging to DIR/build.log; on failure shows
# the log's tail.
qnt_ninja() {
  echo "== building $2 (log: $1/build.log)"
  if ! ninja -C "$1" -j "${QNT_JOBS:-$(nproc)}" >"$1/build.log" 2>&1; then
    tail -n 40 "$1/build.log" >&2
    echo "error: the $2 build failed (full log: $1/build.log)" >&2
    return 1
  fi
}

qnt_build() {
  if [[ ! -f "$QNT_BUILD_DIR/build.ninja" ]]; then
    echo "== configuring $QNT_BUILD_DIR"
    cmake -G Ninja -S "$QNT_ROOT" -B "$QNT_BUILD_DIR" \
      -DCMAKE_BUILD_TYPE=Release \
      -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
      -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
      -DQNT_PYTHON="$QNT_PYTHON" >/dev/null
  fi
  qnt_ninja "$QNT_BUILD_DIR" qnt
}

# The AArch64 runtime for quant-compile --target aarch64 (scripts/test.sh):
# a sysroot of Debian's arm64 packages and a cross build of runtime/, both
# under $QNT_BUILD_DIR/aarch64.
qnt_build_aarch64() {
  local dir="$QNT_BUILD_DIR/aarch64"
  bash "$QNT_ROOT/scripts/aarch64-sysroot.sh" "$dir/sysroot"
  if [[ ! -f "$dir/runtime/build.ninja" ]]; then
    echo "== configuring $dir/runtime (AArch64 cross build)"
    cmake -G Ninja -S "$QNT_ROOT/runtime" -B "$dir/runtime" \
      -DCMAKE_TOOLCHAIN_FILE="$QNT_ROOT/cmake/aarch64-linux-gnu.cmake" \
      -DQNT_AARCH64_SYSROOT="$dir/sysroot" >/dev/null
  fi
  qnt_ninja "$dir/runtime" "AArch64 runtime"
}

qnt_install_packages
qnt_build
