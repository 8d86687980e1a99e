// A function-local static map built in a lambda by whichever thread gets
// there first and then read by all (the Meyers-singleton lookup table): the
// initialization happens before every later use, through __cxa_guard_release
// and the guard's acquire check. Its racy twin builds a plain global map in
// one thread and lets another read it after a relaxed flag: reported.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE clean
// RACY: fatal error: unsynchronized map read and map write
// RACY: Map: std::map<int, std::string> 'g_names'
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

__attribute__((noinline)) const std::string &name_of(int code) {
  static const std::map<int, std::string> names = [] {
    std::map<int, std::string> m;
    for (int i = 0; i < 100; i++) m[i] = "code" + std::to_string(i);
    return m;
  }();
  static const std::string unknown = "?";
  auto it = names.find(code);
  return it == names.end() ? unknown : it->second;
}

std::map<int, std::string> g_names;
std::atomic<bool> g_built{false};

int main(int argc, char **argv) {
  bool racy = argc > 1 && !strcmp(argv[1], "racy");
  if (!racy) {
    std::vector<std::thread> threads;
    size_t total[4] = {};
    for (int t = 0; t < 4; t++)
      threads.emplace_back([t, &total] {
        for (int i = 0; i < 1000; i++) total[t] += name_of((i * 7 + t) % 120).size();
      });
    for (auto &t : threads) t.join();
    std::printf("DONE clean %zu\n", total[0] + total[1] + total[2] + total[3]);
    return 0;
  }
  std::thread builder([] {
    for (int i = 0; i < 100; i++) g_names[i] = "code" + std::to_string(i);
    g_built.store(true, std::memory_order_relaxed);  // orders nothing
  });
  std::thread reader([] {
    while (!g_built.load(std::memory_order_relaxed)) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    (void)g_names.count(5);
  });
  builder.join();
  reader.join();
  return 0;
}
