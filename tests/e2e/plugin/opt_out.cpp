// MAPGUARD_NO_INSTRUMENT leaves a function alone, and __MAPGUARD__ tells
// code it is being instrumented.
// RUN: %clangxx_mg -O0 %s -o %t && %t 2>&1 | FileCheck %s
// RUN: %clangxx_plain -O0 %s -o %t.plain && %t.plain 2>&1 | FileCheck %s --check-prefix=PLAIN
// CHECK: instrumented: yes
// CHECK-NOT: fatal error
// CHECK: DONE
// PLAIN: instrumented: no
#include <cstdio>
#include <unordered_map>

#include "mapguard/annotations.h"
#include "test_sync.h"

using Table = std::unordered_map<int, int, mg_test::BlockingHash>;

MAPGUARD_NO_INSTRUMENT void legacy_put(Table &t, int k) { t[k] = 1; }

int main() {
#ifdef __MAPGUARD__
  std::printf("instrumented: yes\n");
#else
  std::printf("instrumented: no\n");
#endif
  Table t;
  mg_test::race([&] { legacy_put(t, mg_test::kBlockKey); }, [&] { legacy_put(t, 2); });
  std::printf("DONE\n");
}
