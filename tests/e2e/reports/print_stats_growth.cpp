// print_stats=1's growth audit, for unordered containers with the standard
// hasher and key_equal (your std::hash specializations included): how often
// the bucket count changed (rehashes, counted from the constructor's count)
// with the buckets before and after and the load factor at each, the
// elements they relinked, and, when the map is destroyed, how its keys
// spread over the buckets. A map filled without reserve() gets the advice to
// reserve; a hash that ignores part of its key gets a warning.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t 2>&1 | FileCheck %s --check-prefixes=CHECK,GNU
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json %t 2>&1 | FileCheck %s --check-prefix=JSON
// RUN: %clangxx_mg -stdlib=libc++ -O1 %s -o %t.libcxx
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t.libcxx 2>&1 | FileCheck %s --check-prefixes=CHECK,LIBCXX
// CHECK: mapguard: map statistics
// A hash that ignores y: 16 hash values for 3200 keys.
// CHECK: Map std::unordered_set<Point> 'points'
// CHECK: key spread at destruction: 3200 keys in 16 of {{[0-9]+}} buckets; longest chain 200; 99.{{[0-9]}}% of buckets empty
// CHECK-NEXT: warning: 94% of keys in 0.{{[0-9]}}% of buckets (15 of {{[0-9]+}}): the hash spreads keys badly; does it ignore part of the key, or its high bits?
// libstdc++ grows 1 -> 13 -> 29 -> 59 -> 127 -> 257 -> 541 -> 1109 -> 2357 -> 5087 buckets.
// GNU: Map std::unordered_map<int, int> 'counts'
// GNU: growth: 9 rehashes (4501 elements relinked); largest load factor: 1.00; largest size: 3000
// GNU-NEXT: rehashes (buckets, load factor when it grew): 1->13 (1.00) 13->29 (1.07) 29->59 (1.03)
// GNU-NEXT: key spread at destruction: 3000 keys in 3000 of 5087 buckets; longest chain 1; 41.0% of buckets empty; dispersion 0.41 (1 is uniform)
// GNU-NEXT: pattern: one thread uses it: no lock needed
// GNU-NEXT: advice: call reserve(3000) before filling it: 9 rehashes relinked 4501 elements
// LIBCXX: Map std::unordered_map<int, int> 'counts'
// LIBCXX: growth: {{[1-9][0-9]*}} rehashes ({{[0-9]+}} elements relinked); largest load factor: {{0\.[0-9][0-9]|1\.00}}; largest size: 3000
// LIBCXX: key spread at destruction: 3000 keys in 3000 of
// LIBCXX-NOT: warning
// LIBCXX: advice: call reserve(3000) before filling it
// One reserve() is one rehash; the load factor stays low, nothing to advise.
// CHECK: Map std::unordered_set<int> 'reserved'
// CHECK: growth: 1 rehash (0 elements relinked); largest load factor: 0.{{[0-4]}}
// CHECK-NOT: advice:
// A custom hasher: the runtime makes no assumption about the layout.
// CHECK: Map std::unordered_set<int, Hasher> 'custom'
// CHECK-NOT: growth:
// CHECK: pattern: one thread uses it
// JSON: "name":"points"
// JSON-SAME: "spread":{"keys":3200,
// JSON-SAME: "longest_chain":200,
// JSON-SAME: "bad":true}
// JSON: "name":"counts"
// JSON-SAME: "growth":{"rehashes":9,"elements_moved":4501,"max_size":3000,"log":[{"from":1,"to":13,"load_factor":1.00},
// JSON-SAME: "growth_advice":"call reserve(3000) before filling it: 9 rehashes relinked 4501 elements"
#include <cstddef>
#include <functional>
#include <unordered_map>
#include <unordered_set>

struct Point {
  int x, y;
  bool operator==(const Point &o) const { return x == o.x && y == o.y; }
};
template <>
struct std::hash<Point> {
  std::size_t operator()(const Point &p) const { return std::size_t(p.x); }  // forgets y
};

struct Hasher {
  std::size_t seed = 7;
  std::size_t operator()(int k) const { return std::size_t(k) ^ seed; }
};

int main() {
  std::unordered_map<int, int> counts;
  for (int i = 0; i < 3000; i++) counts[i] = i;
  std::unordered_set<Point> points;
  for (int x = 0; x < 16; x++)
    for (int y = 0; y < 200; y++) points.insert({x, y});
  std::unordered_set<int> reserved;
  reserved.reserve(200);
  for (int i = 0; i < 3; i++) reserved.insert(i);
  std::unordered_set<int, Hasher> custom;
  for (int i = 0; i < 2; i++) custom.insert(i);
  return counts.size() == 3000 && points.size() == 3200 ? 0 : 1;
}
