#!/usr/bin/env bash
# demo.sh: the bundled example end to end. A small Fashion-MNIST CNN in FP32
# TOSA (examples/cnn/model.mlir) goes through fuse -> prepare -> calibrate ->
# fold -> convert -> lower -> run, and its INT8 results are compared with
# FP32. Intermediate files land in build/demo/.
#
#   scripts/demo.sh [--mode static|qat|dynamic]
#     static   post-training quantization with calibration (default)
#     qat      quantization-aware training in PyTorch, exported with its
#              learned fake quantization, compared with PyTorch's convert()
#     dynamic  dynamic quantization of the linear layer, compared with
#              PyTorch's quantize_dynamic()
set -euo pipefail
mode=static
while [[ $# -gt 0 ]]; do
  case "$1" in
  --mode) mode="${2:-}"; shift 2 || { echo "demo.sh: --mode needs a value" >&2; exit 2; } ;;
  --mode=*) mode="${1#--mode=}"; shift ;;
  -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
  *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$mode" in
static|qat|dynamic) ;;
*) echo "demo.sh: --mode must be static, qat or dynamic, got '$mode'" >&2; exit 2 ;;
esac
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

bin="$QNT_BUILD_DIR/bin"
ex="$QNT_ROOT/examples/cnn"
out="$QNT_BUILD_DIR/demo"
mkdir -p "$out"

# compare DIR OURS THEIRS LABEL: our INT8 outputs against PyTorch's.
compare() {
  "$QNT_PYTHON" - "$@" <<'PY'
import sys
import numpy as np
d, ours, theirs, label = sys.argv[1:]
ours = np.load(f"{d}/{ours}")["output"][:, 0]
theirs = np.load(f"{d}/{theirs}")["output"]
fp32 = np.load(f"{d}/fp32.npz")["output"]
labels = np.load(f"{d}/eval.npz")["labels"]
acc = lambda y: np.mean(y.argmax(1) == labels) * 100
print(f"    top-1 agreement with PyTorch {label}: "
      f"{np.mean(ours.argmax(1) == theirs.argmax(1)) * 100:.1f}%, "
      f"max abs difference {np.abs(ours - theirs).max():.4g}")
print(f"    accuracy: FP32 {acc(fp32):.1f}%, PyTorch {label} {acc(theirs):.1f}%, "
      f"ours {label} {acc(ours):.1f}%")
PY
}

if [[ $mode == dynamic ]]; then
  echo "== 1. export the trained CNN from PyTorch (python/qnt)"
  # (PyTorch warns that qnnpack ignores reduce_range: it is not asked for.)
  "$QNT_PYTHON" "$QNT_ROOT/examples/dynamic/dynamic_example.py" "$out/dynamic" 2>&1 |
    { grep -vE 'ignores reduce_range|before InitGoogleLogging' || true; } | sed 's/^/    /'
  echo "== 2. quant-opt --qnt-dynamic-pipeline=qconfig=qnnpack  (linear weights i8, inputs quantized per call)"
  "$bin/quant-opt" "$out/dynamic/model.mlir" --qnt-dynamic-pipeline="qconfig=qnnpack" \
    -o "$out/dynamic/int8.mlir"
  grep -oE 'qnt\.linear [^{]*\{[^}]*dynamic_qspec[^}]*\}' "$out/dynamic/int8.mlir" |
    grep -oE 'dynamic_qspec = #qnt.qspec<[^>]*>' | sed 's/^/    /'
  echo "== 3. run (JIT) on 500 test images; compare with PyTorch's quantize_dynamic()"
  "$bin/quant-run" "$out/dynamic/int8.mlir" -i "$out/dynamic/eval.npz" --samples \
    --quiet -o "$out/dynamic/ours.npz"
  compare "$out/dynamic" ours.npz pytorch_dynamic.npz "dynamic INT8"
  echo "== done: files in $out/dynamic"
  exit 0
fi

if [[ $mode == qat ]]; then
  echo "== 1. PyTorch QAT: fuse conv+bn+relu, prepare_qat (qnnpack), 1 epoch, export"
  "$QNT_PYTHON" "$QNT_ROOT/examples/qat/qat_example.py" "$out/qat" 2>&1 | sed 's/^/    /'
  echo "== 2. quant-opt --qnt-fuse --qnt-fold-fake-quant --qnt-convert  (learned parameters, no calibration)"
  "$bin/quant-opt" "$out/qat/qat.mlir" --qnt-fuse --qnt-fold-fake-quant \
    --qnt-convert -o "$out/qat/int8.mlir"
  grep -oE '(= |")(qnt|quant)\.[a-z_0-9]+' "$out/qat/int8.mlir" | sed 's/^[=" ]*//' |
    sort | uniq -c | awk '{ printf "%s %s x%d", (NR > 1 ? "," : "   "), $2, $1 } END { print "" }'
  echo "== 3. run INT8 (JIT) on 500 test images; compare with PyTorch's convert()"
  "$bin/quant-run" "$out/qat/int8.mlir" -i "$out/qat/eval.npz" --samples --quiet \
    -o "$out/qat/ours.npz"
  compare "$out/qat" ours.npz pytorch_int8.npz "QAT INT8"
  echo "== done: files in $out/qat"
  exit 0
fi
qconfig="${QCONFIG:-x86}"
# Keep locations (PyTorch module names) in the files between stages:
# observer ids and diagnostics use them.
keep_names=--mlir-print-debuginfo

# Counts of the ops in an IR file.
ops() { grep -oE '(= |")(tosa|qnt|quant)\.[a-z_0-9]+' "$1" | sed 's/^[=" ]*//' |
  sort | uniq -c |
  awk '{ printf "%s %s x%d", (NR > 1 ? "," : "   "), $2, $1 } END { print "" }'; }

echo "== 1. FP32 model: examples/cnn/model.mlir"
ops "$ex/model.mlir"

echo "== 2. quant-opt --qnt-fuse  (batch-norm folded, relu absorbed, conv/linear lifted)"
"$bin/quant-opt" "$ex/model.mlir" --qnt-fuse $keep_names -o "$out/1-fused.mlir"
ops "$out/1-fused.mlir"

echo "== 3. quant-opt --qnt-prepare=qconfig=$qconfig  (observers inserted)"
"$bin/quant-opt" "$out/1-fused.mlir" --qnt-prepare="qconfig=$qconfig" \
  $keep_names -o "$out/2-prepared.mlir"
ops "$out/2-prepared.mlir"
grep -oE 'id = "[^"]+"' "$out/2-prepared.mlir" | tr '\n' ' ' | sed 's/^/    /'
echo

echo "== 4. quant-run --calibrate  (200 training images -> statistics)"
"$bin/quant-run" "$out/2-prepared.mlir" --calibrate "$ex/calib.npz" \
  --stats-file "$out/stats.json" 2>&1 | tail -n 1 | sed 's/^/    /'

echo "== 5. quant-opt --qnt-fold-calibration  (observers -> qcast/dcast with PyTorch's qparams)"
"$bin/quant-opt" "$out/2-prepared.mlir" \
  --qnt-fold-calibration="stats=$out/stats.json" $keep_names \
  -o "$out/3-qdq.mlir"
ops "$out/3-qdq.mlir"

echo "== 6. quant-opt --qnt-convert  (INT8 ops, i8 weights, i32 bias)"
"$bin/quant-opt" "$out/3-qdq.mlir" --qnt-convert $keep_names \
  -o "$out/4-int8.mlir"
ops "$out/4-int8.mlir"
grep -oE 'qnt\.(conv2d|linear) [^{]*\{[^}]*\} : \([^)]*\)' "$out/4-int8.mlir" |
  grep -oE '!quant.uniform<u8[^,]*,' | sort -u | sed 's/,$//; s/^/    activation type: /'

echo "== 7. quant-opt --qnt-lower-pipeline=backend=onednn  (runtime calls, then llvm)"
"$bin/quant-opt" "$out/4-int8.mlir" --qnt-lower-pipeline="backend=onednn" \
  -o "$out/5-llvm.mlir"
echo "    $(grep -c 'llvm.call @qnt_rt_' "$out/5-llvm.mlir") runtime calls:" \
  "$(grep -oE 'llvm.call @qnt_rt_[a-z0-9_]+' "$out/5-llvm.mlir" |
    sed 's/llvm.call @//' | sort | uniq -c | awk '{ printf "%s x%d ", $2, $1 }')"

echo "== 8. run FP32 and INT8 (JIT) on 500 test images and compare"
"$bin/quant-run" "$ex/model.mlir" -i "$ex/eval.npz" --samples --quiet \
  -o "$out/fp32.npz"
"$bin/quant-run" "$out/4-int8.mlir" -i "$ex/eval.npz" --samples --quiet \
  -o "$out/int8.npz"
fp32_ms=$("$bin/quant-run" "$ex/model.mlir" -i "$ex/input.npz" --bench 200 |
  grep -oE 'median [0-9.]+' | grep -oE '[0-9.]+')
int8_ms=$("$bin/quant-run" "$out/4-int8.mlir" -i "$ex/input.npz" --bench 200 |
  grep -oE 'median [0-9.]+' | grep -oE '[0-9.]+')
"$QNT_PYTHON" - "$out" "$ex" "$fp32_ms" "$int8_ms" <<'PY'
import sys
import numpy as np
out, ex, fp32_ms, int8_ms = sys.argv[1:]
fp32 = np.load(f"{out}/fp32.npz")["output"][:, 0]
int8 = np.load(f"{out}/int8.npz")["output"][:, 0]
torch_fp32 = np.load(f"{ex}/expected_eval_fp32.npz")["output"][:, 0]
labels = np.load(f"{ex}/eval.npz")["labels"]
err = np.abs(int8 - fp32)
print(f"    FP32 vs PyTorch FP32: max abs diff {np.abs(fp32 - torch_fp32).max():.2e}")
print(f"    INT8 vs FP32 logits: max abs error {err.max():.4f}, mean {err.mean():.4f}")
print(f"    arg-max agreement INT8 vs FP32: {np.mean(fp32.argmax(1) == int8.argmax(1)) * 100:.1f}% "
      f"of {len(labels)} images")
print(f"    accuracy: FP32 {np.mean(fp32.argmax(1) == labels) * 100:.1f}%, "
      f"INT8 {np.mean(int8.argmax(1) == labels) * 100:.1f}%")
print(f"    latency (batch 1, median of 200): FP32 {float(fp32_ms):.3f} ms, "
      f"INT8 {float(int8_ms):.3f} ms ({float(fp32_ms) / float(int8_ms):.1f}x)")
PY
echo "== done: intermediate IR and data in $out"
