#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite: GoogleTest
# unit tests and the lit end-to-end tests (real plugin, real programs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j"${JOBS:-2}")
# A second clang: the plugin built for it and the end-to-end smoke subset
# (scripts/test-llvm.sh). 22 when the main build is 19's, else 19;
# MAPGUARD_SMOKE_LLVM_VERSION=none skips it.
other="${MAPGUARD_SMOKE_LLVM_VERSION:-}"
if [ -z "$other" ]; then
  if [ "${MAPGUARD_LLVM_VERSION:-19}" = 19 ]; then other=22; else other=19; fi
fi
if [ "$other" != none ]; then bash scripts/test-llvm.sh "$other"; fi
