#!/usr/bin/env bash
# Configures and builds mapguard into build/ with clang 19 (-j2 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 >/dev/null
cmake --build build -j"${JOBS:-2}"
