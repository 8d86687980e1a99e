// A map filled before the threads start, then only read by all of them
// (find, count, at, iteration): readers never conflict. No report.
// RUN: %clangxx_mg -O0 %s -o %t.O0 && %t.O0 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O2 %s -o %t.O2 && %t.O2 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK: DONE
#include <cstdio>
#include <thread>
#include <unordered_map>
#include <vector>

int main() {
  std::unordered_map<int, int> config;
  for (int i = 0; i < 1000; i++) config[i] = i * 2;
  const auto &view = config;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back([&view] {
      long s = 0;
      for (int i = 0; i < 2000; i++) {
        s += view.at(i % 1000);
        s += view.count(i);
        if (auto it = view.find(i); it != view.end()) s += it->second;
      }
      for (int r = 0; r < 20; r++)
        for (const auto &kv : view) s += kv.second;
      if (s < 0) std::printf("impossible\n");
    });
  for (auto &th : threads) th.join();
  std::printf("DONE\n");
}
