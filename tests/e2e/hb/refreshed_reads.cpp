// Readers of a map shared read-only that synchronize on something else
// between reads (here: copying and dropping a shared_ptr value, an acq_rel
// read-modify-write of its control block each time). Every such release
// starts a new epoch, so each reader's next read refreshes its entry in the
// map's read set, without the map's lock (runtime/mg_hb.h, step R), while
// other readers join and the set grows.
//  clean: the writer joins every reader first: no report, on any run.
//  racy:  the writer joins readers 2-6 but is ordered after reader 1's
//         first pass only (a release-acquire on `published`); reader 1
//         reads again afterwards (a refreshed entry), and the write must
//         race with that read, named at its own line.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE clean
// RACY: fatal error: unsynchronized map read and map write
// RACY: Previous Read (find) by thread T1 at {{.*}}refreshed_reads.cpp:[[#@LINE+37]]:{{[0-9]+}}
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "test_sync.h"

using Table = std::unordered_map<int, std::shared_ptr<long>>;

__attribute__((noinline)) long pass(const Table &t, int reader, int iters) {
  long s = 0;
  for (int i = 0; i < iters; i++) {
    auto it = t.find((reader * 31 + i) % 64);
    if (it == t.end()) continue;
    std::shared_ptr<long> p = it->second;  // a release and an acquire: a new epoch
    s += *p;
    if (i % 16 == 0) mg_test::spin(200);
  }
  return s;
}

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  Table t;
  for (int k = 0; k < 64; k++) t[k] = std::make_shared<long>(k);
  std::atomic<bool> published{false};
  std::atomic<bool> last_read_done{false};
  std::vector<std::thread> readers;
  for (int r = 1; r <= 6; r++)
    readers.emplace_back([&, r] {
      long s = pass(t, r, 2000);
      if (r == 1 && mode == "racy") {
        published.store(true, std::memory_order_release);
        auto it = t.find(7);  // the read the write races with
        s += it == t.end() ? 0 : *it->second;
        last_read_done.store(true, std::memory_order_relaxed);  // no ordering
      }
      if (s == -1) std::puts("impossible");
    });
  if (mode == "racy") {
    for (size_t i = 1; i < readers.size(); i++) readers[i].join();
    while (!published.load(std::memory_order_acquire)) std::this_thread::yield();
    while (!last_read_done.load(std::memory_order_relaxed)) std::this_thread::yield();
    t[100] = std::make_shared<long>(100);
  }
  for (auto &th : readers)
    if (th.joinable()) th.join();
  t[200] = std::make_shared<long>(200);
  std::printf("DONE %s\n", mode.c_str());
}
