// Without -g the report still names each access's file:line:column (the
// plugin asks clang for locations only) and the object gets no debug info.
// RUN: %clangxx_mg_nog -O2 %s -o %t && %expect_exit 66 %t 2>&1 | FileCheck %s
// RUN: llvm-dwarfdump-19 --debug-info %t | FileCheck %s --check-prefix=NODWARF
// CHECK: fatal error: concurrent map writes
// CHECK: Write (insert) by thread T2 {{.*}} at {{.*}}no_debug_info.cpp:[[@LINE+13]]:{{[0-9]+}} in put(int)
// Frames without line info show the function and module+offset, never
// "file.cpp:0"; the standard library's internals are hidden by symbol.
// CHECK-NEXT: #0 put(int) ({{.*}}no_debug_info.cpp.tmp+0x{{[0-9a-f]+}})
// CHECK-NOT: _State_impl
// CHECK-NOT: _Rb_tree
// CHECK-NOT: .cpp:0
// CHECK: SUMMARY: mapguard
// NODWARF-NOT: DW_TAG_compile_unit
#include <set>
#include "test_sync.h"
struct Less { bool operator()(int a, int b) const { mg_test::maybe_block(a); mg_test::maybe_block(b); return a < b; } };
std::set<int, Less> s{1};
__attribute__((noinline)) void put(int k) { s.insert(k); }
int main() { mg_test::race([] { put(mg_test::kBlockKey); }, [] { put(3); }); }
