// A loop over a node-based map (std::map) that drops the lock in its body to
// call out, while another thread inserts under the same lock: data-race-free
// in C++ (node containers keep iterators valid, and every iterator step runs
// with the lock held), so quiet in both modes. The same loop over a
// std::unordered_map is a real bug (an insert may rehash and invalidate the
// loop's iterator): reported on every run.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 map 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 map 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 map 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 unordered 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 unordered 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O2 unordered 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE map
// RACY: fatal error: {{concurrent|unsynchronized}} map iteration and map write
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

std::mutex g_mu;
std::atomic<int> g_callouts{0}, g_inserts{0};  // relaxed: pace the threads, order nothing

__attribute__((noinline)) void callout(int key) {
  // Let the other thread insert while this one is outside the lock.
  int want = g_inserts.load(std::memory_order_relaxed) + 1;
  g_callouts.fetch_add(1, std::memory_order_relaxed);
  for (int i = 0; i < 200 && g_inserts.load(std::memory_order_relaxed) < want; i++)
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  (void)key;
}

template <typename Map>
void run(Map &m) {
  for (int i = 0; i < 20; i++) m[i * 1000] = i;
  std::thread inserter([&] {
    for (int n = 0; n < 20; n++) {
      while (g_callouts.load(std::memory_order_relaxed) <= n) std::this_thread::yield();
      std::lock_guard<std::mutex> lock(g_mu);
      m[n * 1000 + 1] = n;  // a new element, between the ones being visited
      g_inserts.fetch_add(1, std::memory_order_relaxed);
    }
  });
  {
    std::unique_lock<std::mutex> lock(g_mu);
    int visited = 0;
    for (auto &kv : m) {
      if (++visited > 20) break;
      lock.unlock();
      callout(kv.first);
      lock.lock();
    }
  }
  inserter.join();
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "unordered")) {
    std::unordered_map<int, int> m;
    run(m);
  } else {
    std::map<int, int> m;
    run(m);
  }
  std::printf("DONE %s\n", argc > 1 ? argv[1] : "map");
  return 0;
}
