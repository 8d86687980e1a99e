// The sidecar under a racy program: the kernel's own overlap check sees the
// same conflict the runtime reports (same process, map, kind and threads), so
// the cross-check agrees and the sidecar exits with the program's status.
// Each kind of overlap is forced with a parked thread (Inputs/test_sync.h).
// A race the runtime finds only by happens-before (the accesses never
// overlap) is listed as not comparable, not as a disagreement.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: %expect_exit 66 %sidecar --full-trace --json %t.writes.json -- %t writes 2>&1 | FileCheck %s --check-prefix=WRITES
// RUN: python3 %S/Inputs/check_summary.py %t.writes.json --matched writes --kernel-conflicts 1
// Next to a test suite: the racy program is a grandchild (a shell starts
// it, as ctest would); the sidecar follows it and exits with the shell's 0.
// RUN: %sidecar --full-trace -- sh -c '%t writes; echo "suite goes on"' 2>&1 | FileCheck %s --check-prefix=SUITE
// RUN: %expect_exit 66 %sidecar --full-trace -- %t read 2>&1 | FileCheck %s --check-prefix=READ
// RUN: %expect_exit 66 %sidecar --full-trace -- %t iterate 2>&1 | FileCheck %s --check-prefix=ITER
// RUN: %expect_exit 66 %sidecar --full-trace --json %t.hb.json -- %t hb-only 2>&1 | FileCheck %s --check-prefix=HB
// RUN: python3 %S/Inputs/check_summary.py %t.hb.json --kernel-conflicts 0 --not-compared 1
// The default mode (not --full-trace): the runtime counts, the kernel
// watches the maps the control word picks. Every map watched (--map-sample
// 1), the race is cross-checked at the default trace budget; no map watched
// (0), it is "not compared", naming why, and the verdict says how many maps
// the kernel watched.
// RUN: %expect_exit 66 %sidecar --map-sample 1 -- %t writes 2>&1 | FileCheck %s --check-prefix=WATCHED
// RUN: %expect_exit 66 %sidecar --map-sample 0 -- %t writes 2>&1 | FileCheck %s --check-prefix=UNWATCHED
// WATCHED: cross-check: the kernel saw 1 conflict, the runtime reported 1: they agree (the kernel watched 1 of 1 map; --full-trace watches all)
// WATCHED-NEXT: both: concurrent map writes
// UNWATCHED: cross-check: the kernel saw 0 conflicts, the runtime reported 1: they agree (the kernel watched 0 of 1 map; --full-trace watches all)
// UNWATCHED-NEXT: not compared: concurrent map writes on {{.*}} (the kernel did not watch this map (it watches none: --map-sample
// WRITES: fatal error: concurrent map writes
// WRITES: conflict heatmap (by pair of call sites: the runtime's reports, and the kernel's sightings no report matched):
// WRITES-NEXT: 1x  racy_cross_check.cpp:[[#]] insert  <->  racy_cross_check.cpp:[[#]] operator[]
// WRITES: cross-check: the kernel saw 1 conflict, the runtime reported 1: they agree
// WRITES-NEXT: both: concurrent map writes on std::unordered_map<int, int, mg_test::BlockingHash> 'table' at 0x{{[0-9a-f]+}} (pid {{[0-9]+}}, tid {{[0-9]+}} and tid {{[0-9]+}})
// SUITE: fatal error: concurrent map writes
// SUITE: suite goes on
// SUITE: mapguard-sidecar: the program exited with status 0
// SUITE: cross-check: the kernel saw 1 conflict, the runtime reported 1: they agree
// SUITE-NEXT: both: concurrent map writes
// READ: fatal error: concurrent map read and map write
// READ: cross-check: the kernel saw 1 conflict, the runtime reported 1: they agree
// READ-NEXT: both: concurrent map read and map write
// ITER: fatal error: concurrent map iteration and map write
// ITER: cross-check: the kernel saw 1 conflict, the runtime reported 1: they agree
// ITER-NEXT: both: concurrent map iteration and map write
// HB: fatal error: unsynchronized map writes
// HB: cross-check: the kernel saw 0 conflicts, the runtime reported 1: they agree
// HB-NEXT: not compared: concurrent map writes on {{.*}} (found by happens-before analysis
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>
#include <unordered_map>

#include "test_sync.h"

std::unordered_map<int, int, mg_test::BlockingHash> table;

// A comparator that parks the armed thread inside the loop's first step.
struct BlockingLess {
  bool operator()(int a, int b) const {
    mg_test::maybe_block(a);
    mg_test::maybe_block(b);
    return a < b;
  }
};

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "writes";
  table.reserve(64);
  table[1] = 1;  // not empty: lookups hash their key
  if (!strcmp(mode, "writes")) {
    mg_test::race([] { table.insert({mg_test::kBlockKey, 1}); }, [] { table[7] = 2; });
  } else if (!strcmp(mode, "read")) {
    mg_test::race([] { (void)table.count(mg_test::kBlockKey); }, [] { table[7] = 2; });
  } else if (!strcmp(mode, "iterate")) {
    std::map<int, int, BlockingLess> ordered{{1, 1}, {2, 2}};
    mg_test::race(
        [&] {
          long sum = 0;
          for (auto &kv : ordered) {
            sum += kv.second;
            mg_test::maybe_block(mg_test::kBlockKey);
          }
          (void)sum;
        },
        [&] { ordered[7] = 3; });
  } else {
    // Ordered in time by a relaxed flag and sleeps, never overlapping.
    std::atomic<bool> done{false};
    std::thread a([&] {
      table[1] = 1;
      done.store(true, std::memory_order_relaxed);
    });
    std::thread b([&] {
      while (!done.load(std::memory_order_relaxed)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      table[2] = 2;
    });
    a.join();
    b.join();
  }
  return 0;
}
