#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: a normal build in
# build/ and an AddressSanitizer+UBSan build in build-asan/. Exits non-zero on any failure.
#   ECCL_SKIP_ASAN=1   skip the sanitizer pass (for quick local iterations only)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_packages

echo "== build (RelWithDebInfo) in build/"
configure build -DCMAKE_BUILD_TYPE=RelWithDebInfo
build build
echo "== tests (build/)"
ctest --test-dir "$ROOT/build" -j "$JOBS" --output-on-failure --timeout 900

if [ "${ECCL_SKIP_ASAN:-0}" != 1 ]; then
  echo "== build (ASan+UBSan) in build-asan/"
  configure build-asan -DCMAKE_BUILD_TYPE=Debug -DECCL_SANITIZE=ON -DECCL_BUILD_BENCH=OFF
  build build-asan
  echo "== tests (build-asan/)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$ROOT/build-asan" -j "$JOBS" --output-on-failure --timeout 900
fi
echo "== all tests passed"
