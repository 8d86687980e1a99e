#!/usr/bin/env bash
# Configures and builds mapguard into build/ (BUILD_DIR) for clang 19
# (MAPGUARD_LLVM_VERSION: 15 to 22), with that clang, -j2 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
v="${MAPGUARD_LLVM_VERSION:-19}"
cmake -S . -B "${BUILD_DIR:-build}" -DMAPGUARD_LLVM_VERSION="$v" \
  -DCMAKE_C_COMPILER="clang-$v" -DCMAKE_CXX_COMPILER="clang++-$v" >/dev/null
cmake --build "${BUILD_DIR:-build}" -j"${JOBS:-2}"
