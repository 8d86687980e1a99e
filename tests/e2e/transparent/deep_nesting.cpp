// Regions nested deeper than the 32 a thread keeps inline: a loop over a map
// inside a loop over a map ... N levels deep, then a lookup. The region
// stack records the deeper ones in its overflow array (mg_region_stack.h),
// so a report names both sides at any depth it records (65,536). Before the
// overflow, past 32 the report said only that the other access "may be
// nested too deep", and earlier still the writer's report asked a null
// thread for its stack (SIGSEGV, no report).
//  clean N       two threads nest N levels under one mutex and write between: quiet
//  deep-reads N  the deep thread parks in a lookup at level N, another
//                thread writes: reported, with the deep lookup's site and stack
//  deep-races N  another thread parks in a write, the deep thread looks up at
//                level N: reported with both sites
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 clean 33 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 100 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 10000 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 clean 10000 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 deep-reads 33 2>&1 | FileCheck %s --check-prefix=DEEPREADS
// RUN: %expect_exit 66 %t.O2 deep-reads 100 2>&1 | FileCheck %s --check-prefix=DEEPREADS
// RUN: %expect_exit 66 %t.O2 deep-reads 10000 2>&1 | FileCheck %s --check-prefix=DEEPREADS
// RUN: %expect_exit 66 %t.O0 deep-races 33 2>&1 | FileCheck %s --check-prefix=DEEPRACES
// RUN: %expect_exit 66 %t.O2 deep-races 100 2>&1 | FileCheck %s --check-prefix=DEEPRACES
// RUN: %expect_exit 66 %t.O2 deep-races 10000 2>&1 | FileCheck %s --check-prefix=DEEPRACES
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O2 deep-races 10000 2>&1 | FileCheck %s --check-prefix=DEEPRACES
// CLEAN-NOT: fatal error
// CLEAN: DONE
// DEEPREADS: fatal error: {{.*}}map read and map write
// DEEPREADS: Write (operator[]) by thread
// DEEPREADS-SAME: in writer()
// DEEPREADS: Read (find) in progress in thread
// DEEPREADS-SAME: in descend(int)
// DEEPREADS-NEXT: #0 mg_test::stay_inside()
// DEEPREADS: SUMMARY: mapguard
// DEEPRACES: fatal error: {{.*}}map read and map write
// DEEPRACES: Read (find) by thread
// DEEPRACES-SAME: in descend(int)
// DEEPRACES: Write (operator[]) in progress in thread
// DEEPRACES-SAME: in writer()
// DEEPRACES: SUMMARY: mapguard
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "test_sync.h"

std::map<int, int> g_levels = {{1, 1}};  // iterated at every level
std::unordered_map<int, int, mg_test::BlockingHash> g_m;
std::mutex g_mu;
int g_depth;
volatile int g_sink;

__attribute__((noinline)) void descend(int level) {
  if (level == g_depth) {
    auto it = g_m.find(mg_test::kBlockKey);  // the deep lookup
    if (it != g_m.end()) g_sink = it->second;
    return;
  }
  for (auto &kv : g_levels) {
    g_sink = kv.second;
    descend(level + 1);
  }
}

__attribute__((noinline)) void writer() { g_m[mg_test::kBlockKey] = 7; }

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  g_depth = std::atoi(argv[2]);
  // Past 20 elements libstdc++'s find hashes the key (below it compares
  // keys): the lookup must call BlockingHash to park in it.
  for (int i = 100; i < 164; i++) g_m[i] = i;
  if (!std::strcmp(argv[1], "clean")) {
    auto work = [] {
      for (int i = 0; i < 20; i++) {
        std::lock_guard<std::mutex> lock(g_mu);
        descend(0);
        g_m[i] = i;
      }
    };
    std::thread a(work), b(work);
    a.join();
    b.join();
  } else if (!std::strcmp(argv[1], "deep-reads")) {
    mg_test::race([] { descend(0); }, [] { writer(); });
  } else {
    mg_test::race([] { writer(); }, [] { descend(0); });
  }
  std::printf("DONE\n");
}
