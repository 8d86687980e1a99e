// Readers under a shared lock, writers under an exclusive one: no report.
// RUN: %clangxx_mg -O0 %s -o %t.O0 && %t.O0 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O2 %s -o %t.O2 && %t.O2 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK: DONE
#include <cstdio>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

std::shared_mutex mu;
std::map<int, int> table;

int main() {
  for (int i = 0; i < 100; i++) table[i] = i;
  std::vector<std::thread> threads;
  long sum = 0;
  std::mutex sum_mu;
  for (int t = 0; t < 4; t++)
    threads.emplace_back([&, t] {
      long local = 0;
      for (int i = 0; i < 20000; i++) {
        if (t == 0 && i % 50 == 0) {
          std::unique_lock<std::shared_mutex> w(mu);
          table[i % 200] = i;
        } else {
          std::shared_lock<std::shared_mutex> r(mu);
          auto it = table.find(i % 100);
          if (it != table.end()) local += it->second;
          for (const auto &kv : table) local += kv.first & 1;  // iteration under the shared lock
          if (i % 1000 == 0) local += table.size();
        }
      }
      std::lock_guard<std::mutex> g(sum_mu);
      sum += local;
    });
  for (auto &th : threads) th.join();
  std::printf("DONE %d\n", sum > 0);
}
