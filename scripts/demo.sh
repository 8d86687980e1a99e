#!/usr/bin/env bash
# Installs what is needed, builds mapguard, then compiles the racy example
# with the plugin and runs it: it stops with mapguard's report (exit 66).
# The fixed example then runs to the end with no report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
export PKG_CONFIG_PATH=$PWD/build
mkdir -p build/demo
set -x
clang++-19 -g -O1 $(pkg-config --cflags mapguard) examples/racy_registry.cpp \
  $(pkg-config --libs mapguard) -o build/demo/racy_registry
{ set +x; } 2>/dev/null
status=0
./build/demo/racy_registry || status=$?
echo "racy_registry exited with status $status (mapguard's default exitcode is 66)"
clang++-19 -g -O1 $(pkg-config --cflags mapguard) examples/fixed_registry.cpp \
  $(pkg-config --libs mapguard) -o build/demo/fixed_registry
./build/demo/fixed_registry
echo "fixed_registry: no report"
[ "$status" = 66 ]
