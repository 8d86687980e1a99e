// -D_GLIBCXX_DEBUG (common in CI debug builds) turns std::map into
// std::__debug::map and std::unordered_map into std::__debug::unordered_map
// over std::__cxx1998 bases: to mapguard they are the same std containers.
// A race is reported with the map's name; a locked twin is quiet.
// RUN: %clangxx_mg -D_GLIBCXX_DEBUG -O0 %s -o %t.O0
// RUN: %clangxx_mg -D_GLIBCXX_DEBUG -O2 %s -o %t.O2
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %t.O0 locked 2>&1 | FileCheck %s --check-prefix=LOCKED
// RUN: %t.O2 locked 2>&1 | FileCheck %s --check-prefix=LOCKED
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t.O2 locked 2>&1 | FileCheck %s --check-prefix=STATS
// RACY: fatal error: {{concurrent|unsynchronized}} map writes [map-writes]
// RACY: Map: std::map<int, int> 'g_tree'
// LOCKED-NOT: fatal error
// LOCKED: DONE locked
// STATS: Map std::map<int, int> 'g_tree'
// STATS-NEXT: accesses: {{[0-9]+}} reads, {{40[01]}} writes
#include <cstring>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

std::map<int, int> g_tree;
std::unordered_map<int, int> g_hash;
std::mutex g_mu;

int main(int argc, char **argv) {
  bool racy = argc > 1 && !strcmp(argv[1], "racy");
  auto work = [racy](int base) {
    for (int i = 0; i < 200; i++) {
      std::unique_lock<std::mutex> lock(g_mu, std::defer_lock);
      if (!racy) lock.lock();
      g_tree.insert({base + i, i});
      (void)g_hash.count(i);
    }
  };
  std::thread a(work, 0), b(work, 1000);
  a.join();
  b.join();
  std::printf("DONE %s\n", racy ? "racy" : "locked");
  return 0;
}
