// A shared map behind std::mutex, hammered by 4 threads: no report.
// RUN: %clangxx_mg -O0 %s -o %t.O0 && %t.O0 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O2 %s -o %t.O2 && %t.O2 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK: DONE 4
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

std::mutex mu;
std::unordered_map<int, int> shared;

int main() {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back([t] {
      for (int i = 0; i < 20000; i++) {
        std::lock_guard<std::mutex> lock(mu);
        if (i % 5 == 0) shared[i] = t; else (void)shared.count(i);
      }
    });
  for (auto &th : threads) th.join();
  std::printf("DONE %zu\n", threads.size());
}
