#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite: GoogleTest
# unit tests and the lit end-to-end tests (real plugin, real programs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j"${JOBS:-2}"
