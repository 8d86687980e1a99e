// Several translation units in one command: each gets its own plugin state,
// and a race between code in two of them is reported with both files.
// RUN: %clangxx_mg -O1 %s %S/Inputs/other_tu.cpp -o %t && %expect_exit 66 %t 2>&1 | FileCheck %s
// CHECK: fatal error: concurrent map writes
// CHECK: Write (operator[]) by thread T2 {{.*}} in add_here(int)
// CHECK: Write (insert_or_assign) in progress in thread T1 {{.*}}other_tu.cpp:{{[0-9]+}}:{{[0-9]+}} in add_there(int)
#include "test_sync.h"
#include "shared_table.h"

__attribute__((noinline)) void add_here(int k) { g_table[k] = 2; }

int main() {
  mg_test::race([] { add_there(mg_test::kBlockKey); }, [] { add_here(3); });
}
