#!/usr/bin/env bash
# aarch64-sysroot.sh [DIR]: builds a sysroot for cross-building runtime/ for
# AArch64 (see cmake/aarch64-linux-gnu.cmake). Installs the amd64 cross tools
# when missing (g++-aarch64-linux-gnu, qemu-user), enables the arm64 foreign
# architecture, downloads Debian's arm64 oneDNN / XNNPACK / pthreadpool /
# cpuinfo / libgomp packages and unpacks them (dpkg -x: arm64 -dev packages
# cannot be apt-installed next to the amd64 ones) into DIR.
#   DIR  default: <repo>/build-aarch64/sysroot
# libc6, libstdc++6 and libgcc-s1 for aarch64 come with the cross toolchain
# (/usr/aarch64-linux-gnu), so they are not unpacked here. Re-running is
# cheap: DIR/.complete records the package list and versions it was made from.
#
# Then, from the repo root (the toolchain path must be absolute: CMake looks
# up a relative one in the build directory):
#   cmake -G Ninja -S runtime -B build-aarch64/runtime \
#     -DCMAKE_TOOLCHAIN_FILE=$PWD/cmake/aarch64-linux-gnu.cmake
#   ninja -C build-aarch64/runtime
#   qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=$PWD/build-aarch64/runtime/lib:$PWD/build-aarch64/sysroot/usr/lib/aarch64-linux-gnu ./prog
set -euo pipefail

QNT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SYSROOT="${1:-$QNT_ROOT/build-aarch64/sysroot}"

host_packages=(g++-aarch64-linux-gnu qemu-user)
arm64_packages=(
  libdnnl-dev libdnnl2
  libxnnpack-dev libxnnpack0
  libpthreadpool-dev libpthreadpool0
  libcpuinfo-dev libcpuinfo0
  libgomp1
)

die() { echo "error: $*" >&2; exit 1; }
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"

# 1. amd64 tools.
missing=()
for p in "${host_packages[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] ||
    missing+=("$p")
done
updated=0
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "== installing host packages: ${missing[*]}"
  $sudo apt-get update -qq
  updated=1
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. arm64 package lists. One `apt-cache policy` for all packages (it costs
# ~0.7 s a call); prints "PKG:arm64=VERSION ..." in list order, "(none)" for
# a package without candidate.
arm64_candidates() {
  local args=() p
  for p in "${arm64_packages[@]}"; do args+=("$p:arm64"); done
  apt-cache policy "${args[@]}" 2>/dev/null |
    awk '/^[^ ].*:arm64:$/ { sub(/:$/, ""); pkg = $0 }
         /^  Candidate: / && pkg != "" { cand[pkg] = $2; pkg = "" }
         END { n = split(list, ps, " ")
               for (i = 1; i <= n; ++i) {
                 v = (ps[i] in cand) ? cand[ps[i]] : "(none)"
                 printf "%s%s=%s", (i > 1 ? " " : ""), ps[i], v } }' \
      list="${args[*]}"
}
if ! grep -qx arm64 <<<"$(dpkg --print-foreign-architectures)"; then
  echo "== enabling the arm64 foreign architecture"
  $sudo dpkg --add-architecture arm64
  updated=0
fi
wanted=$(arm64_candidates)
if [[ "$wanted" == *"=(none)"* && $updated -eq 0 ]]; then
  echo "== apt-get update (arm64 package lists)"
  $sudo apt-get update -qq
  wanted=$(arm64_candidates)
fi
if [[ "$wanted" == *"=(none)"* ]]; then
  die "no arm64 candidate for: $(tr ' ' '\n' <<<"$wanted" | sed -n 's/=(none)$//p' | xargs)" \
      "(is arm64 in the apt sources?)"
fi

# 3. The stamp says whether DIR already holds exactly these versions.
stamp="$SYSROOT/.complete"
if [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$wanted" ]]; then
  echo "== sysroot up to date: $SYSROOT"
  exit 0
fi

# An older/partial sysroot is replaced; never wipe a directory this script
# did not make (.qnt-sysroot marks those).
if [[ -e "$SYSROOT" ]]; then
  if [[ ! -f "$SYSROOT/.qnt-sysroot" && -n "$(ls -A "$SYSROOT" 2>/dev/null)" ]]; then
    die "$SYSROOT exists and is not a sysroot made by this script;" \
        "remove it or pick another DIR"
  fi
fi

# 4. Download (into a directory the _apt sandbox user can write) and unpack.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0777 "$tmp"
echo "== downloading ${#arm64_packages[@]} arm64 packages"
# shellcheck disable=SC2086  # $wanted is a space-separated list
(cd "$tmp" && apt-get download -qq $wanted) ||
  die "apt-get download failed"

if [[ -e "$SYSROOT" ]]; then
  echo "== replacing stale sysroot $SYSROOT"
  rm -rf "$SYSROOT"
fi
mkdir -p "$SYSROOT"
touch "$SYSROOT/.qnt-sysroot"
for deb in "$tmp"/*.deb; do
  echo "   unpacking $(basename "$deb")"
  dpkg-deb -x "$deb" "$SYSROOT"
done
# Debian's -dev symlinks are relative (libdnnl.so -> libdnnl.so.2), so the
# tree works anywhere; check the pieces the runtime's CMakeLists looks for.
libdir="$SYSROOT/usr/lib/aarch64-linux-gnu"
for f in usr/include/oneapi/dnnl/dnnl.hpp usr/include/xnnpack.h \
         usr/include/pthreadpool.h; do
  [[ -f "$SYSROOT/$f" ]] || die "missing $SYSROOT/$f after unpacking"
done
for l in libdnnl.so libXNNPACK.so libpthreadpool.so libcpuinfo.so; do
  [[ -e "$libdir/$l" ]] || die "missing $libdir/$l after unpacking"
done
echo "$wanted" >"$stamp"
echo "== sysroot ready: $SYSROOT"
