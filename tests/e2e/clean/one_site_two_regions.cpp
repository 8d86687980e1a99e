// Two regions of one map at one call site: `g == g` and `std::swap(g, g)`
// give both operands the same site, and so do two calls in one macro
// expansion. The inlined fast path hands a begin's token only to the ends of
// a begin that is alone at its (map, site) in its function; before, the
// first such begin took both ends, the other region never ended, and the
// next correctly ordered access from another thread was reported (-O2 only:
// the ends at -O0 find their regions themselves).
//  equal  g == g, then another thread writes g after a join: quiet
//  swap   std::swap(g, g), then another thread reads g: quiet
//  macro  two lookups of g from one macro, the second inside a loop over h
//         that the macro's control flow reaches first; then another thread
//         writes g: quiet
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 equal 2>&1 | FileCheck %s
// RUN: %t.O2 equal 2>&1 | FileCheck %s
// RUN: %t.O2 swap 2>&1 | FileCheck %s
// RUN: %t.O0 macro 2>&1 | FileCheck %s
// RUN: %t.O2 macro 2>&1 | FileCheck %s
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 macro 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK: DONE
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>
#include <utility>

std::map<int, int> g, h;

// The second lookup's block comes first in the function's layout.
#define LOOKUP_TWICE(k)                                 \
  do {                                                  \
    goto second;                                        \
  first:                                                \
    for (auto &x : h) sink += int(g.count(x.first));    \
    goto done;                                          \
  second:                                               \
    sink += int(g.count(k));                            \
    goto first;                                         \
  done:;                                                \
  } while (0)

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "equal";
  g[1] = 1;
  h[1] = 1;
  h[2] = 2;
  int sink = 0;
  if (!std::strcmp(mode, "equal")) {
    sink += g == g;
    std::thread([] { g[2] = 2; }).join();
  } else if (!std::strcmp(mode, "swap")) {
    std::swap(g, g);
    std::thread([] { (void)g.count(2); }).join();
  } else {
    LOOKUP_TWICE(1);
    std::thread([] { g[2] = 2; }).join();
  }
  std::printf("DONE %s %d %zu\n", mode, sink, g.size());
  return 0;
}
