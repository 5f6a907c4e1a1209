#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: a normal build in build/ (its
# RDMA tests inside a Soft-RoCE VM, ../shared/tools/rxe-vm) and an AddressSanitizer+UBSan build
# in build-asan/ (both with warnings as errors), a Release build of the libraries and tools (it
# must compile clean too), and a clang build of the fuzz harnesses that replays their corpus
# under libFuzzer. Exits non-zero on any failure.
#   ECCL_SKIP_ASAN=1     skip the sanitizer pass (for quick local iterations only)
#   ECCL_SKIP_EXTRA=1    skip the Release and clang builds (quick local iterations only)
#   ECCL_SKIP_RDMA=1     skip the verbs tests in the VM (quick local iterations only)
#   ECCL_RXE_VM=path     the VM tool (default ../shared/tools/rxe-vm/run-in-rxe-vm.sh)
#   ECCL_TSAN=1          also build with ThreadSanitizer in build-tsan/ and run the suite there
#   ECCL_FUZZ_SECONDS=N  also fuzz each harness for N seconds (libFuzzer, in build-fuzz/)
#   ECCL_SOAK_MINUTES=N  also run the soak (EPLB cycles, scale-up/down, random kills) for N minutes
#   ECCL_STACKS_ON_TIMEOUT=0  do not print a hung rank's stacks (gdb) before killing it (default 1)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# A rank that hangs in CI shows where, not just that it did (see apps/common/local_ranks.h).
export ECCL_STACKS_ON_TIMEOUT=${ECCL_STACKS_ON_TIMEOUT:-1}

ensure_packages

echo "== build (RelWithDebInfo) in build/"
configure build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DECCL_WERROR=ON
build build
echo "== tests (build/)"
ctest --test-dir "$ROOT/build" -j "$JOBS" -LE rdma --output-on-failure --timeout 900

if [ "${ECCL_SKIP_RDMA:-0}" != 1 ]; then
  echo "== RDMA tests over verbs (build/, label rdma) inside a Soft-RoCE VM"
  run_rdma_tests build
fi

if [ "${ECCL_SKIP_ASAN:-0}" != 1 ]; then
  echo "== build (ASan+UBSan) in build-asan/"
  configure build-asan -DCMAKE_BUILD_TYPE=Debug -DECCL_SANITIZE=ON -DECCL_BUILD_BENCH=OFF -DECCL_WERROR=ON
  build build-asan
  echo "== tests (build-asan/)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$ROOT/build-asan" -j "$JOBS" -LE rdma --output-on-failure --timeout 900
  if [ "${ECCL_SKIP_RDMA:-0}" != 1 ]; then
    echo "== RDMA tests over verbs (build-asan/, label rdma) inside a Soft-RoCE VM"
    run_rdma_tests build-asan
  fi
fi

if [ "${ECCL_SKIP_EXTRA:-0}" != 1 ]; then
  echo "== build (Release, libraries and tools) in build-release/"
  configure build-release -DCMAKE_BUILD_TYPE=Release -DECCL_WERROR=ON -DECCL_BUILD_TESTS=OFF -DECCL_BUILD_BENCH=OFF
  build build-release
  echo "== build (clang, libFuzzer+ASan+UBSan) of the fuzz harnesses in build-fuzz/"
  configure_fuzz
  build build-fuzz store_fuzz wire_fuzz eplb_json_fuzz capi_fuzz
  echo "== fuzz corpus replay (build-fuzz/)"
  ctest --test-dir "$ROOT/build-fuzz" -L fuzz --output-on-failure --timeout 600
fi

if [ -n "${ECCL_FUZZ_SECONDS:-}" ]; then
  configure_fuzz
  cmake "$ROOT/build-fuzz" -DECCL_FUZZ_SECONDS="$ECCL_FUZZ_SECONDS" > /dev/null
  build build-fuzz fuzz-run
fi

if [ "${ECCL_TSAN:-0}" = 1 ]; then
  echo "== build (ThreadSanitizer) in build-tsan/"
  configure build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DECCL_TSAN=ON -DECCL_BUILD_BENCH=OFF -DECCL_WERROR=ON
  build build-tsan
  echo "== tests (build-tsan/)"
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/scripts/tsan.supp" \
    ctest --test-dir "$ROOT/build-tsan" -j "$JOBS" --output-on-failure --timeout 1800
fi

if [ -n "${ECCL_SOAK_MINUTES:-}" ]; then
  echo "== soak for ${ECCL_SOAK_MINUTES} min"
  python3 "$ROOT/scripts/soak.py" --minutes "$ECCL_SOAK_MINUTES" --build "$ROOT/build"
fi
echo "== all tests passed"
