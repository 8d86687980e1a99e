// mapguard::guarded under the plugin. Its maps are ordinary std maps, checked
// like any other: the linearizability stress (8 threads, strategies switched
// at random) is quiet, and a `fn` that lets the map escape the guard is
// reported when the escaped pointer is used outside it.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: %t stress 2>&1 | FileCheck %s --check-prefix=STRESS
// RUN: %expect_exit 66 %t escape 2>&1 | FileCheck %s --check-prefix=ESCAPE
// RUN: %clangxx_mg -O2 -std=c++17 %s -o %t.cxx17
// RUN: %t.cxx17 stress 2>&1 | FileCheck %s --check-prefix=STRESS
// Switches are listed by print_stats (text and JSON) when the runtime is linked.
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t switches 2>&1 | FileCheck %s --check-prefix=SWITCHES
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json %t switches 2>&1 | FileCheck %s --check-prefix=SWITCHJSON
// SWITCHES: mapguard::guarded: 2 strategy switches
// SWITCHES-NEXT: guard 0x{{[0-9a-f]+}}: mutex -> sharded (pinned), by T0
// SWITCHES-NEXT: guard 0x{{[0-9a-f]+}}: sharded -> copy-on-write (pinned), by T0
// SWITCHJSON: {"mapguard_guarded_switch":{"guard":"0x{{[0-9a-f]+}}","from":"mutex","to":"sharded","thread":0,"why":"pinned"}}
// STRESS-NOT: fatal error
// STRESS: stress: 8 threads x 4000 ops, {{[0-9]+}} switches, 0 violations
// STRESS-NOT: fatal error
// ESCAPE: fatal error: unsynchronized map writes
// ESCAPE: Write (operator[]) by thread T0
// ESCAPE-SAME: in main
// ESCAPE: Previous Write (insert_or_assign) by thread T1 at {{.*}}mapguard/guarded.h
#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "../../guarded/stress.h"
#include "mapguard/guarded.h"

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (!std::strcmp(mode, "stress")) return guarded_stress::Run(8, 4000, 1) == 0 ? 0 : 1;
  if (!std::strcmp(mode, "switches")) {
    mapguard::guarded<std::unordered_map<int, int>> g(mapguard::Strategy::kMutex);
    g.insert_or_assign(1, 1);
    g.pin(mapguard::Strategy::kSharded);
    g.pin(mapguard::Strategy::kCopyOnWrite);
    return g.find(1) == 1 ? 0 : 1;
  }
  if (!std::strcmp(mode, "escape")) {
    mapguard::guarded<std::unordered_map<int, int>> g(mapguard::Strategy::kMutex);
    std::unordered_map<int, int> *leaked = nullptr;
    g.write([&](std::unordered_map<int, int> &m) { leaked = &m; });  // the bug
    std::atomic<bool> wrote{false};  // relaxed: orders nothing
    std::thread t([&] {
      g.insert_or_assign(1, 1);
      wrote.store(true, std::memory_order_relaxed);
    });
    while (!wrote.load(std::memory_order_relaxed)) {
    }
    (*leaked)[2] = 2;  // outside the guard's lock
    t.join();
    std::printf("not reported\n");
    return 0;
  }
  return 2;
}
