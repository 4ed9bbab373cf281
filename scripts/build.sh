#!/usr/bin/env bash
# Configures and builds one tree. Usage: scripts/build.sh [release|asan]
#   release: build/       g++, RelWithDebInfo — the binaries the demo and benchmarks use
#   asan:    build-asan/  clang, ASan+UBSan, plus libFuzzer targets
set -euo pipefail
cd "$(dirname "$0")/.."
flavor="${1:-release}"
jobs="${MESHGUARD_JOBS:-$(nproc)}"
case "$flavor" in
  release)
    dir=build
    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++) ;;
  asan)
    dir=build-asan
    args=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
          -DMESHGUARD_SANITIZE=ON -DMESHGUARD_FUZZ=ON -DMESHGUARD_BENCH=OFF) ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja "${args[@]}"
fi
cmake --build "$dir" -j "$jobs"
