// A lookup under a lock, then an insert after the lock is gone: the report
// carries a check-then-insert hint naming both call sites of the thread that
// did it (here the thread whose insert is in progress).
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: %expect_exit 66 %t 2>&1 | FileCheck %s
// RUN: env MAPGUARD_OPTIONS=format=json %expect_exit 66 %t 2>&1 | FileCheck %s --check-prefix=JSON
// RUN: %clangxx_mg -O1 -DLOCKED %s -o %t.locked
// RUN: %t.locked 2>&1 | FileCheck %s --check-prefix=LOCKED --allow-empty
// CHECK: fatal error: concurrent map read and map write
// CHECK: Hint: check-then-insert: thread T1 looked the key up with find() at {{.*}}check_then_insert_hint.cpp:[[#LOOKUP:]] and then called insert at {{.*}}check_then_insert_hint.cpp:[[#]]; unless one exclusive lock covers both calls, another thread can use the map in between. Hold one std::unique_lock across the lookup and the insert, or drop the lookup and use what insert()/try_emplace() returns
// JSON: "hint":"check-then-insert: thread T1 looked the key up with find()
// LOCKED-NOT: mapguard
#include <mutex>
#include <unordered_map>

#include "test_sync.h"

std::mutex mu;
std::unordered_map<int, int, mg_test::BlockingHash> table;

void add(int key) {
#ifdef LOCKED
  std::lock_guard<std::mutex> g(mu);
  if (table.find(key) == table.end())
    table.insert({key, 1});
#else
  bool seen;
  { std::lock_guard<std::mutex> g(mu); seen = table.find(key) != table.end(); }
  if (!seen) table.insert({key, 1});  // BUG: the lock is already gone
#endif
}

int main() {
#ifdef LOCKED
  add(1);
  add(2);
#else
  mg_test::race([] { add(mg_test::kBlockKey); }, [] { add(7); });
#endif
  return 0;
}
