// One thread inserting into a map it is iterating (itself a bug for
// iterators, but not a data race), and a map that contains maps: no report.
// RUN: %clangxx_mg -O0 %s -o %t.O0 && %t.O0 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O2 %s -o %t.O2 && %t.O2 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK: DONE
#include <cstdio>
#include <map>
#include <string>
#include <vector>

int main() {
  std::map<int, int> m{{1, 1}, {2, 2}};
  for (const auto &kv : m)
    if (kv.first == 1) m[100] = kv.second;  // insert while iterating, same thread
  std::map<std::string, std::map<int, int>> outer;
  outer["a"][1] = 2;
  for (auto &kv : outer) kv.second[3] = 4;
  std::vector<std::map<int, int>> many(8);
  for (auto &inner : many) inner[1] = 1;
  std::printf("DONE %zu %zu\n", m.size(), outer["a"].size());
}
