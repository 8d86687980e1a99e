// A map several threads read at once turns read-shared: its reads announce
// themselves on their own thread's region stack instead of counting in the
// map's state word, and the next write scans for them (steps A0-A5, W1-W3
// in runtime/mg_ownership.cpp). Two reads are forced to overlap first (so
// the map is read-shared), then:
//   write: a write while an announced read is in flight;
//   read:  an announced read while a write is in flight;
//   hb:    a write after the reads, ordered with them by nothing;
//   clean: reads under a shared lock, writes under the exclusive lock.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %expect_exit 66 %t.O0 write 2>&1 | FileCheck %s --check-prefix=WRITE
// RUN: %expect_exit 66 %t.O2 write 2>&1 | FileCheck %s --check-prefix=WRITE
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O2 write 2>&1 | FileCheck %s --check-prefix=WRITE
// RUN: %expect_exit 66 %t.O0 read 2>&1 | FileCheck %s --check-prefix=READ
// RUN: %expect_exit 66 %t.O2 read 2>&1 | FileCheck %s --check-prefix=READ
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O2 read 2>&1 | FileCheck %s --check-prefix=READ
// RUN: %expect_exit 66 %t.O2 hb 2>&1 | FileCheck %s --check-prefix=HB
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 hb 2>&1 | FileCheck %s --check-prefix=QUIET
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=QUIET
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=QUIET
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 clean 2>&1 | FileCheck %s --check-prefix=QUIET
// WRITE: fatal error: concurrent map read and map write
// WRITE: Write (operator[]) by thread T3
// WRITE: {{.*}}read_shared.cpp:[[@LINE+99]]
// WRITE: Read (count) in progress in thread T1
// WRITE: BlockingReadHash::operator()
// WRITE-NEXT: {{.*}}read_shared.cpp:[[@LINE+67]]
// READ: fatal error: concurrent map read and map write
// READ: Read (count) by thread T2
// READ: {{.*}}read_shared.cpp:[[@LINE+85]]
// READ: Write (insert) in progress in thread T3
// READ: {{.*}}read_shared.cpp:[[@LINE+98]]
// HB: fatal error: unsynchronized map read and map write
// HB: Write (operator[]) by thread T3
// HB: Read (count) by thread T{{[12]}}
// QUIET-NOT: mapguard
// QUIET: done
#include <cstdio>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "test_sync.h"

constexpr int kHoldKey = 99;
// Round r of the protocol, base = 3r: base + 1 the first reader is inside,
// base + 2 the second read is done, base + 3 the write is done (clean only).
std::atomic<int> g_step{0};
std::atomic<int> g_base{0};
thread_local bool t_hold = false;

// Holds the first reader inside its lookup until a second read overlapped it
// (which turns the map read-shared), and parks an armed thread (test_sync.h).
struct BlockingReadHash {
  size_t operator()(int k) const {
    if (k == kHoldKey && t_hold) {
      t_hold = false;
      const int base = g_base.load(std::memory_order_relaxed);
      g_step.store(base + 1, std::memory_order_relaxed);
      while (g_step.load(std::memory_order_relaxed) != base + 2) std::this_thread::yield();
    }
    mg_test::maybe_block(k);
    return size_t(k);
  }
};
using Table = std::unordered_map<int, int, BlockingReadHash>;
Table g_table;
std::shared_mutex g_mu;

void wait_step(int step) {
  while (g_step.load(std::memory_order_relaxed) < step) std::this_thread::yield();
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "write";
  const bool clean = !strcmp(mode, "clean");
  for (int i = 0; i < 100; i++) g_table[i] = i;
  std::atomic<int> reads_done{0};
  std::atomic<bool> r1_first_read_done{false};
  std::atomic<long> sum{0};
  // T1: holds its first read open until T2's read overlapped it.
  std::thread r1([&] {
    for (int round = 0; round < (clean ? 50 : 1); round++) {
      std::shared_lock<std::shared_mutex> l(g_mu, std::defer_lock);
      if (clean) l.lock();
      g_base.store(3 * round, std::memory_order_relaxed);
      t_hold = true;
      sum += long(g_table.count(kHoldKey));
      r1_first_read_done.store(true, std::memory_order_release);
      if (!strcmp(mode, "write")) {
        mg_test::t_armed = true;
        sum += long(g_table.count(mg_test::kBlockKey));  // BLOCKED-READ-LINE
      }
      if (clean) {
        l.unlock();
        wait_step(3 * round + 3);  // the write is done
      }
    }
    reads_done.fetch_add(1, std::memory_order_relaxed);
  });
  // T2: the overlapping read.
  std::thread r2([&] {
    for (int round = 0; round < (clean ? 50 : 1); round++) {
      std::shared_lock<std::shared_mutex> l(g_mu, std::defer_lock);
      wait_step(3 * round + 1);
      if (clean) l.lock();
      sum += long(g_table.count(7));
      if (clean) l.unlock();
      g_step.store(3 * round + 2, std::memory_order_release);
    }
    if (!strcmp(mode, "read")) {
      mg_test::wait_until_inside();
      sum += long(g_table.count(7));  // RACING-READ-LINE
    }
    reads_done.fetch_add(1, std::memory_order_relaxed);
  });
  // T3: the writer.
  std::thread w([&] {
    if (!strcmp(mode, "write")) {
      mg_test::wait_until_inside();
      g_table[7] = 2;  // WRITE-LINE
    } else if (!strcmp(mode, "read")) {
      // Ordered after both reads so far (hb has nothing to say about them).
      while (g_step.load(std::memory_order_acquire) < 2 ||
             !r1_first_read_done.load(std::memory_order_acquire))
        std::this_thread::yield();
      mg_test::t_armed = true;
      g_table.insert({mg_test::kBlockKey, 1});  // BLOCKED-WRITE-LINE
    } else if (!strcmp(mode, "hb")) {
      while (reads_done.load(std::memory_order_relaxed) != 2) std::this_thread::yield();
      g_table[7] = 2;
    } else {
      for (int round = 0; round < 50; round++) {
        wait_step(3 * round + 2);
        {
          std::unique_lock<std::shared_mutex> l(g_mu);
          g_table[7] = round;
        }
        g_step.store(3 * round + 3, std::memory_order_relaxed);
      }
    }
  });
  r1.join();
  r2.join();
  w.join();
  std::printf("done %ld\n", sum.load());
  return 0;
}
