#!/usr/bin/env bash
# aot-run.sh TARGET MODEL INPUT OUTDIR: compiles MODEL with quant-compile for
# TARGET (x86_64 or aarch64) with the XNNPACK backend, builds
# examples/aot/run_model.c against the library, and runs it on INPUT (raw
# f32), printing the outputs. aarch64 cross-links against
# $QNT_AARCH64_RUNTIME_DIR (libqnt_runtime.so for aarch64) and
# $QNT_AARCH64_SYSROOT (scripts/aarch64-sysroot.sh) and runs under
# qemu-aarch64.
set -euo pipefail
target=$1 model=$2 input=$3 out=$4
src="$(cd "$(dirname "$0")/../.." && pwd)/examples/aot/run_model.c"
mkdir -p "$out"
case "$target" in
x86_64)
  quant-compile "$model" --name model --backend xnnpack -o "$out/libmodel.so"
  cc -O2 -Wall -Werror -I"$out" "$src" -L"$out" -lmodel -Wl,-rpath,"$out" \
    -o "$out/run_model"
  "$out/run_model" "$input"
  ;;
aarch64)
  rt="${QNT_AARCH64_RUNTIME_DIR:?}"
  libs="${QNT_AARCH64_SYSROOT:?}/usr/lib/aarch64-linux-gnu"
  if [[ ! -f "$rt/libqnt_runtime.so" ]]; then
    echo "aot-run.sh: no AArch64 runtime in $rt (scripts/test.sh builds it)" >&2
    exit 1
  fi
  quant-compile "$model" --name model --target aarch64 --runtime-dir "$rt" \
    --link-arg=-Wl,-rpath-link,"$libs" -o "$out/libmodel.so"
  aarch64-linux-gnu-gcc -O2 -Wall -Werror -I"$out" "$src" -L"$out" -lmodel \
    -Wl,-rpath,"$out" -Wl,-rpath-link,"$rt:$libs" -o "$out/run_model"
  qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH="$rt:$libs" \
    "$out/run_model" "$input"
  ;;
*)
  echo "aot-run.sh: unknown target '$target'" >&2
  exit 2
  ;;
esac
