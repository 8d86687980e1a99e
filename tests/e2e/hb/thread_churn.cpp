// 1000 short-lived threads (slots of finished threads are reused) and
// 100,000 maps: a shared map behind a mutex and per-thread maps give no
// report, and memory stays flat. Then, with slots reused, an unsynchronized
// pair is still reported.
// RUN: %clangxx_mg -O2 %s -o %t
// RUN: %t clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: threads=1000 maps=100000
// CLEAN: DONE rss-flat=1
// RACY: fatal error: unsynchronized map writes
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "test_sync.h"

using mg_test::rss_kb;

std::mutex mu;
std::unordered_map<int, int> shared;

int main(int argc, char **argv) {
  bool racy = argc > 1 && !std::strcmp(argv[1], "racy");
  int threads = 0, maps = 0;
  long rss_after_warmup = 0;
  // The first group is wide (72 threads) so that more than 64 slots exist
  // and later threads reuse the slots of finished ones.
  for (int batch = 0; batch < 117; batch++) {
    std::vector<std::thread> group;
    int width = batch == 0 ? 72 : 8;
    for (int t = 0; t < width; t++, threads++)
      group.emplace_back([t, batch] {
        for (int i = 0; i < 100; i++) {
          std::map<int, int> local;
          local[i] = t;
          std::lock_guard<std::mutex> g(mu);
          shared[(batch * 8 + t) % 512] = local[i];
        }
      });
    for (auto &th : group) th.join();
    maps += width * 100;
    if (batch == 20) rss_after_warmup = rss_kb();
  }
  if (racy) {
    // Slots are being reused now; the pair below shares no synchronization.
    std::thread a([] { shared[1] = 1; mg_test::g_inside.store(true, std::memory_order_relaxed); });
    std::thread b([] { mg_test::wait_until_inside(); shared[2] = 2; });
    a.join();
    b.join();
  }
  long rss_end = rss_kb();
  std::printf("threads=%d maps=%d\n", threads, maps);
  std::printf("rss after warm-up %ld kB, at end %ld kB\n", rss_after_warmup, rss_end);
  std::printf("DONE rss-flat=%d\n", rss_end < rss_after_warmup + 8 * 1024);
}
