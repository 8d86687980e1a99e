// ccache hashes a compile's command line and sources, not the files the
// plugin reads: after vendor::Table was added to the track-file, ccache
// served the object built before, uninstrumented, and the race was missed.
// With CCACHE_EXTRAFILES naming the track-file and what mapguard ships
// (`pkg-config --variable=ccache_extrafiles mapguard`), the edit is a cache
// miss and the race is reported; without it, the stale object comes back
// (what docs/usage.md warns about).
// Cache A, without CCACHE_EXTRAFILES: the edit goes unseen.
// RUN: rm -rf %t.a %t.b && mkdir -p %t.a %t.b
// RUN: echo "# nothing tracked yet" > %t.track
// RUN: env CCACHE_DIR=%t.a ccache %clangxx_raw -std=c++20 -g -O1 -fplugin=%plugin -fplugin-arg-mapguard-track-file=%t.track -I%S/../Inputs -c %s -o %t.a1.o
// RUN: %clangxx_raw %t.a1.o %{mglink} -o %t.a1 && %t.a1 2>&1 | FileCheck %s --check-prefix=UNTRACKED
// RUN: echo "vendor::Table" > %t.track
// RUN: env CCACHE_DIR=%t.a ccache %clangxx_raw -std=c++20 -g -O1 -fplugin=%plugin -fplugin-arg-mapguard-track-file=%t.track -I%S/../Inputs -c %s -o %t.a2.o
// RUN: %clangxx_raw %t.a2.o %{mglink} -o %t.a2 && %t.a2 2>&1 | FileCheck %s --check-prefix=UNTRACKED
// Cache B, with them: the same edit is a miss, and the race is reported.
// RUN: echo "# nothing tracked yet" > %t.track
// RUN: env CCACHE_DIR=%t.b CCACHE_EXTRAFILES=%t.track:%{ccache_extrafiles} ccache %clangxx_raw -std=c++20 -g -O1 -fplugin=%plugin -fplugin-arg-mapguard-track-file=%t.track -I%S/../Inputs -c %s -o %t.b1.o
// RUN: %clangxx_raw %t.b1.o %{mglink} -o %t.b1 && %t.b1 2>&1 | FileCheck %s --check-prefix=UNTRACKED
// RUN: echo "vendor::Table" > %t.track
// RUN: env CCACHE_DIR=%t.b CCACHE_EXTRAFILES=%t.track:%{ccache_extrafiles} ccache %clangxx_raw -std=c++20 -g -O1 -fplugin=%plugin -fplugin-arg-mapguard-track-file=%t.track -I%S/../Inputs -c %s -o %t.b2.o
// RUN: %clangxx_raw %t.b2.o %{mglink} -o %t.b2 && %expect_exit 66 %t.b2 2>&1 | FileCheck %s --check-prefix=TRACKED
// UNTRACKED-NOT: fatal error
// UNTRACKED: DONE
// TRACKED: fatal error: concurrent map writes
// TRACKED: Map: vendor::Table
#include <cstdio>

#include "test_sync.h"

namespace vendor {
// A vendor's map class (no standard map inside), tracked only through the
// track-file. put() parks the armed thread inside the call.
class Table {
 public:
  __attribute__((noinline)) void put(int k, int v) {
    mg_test::maybe_block(k);
    slots_[k & 63] = v;
  }

 private:
  int slots_[64] = {};
};
}  // namespace vendor

vendor::Table table;

int main() {
  mg_test::race([] { table.put(mg_test::kBlockKey, 1); }, [] { table.put(2, 2); });
  std::printf("DONE\n");
}
