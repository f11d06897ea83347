#!/usr/bin/env bash
# ort-setup.sh: installs ONNX Runtime (CPU), the benchmark's peer, from the
# npm package onnxruntime-node, into build/ort (or $QNT_ORT_DIR). Idempotent:
# does nothing when the wanted version is already there.
#   QNT_ORT_DIR      install directory (default: <repo>/build/ort)
#   QNT_ORT_VERSION  onnxruntime-node version (default below)
#
# The package's install script downloads extra (CUDA / TensorRT) binaries,
# which fails without internet: it runs with --ignore-scripts. The CPU
# library ships inside the package (bin/napi-v*/linux/x64/libonnxruntime.so.1).
# node and npm come from Debian (apt-get install nodejs npm) when missing.
# Afterwards: node bench/ort_run.js model.onnx input.npy (see there).
set -euo pipefail

QNT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORT_DIR="${QNT_ORT_DIR:-$QNT_ROOT/build/ort}"
ORT_VERSION="${QNT_ORT_VERSION:-1.30.0}"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "== installing nodejs npm (Debian)"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi

pkg="$ORT_DIR/node_modules/onnxruntime-node"
installed=""
[[ -f $pkg/package.json ]] &&
  installed="$(node -p "require('$pkg/package.json').version" 2>/dev/null || true)"

if [[ $installed != "$ORT_VERSION" ]]; then
  echo "== installing onnxruntime-node@$ORT_VERSION into $ORT_DIR"
  mkdir -p "$ORT_DIR"
  [[ -f $ORT_DIR/package.json ]] ||
    echo '{"name": "qnt-ort", "private": true, "description": "ONNX Runtime for bench/"}' \
      >"$ORT_DIR/package.json"
  (cd "$ORT_DIR" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error \
    "onnxruntime-node@$ORT_VERSION")
fi

# The CPU library must be in the package; the binding must load and run.
arch="$(node -p process.arch)"
lib="$(ls "$pkg"/bin/napi-v*/linux/"$arch"/libonnxruntime.so* 2>/dev/null | head -n1 || true)"
if [[ -z $lib ]]; then
  echo "error: no libonnxruntime.so for linux/$arch in $pkg/bin" >&2
  exit 1
fi
NODE_PATH="$ORT_DIR/node_modules" node -e \
  "const o = require('onnxruntime-node'); if (!o.InferenceSession) process.exit(1);" || {
  echo "error: onnxruntime-node does not load (see above)" >&2
  exit 1
}
echo "onnxruntime-node $ORT_VERSION ready: $ORT_DIR ($lib)"
