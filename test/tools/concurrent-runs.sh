#!/usr/bin/env bash
# concurrent-runs.sh MODEL BACKEND OUTDIR [ARGS...]: compiles MODEL with
# quant-compile for BACKEND (onednn, xnnpack or auto), builds
# concurrent-runs.c against the library and runs it with ARGS: several
# threads run the model at once and every result must equal the
# single-threaded one bit for bit. $QNT_RUNTIME_DIR (default: quant-compile's)
# is the libqnt_runtime.so the library links; $CC and $CFLAGS build the
# program (scripts/tsan.sh sets them for ThreadSanitizer).
set -euo pipefail
model=$1 backend=$2 out=$3
shift 3
src="$(cd "$(dirname "$0")" && pwd)/concurrent-runs.c"
mkdir -p "$out"
quant-compile "$model" --name model --backend "$backend" \
  ${QNT_RUNTIME_DIR:+--runtime-dir "$QNT_RUNTIME_DIR"} -o "$out/libmodel.so"
# shellcheck disable=SC2086 # CFLAGS is a list of flags
${CC:-cc} -O2 -Wall -Werror ${CFLAGS:-} -I"$out" "$src" -L"$out" -lmodel \
  -Wl,-rpath,"$out" -pthread -o "$out/concurrent-runs"
"$out/concurrent-runs" "$@"
