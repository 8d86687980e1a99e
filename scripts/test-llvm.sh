#!/usr/bin/env bash
# Builds mapguard for a second clang next to the default build (in
# build-llvm<N>/) and runs the end-to-end smoke subset (tests/e2e/smoke.list)
# with it: the plugin, the fast path's bitcode, the runtime and the tests all
# made for that clang. N: the first argument, else MAPGUARD_SMOKE_LLVM_VERSION,
# else 22.
set -euo pipefail
cd "$(dirname "$0")/.."
v="${1:-${MAPGUARD_SMOKE_LLVM_VERSION:-22}}"
start=$(date +%s)
MAPGUARD_LLVM_VERSION="$v" bash scripts/install-deps.sh
MAPGUARD_LLVM_VERSION="$v" BUILD_DIR="build-llvm$v" bash scripts/build.sh
built=$(date +%s)
# One regex of the listed tests, for lit's --filter.
filter=$(grep -v '^#' tests/e2e/smoke.list | sed '/^$/d; s/[.]/[.]/g' | paste -sd'|')
/usr/bin/python3 /usr/lib/llvm-19/build/utils/lit/lit.py -sv --timeout=600 \
  "build-llvm$v/tests/e2e" --filter "^mapguard-e2e :: ($filter)\$"
# Both builds installed into one prefix, side by side: the same pkg-config
# flags work with either clang (the loader picks its plugin), and a clang with
# none gets one line naming both.
main_build="${MAIN_BUILD_DIR:-build}"
if [ -f "$main_build/lib/mapguard.so" ]; then
  prefix=$(mktemp -d)
  cmake --install "$main_build" --prefix "$prefix" >/dev/null
  cmake --install "build-llvm$v" --prefix "$prefix" >/dev/null
  main_v=$(ls "$main_build"/lib/mapguard-clang*.so | sed 's/.*clang\([0-9]*\)[.]so/\1/')
  export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
  for c in "$main_v" "$v"; do
    "clang++-$c" -g -O1 $(pkg-config --cflags mapguard) examples/racy_registry.cpp \
      $(pkg-config --libs mapguard) -o "$prefix/racy-$c"
    rc=0; "$prefix/racy-$c" >/dev/null 2>&1 || rc=$?
    if [ "$rc" != 66 ]; then echo "mapguard: FAILED: side-by-side install, clang $c: exit $rc, not 66" >&2; exit 1; fi
  done
  # The CMake package from the same prefix: each clang's project builds with
  # its own plugin, dynamic and -static (tests/e2e/packaging/Inputs/consumer).
  for c in "$main_v" "$v"; do
    cmake -S tests/e2e/packaging/Inputs/consumer -B "$prefix/consumer-$c" \
      -DCMAKE_CXX_COMPILER="clang++-$c" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$prefix/consumer-$c" >/dev/null
    for exe in consumer consumer_static; do
      rc=0; "$prefix/consumer-$c/$exe" >/dev/null 2>&1 || rc=$?
      if [ "$rc" != 66 ]; then echo "mapguard: FAILED: side-by-side install, find_package with clang $c ($exe): exit $rc, not 66" >&2; exit 1; fi
    done
  done
  msg=$(clang++-14 -c $(pkg-config --cflags mapguard) examples/racy_registry.cpp -o "$prefix/x.o" 2>&1 || true)
  case "$msg" in
    *"clang 14"*"older than mapguard supports"*"it has clang "*"$v"*) ;;
    *) echo "mapguard: FAILED: side-by-side install, clang 14 said: $msg" >&2; exit 1 ;;
  esac
  rm -rf "$prefix"
  echo "mapguard: side-by-side install of clang $main_v and $v: both instrument (pkg-config, find_package, -static), clang 14 is told which exist"
fi
end=$(date +%s)
echo "mapguard: clang $v smoke: build $((built - start)) s, tests $((end - built)) s"
