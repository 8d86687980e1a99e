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
// One exclusive lock covers this thread's lookup and insert (the race is an
// unlocked insert elsewhere): the hint must not claim otherwise.
// RUN: %clangxx_mg -O1 -DCOVERED %s -o %t.covered
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.covered 2>&1 | FileCheck %s --check-prefix=COVERED
// COVERED: fatal error: concurrent map writes
// COVERED-NOT: check-then-insert
// COVERED: SUMMARY
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "test_sync.h"

std::mutex mu;
std::unordered_map<int, int, mg_test::BlockingHash> table;

#ifdef COVERED
std::atomic<bool> g_looked_up{false};
void add(int key) {  // correct: one lock across the lookup and the insert
  std::lock_guard<std::mutex> g(mu);
  bool seen = table.find(key) != table.end();
  g_looked_up.store(true, std::memory_order_relaxed);
  mg_test::wait_until_inside();  // the unlocked insert is in progress now
  if (!seen) table.insert({key, 1});
}
void add_unlocked(int key) { table.insert({key, 1}); }  // the real bug
#else
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

#endif

int main() {
#ifdef COVERED
  std::thread locked([] { add(7); });
  std::thread unlocked([] {
    while (!g_looked_up.load(std::memory_order_relaxed)) std::this_thread::yield();
    mg_test::t_armed = true;
    add_unlocked(mg_test::kBlockKey);
  });
  locked.join();
  unlocked.join();
#elif defined(LOCKED)
  add(1);
  add(2);
#else
  mg_test::race([] { add(mg_test::kBlockKey); }, [] { add(7); });
#endif
  return 0;
}
