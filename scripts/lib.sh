#!/usr/bin/env bash
# Shared by scripts/demo.sh and scripts/test.sh: install the Debian packages eccl needs (only
# the missing ones), then configure and build incrementally.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${ECCL_JOBS:-$(nproc)}

ECCL_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libspdlog-dev libfmt-dev nlohmann-json3-dev libssl-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libibverbs-dev libfabric-dev
  libgloo-dev
  openmpi-bin libopenmpi-dev
  clang libclang-rt-14-dev
  iproute2 nftables util-linux
  gdb
  qemu-system-x86 linux-image-amd64 busybox-static rdma-core ibverbs-providers ibverbs-utils
  rdmacm-utils perftest cpio kmod xz-utils binutils
  python3 python3-numpy python3-pytest python3-torch
)

ensure_packages() {
  local missing=() p
  for p in "${ECCL_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  echo "== installing missing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# configure DIR [cmake -D options...]: configure once, then reuse the cache (incremental).
configure() {
  local dir=$1
  shift
  if [ ! -f "$ROOT/$dir/build.ninja" ]; then
    # Debian's python3 is the one with python3-torch/numpy/pytest (another python3 may come
    # first on PATH, e.g. pyenv's): the Python package's tests run under it.
    local py=()
    [ -x /usr/bin/python3 ] && py=(-DPython3_EXECUTABLE=/usr/bin/python3)
    cmake -S "$ROOT" -B "$ROOT/$dir" -G Ninja "${py[@]}" "$@"
  fi
}

# The clang build of the fuzz harnesses (libFuzzer needs clang).
configure_fuzz() {
  configure build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DECCL_FUZZ=ON -DECCL_WERROR=ON -DECCL_BUILD_BENCH=OFF
}

# build DIR [targets...]
build() {
  local dir=$1
  shift
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$ROOT/$dir" -j "$JOBS" "${targets[@]}"
}

# run_rdma_tests DIR: ctest's rdma label of DIR inside the Soft-RoCE VM (Debian's kernel under
# qemu with rdma_rxe: a real verbs device; no KVM needed). The host's file system is shared
# read-only, DIR read-write (ctest's results come back). A VM that fails to start (exit 125)
# is tried once more; anything else is the tests' verdict.
run_rdma_tests() {
  local dir=$1 vm=${ECCL_RXE_VM:-$ROOT/../shared/tools/rxe-vm/run-in-rxe-vm.sh} rc=0
  if [ ! -x "$vm" ]; then
    echo "error: the Soft-RoCE VM tool is not at $vm (set ECCL_RXE_VM, or ECCL_SKIP_RDMA=1 to skip the verbs tests)" >&2
    return 2
  fi
  for attempt in 1 2; do
    rc=0
    "$vm" --hostfs --rw "$ROOT/$dir" --timeout 1200 -- \
      ctest --test-dir "$ROOT/$dir" -L rdma --output-on-failure --timeout 600 || rc=$?
    [ "$rc" -eq 125 ] && [ "$attempt" -eq 1 ] && { echo "== the VM did not start (125); once more"; continue; }
    break
  done
  [ "$rc" -eq 124 ] && echo "error: the RDMA tests did not finish within the VM's 1200 s" >&2
  return "$rc"
}
