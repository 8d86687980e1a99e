// print_stats=1 shows, for unordered containers with the standard hasher and
// key_equal, how often the bucket count changed (rehashes, counted from the
// constructor's count) and the largest load factor a write left behind.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t 2>&1 | FileCheck %s --check-prefixes=CHECK,GNU
// RUN: %clangxx_mg -stdlib=libc++ -O1 %s -o %t.libcxx
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t.libcxx 2>&1 | FileCheck %s --check-prefixes=CHECK,LIBCXX
// CHECK: mapguard: map statistics
// libstdc++ grows 1 -> 13 -> 29 -> 59 -> 127 -> 257 -> 541 -> 1109 buckets.
// GNU: Map std::unordered_map<int, int> 'counts'
// GNU-NEXT: accesses: {{.*}}
// GNU-NEXT: growth: 7 rehashes; largest load factor: 1.00
// LIBCXX: Map std::unordered_map<int, int> 'counts'
// LIBCXX-NEXT: accesses: {{.*}}
// LIBCXX-NEXT: growth: {{[1-9][0-9]*}} rehashes; largest load factor: {{0\.[0-9][0-9]|1\.00}}
// One reserve() is one rehash; the load factor stays low.
// CHECK: Map std::unordered_set<int> 'reserved'
// CHECK-NEXT: accesses: {{.*}}
// CHECK-NEXT: growth: 1 rehash; largest load factor: 0.{{[0-4]}}
// A custom hasher: the runtime makes no assumption about the layout.
// CHECK: Map std::unordered_set<int, Hasher> 'custom'
// CHECK-NEXT: accesses: {{.*}}
// CHECK-NEXT: hint:
#include <cstddef>
#include <unordered_map>
#include <unordered_set>

struct Hasher {
  std::size_t seed = 7;
  std::size_t operator()(int k) const { return std::size_t(k) ^ seed; }
};

int main() {
  std::unordered_map<int, int> counts;
  for (int i = 0; i < 1000; i++) counts[i] = i;
  std::unordered_set<int> reserved;
  reserved.reserve(200);
  for (int i = 0; i < 3; i++) reserved.insert(i);
  std::unordered_set<int, Hasher> custom;
  for (int i = 0; i < 2; i++) custom.insert(i);
  return counts.size() == 1000 ? 0 : 1;
}
