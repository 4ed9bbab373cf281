#!/usr/bin/env bash
# The whole test suite, as CI runs it: install dependencies, build the release tree and the
# sanitizer tree (ASan+UBSan, clang, fuzz targets), and run CTest in both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
jobs="${MESHGUARD_JOBS:-$(nproc)}"

bash scripts/build.sh release
echo "== tests: release build =="
ctest --test-dir build --output-on-failure -j "$jobs"

if [ "${MESHGUARD_SKIP_ASAN:-0}" != 1 ]; then
  bash scripts/build.sh asan
  echo "== tests: ASan+UBSan build (with fuzz targets) =="
  ctest --test-dir build-asan --output-on-failure -j "$jobs"
fi
