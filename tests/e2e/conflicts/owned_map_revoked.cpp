// A map used by only one thread is owned by it: its regions are not in the
// map's state word. When a second thread arrives while the owner is inside an
// operation, the revocation (a signal handshake) must count the owner's open
// region, so the overlap is still reported as such, with the owner's live
// stack, in both detection modes and at -O0 and -O2.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %expect_exit 66 %t.O0 write 2>&1 | FileCheck %s --check-prefix=WRITE
// RUN: %expect_exit 66 %t.O2 write 2>&1 | FileCheck %s --check-prefix=WRITE
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O2 write 2>&1 | FileCheck %s --check-prefix=WRITE
// RUN: %expect_exit 66 %t.O0 read 2>&1 | FileCheck %s --check-prefix=READ
// RUN: %expect_exit 66 %t.O2 read 2>&1 | FileCheck %s --check-prefix=READ
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O2 iterate 2>&1 | FileCheck %s --check-prefix=ITER
// RUN: %expect_exit 66 %t.O2 iterate 2>&1 | FileCheck %s --check-prefix=ITER
// Handed over properly (a join orders it): no report, whichever thread built it.
// RUN: %t.O2 handoff 2>&1 | FileCheck %s --check-prefix=HANDOFF
// WRITE: fatal error: concurrent map writes
// WRITE: Write (operator[]) by thread T2
// WRITE: Write (insert) in progress in thread T1
// WRITE: BlockingHash::operator()
// WRITE-NEXT: main::{{.*}} {{.*}}owned_map_revoked.cpp:{{[0-9]+}}
// READ: fatal error: concurrent map read and map write
// READ: Write (operator[]) by thread T2
// READ: Read (count) in progress in thread T1
// ITER: fatal error: concurrent map iteration and map write
// ITER: in progress in thread T1
// HANDOFF: handoff ok
// HANDOFF-NOT: mapguard
#include <cstdio>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "test_sync.h"

using Table = std::unordered_map<int, int, mg_test::BlockingHash>;
Table *g_table;  // built and first used by T1, so T1 owns it

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "write";
  if (!strcmp(mode, "handoff")) {
    std::thread a([] {
      g_table = new Table;
      for (int i = 0; i < 100; i++) (*g_table)[i] = i;
    });
    a.join();
    std::thread b([] { (*g_table)[5] = 0; (void)g_table->count(7); });
    b.join();
    delete g_table;
    std::printf("handoff ok\n");
    return 0;
  }
  std::atomic<bool> built{false};
  std::thread owner([&] {
    g_table = new Table;
    (*g_table)[1] = 1;  // not empty: lookups hash their key
    built.store(true, std::memory_order_relaxed);
    mg_test::t_armed = true;
    if (!strcmp(mode, "write")) {
      g_table->insert({mg_test::kBlockKey, 1});
    } else if (!strcmp(mode, "read")) {
      (void)g_table->count(mg_test::kBlockKey);
    } else {
      long sum = 0;
      for (auto &kv : *g_table) {
        sum += kv.second;
        mg_test::maybe_block(mg_test::kBlockKey);
      }
      (void)sum;
    }
  });
  std::thread racer([&] {
    while (!built.load(std::memory_order_relaxed)) std::this_thread::yield();
    mg_test::wait_until_inside();
    (*g_table)[7] = 2;
  });
  owner.join();
  racer.join();
  return 0;
}
