// Millions of short-lived maps, on the stack and on the heap, across many
// threads: destroyed maps retire their shadow, a new map at a reused address
// starts clean (no false report), and memory stays bounded.
// RUN: %clangxx_mg -O2 %s -o %t && %t 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK: maps=2000000
// CHECK: DONE rss-bounded=1
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

static long peak_rss_kb() {
  FILE *f = std::fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && std::fgets(line, sizeof line, f))
    if (!std::strncmp(line, "VmHWM:", 6)) kb = std::atol(line + 6);
  if (f) std::fclose(f);
  return kb;
}

int main() {
  long total = 0;
  for (int round = 0; round < 10; round++) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++)
      threads.emplace_back([&total] {
        for (int i = 0; i < 25000; i++) {
          std::unordered_map<int, int> local;  // stack address reused every iteration
          local[i] = i;
          auto heap = std::make_unique<std::map<int, int>>();
          (*heap)[i] = local[i];
        }
      });
    for (auto &th : threads) th.join();
    total += 4 * 25000 * 2;
  }
  std::printf("maps=%ld\n", total);
  long kb = peak_rss_kb();
  std::printf("peak rss %ld kB\n", kb);
  std::printf("DONE rss-bounded=%d\n", kb > 0 && kb < 100 * 1024);
}
