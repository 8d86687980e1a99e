#!/usr/bin/env bash
# Installs everything mapguard needs to build and test on Debian 12 (run as root).
# Idempotent: apt-get skips what is already installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# Source packages for realworld/run.py (real projects and their test suites):
# a deb-src twin of each configured deb entry, same mirror and suites.
if [ -f /etc/apt/sources.list.d/debian.sources ] && [ ! -f /etc/apt/sources.list.d/mapguard-deb-src.sources ] \
   && ! grep -q '^Types:.*deb-src' /etc/apt/sources.list.d/debian.sources; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
    > /etc/apt/sources.list.d/mapguard-deb-src.sources
fi
if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list && ! grep -q '^deb-src ' /etc/apt/sources.list; then
  sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/mapguard-deb-src.list
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  cmake make pkg-config python3 python3-psutil python3-matplotlib \
  clang-19 llvm-19 llvm-19-dev llvm-19-tools libclang-19-dev libclang-rt-19-dev clang-14 \
  libgtest-dev libgmock-dev \
  libbpf-dev bpftool systemtap-sdt-dev curl util-linux jq \
  libboost-dev nlohmann-json3-dev libfmt-dev libc++-19-dev libc++abi-19-dev libomp-19-dev \
  libabsl-dev qtbase5-dev libtbb-dev libcuckoo-dev ccache libglib2.0-dev libsparsehash-dev libtsl-hopscotch-map-dev valgrind \
  >/dev/null
# The SARIF validator used by the tests (Microsoft's SARIF multitool, from
# the npm registry), kept inside the checkout in .tools/.
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v npm >/dev/null; then apt-get install -y -qq --no-install-recommends npm >/dev/null; fi
if [ ! -x "$root/.tools/node_modules/.bin/sarif-multitool" ]; then
  npm install --silent --no-audit --no-fund --prefix "$root/.tools" @microsoft/sarif-multitool@5.7.0 >/dev/null
fi
# Another clang to build the plugin for (MAPGUARD_LLVM_VERSION, 15 to 22;
# clang 19 above stays: the tests use its lit, FileCheck and libLLVM). Not
# its libomp-N-dev or libc++-N-dev: Debian lets one version of each be
# installed at a time (installing another removes 19's, or takes over
# /usr/include/c++/v1), and the runtime needs only OpenMP's tool header,
# which it takes from 19's.
v="${MAPGUARD_LLVM_VERSION:-19}"
if [ "$v" != 19 ]; then
  if ! apt-cache show "llvm-$v-dev" >/dev/null 2>&1; then
    echo "mapguard: error: LLVM $v is not in this machine's package sources (Debian 12 has 15, 16, 19 and 22)" >&2
    exit 1
  fi
  apt-get install -y -qq --no-install-recommends clang-"$v" llvm-"$v"-dev libclang-"$v"-dev >/dev/null
fi
echo "mapguard: dependencies installed"
