// Each thread uses its own maps (locals and thread_local): no report.
// RUN: %clangxx_mg -O0 %s -o %t.O0 && %t.O0 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O2 %s -o %t.O2 && %t.O2 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK: DONE
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

thread_local std::unordered_map<std::string, int> tl_counts;

int main() {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back([] {
      std::set<int> seen;
      for (int i = 0; i < 20000; i++) {
        seen.insert(i % 300);
        tl_counts[std::to_string(i % 50)]++;
      }
      for (int x : seen) (void)tl_counts.count(std::to_string(x));
    });
  for (auto &th : threads) th.join();
  std::printf("DONE\n");
}
