// Without -g the report still names each access's file:line:column (the
// plugin asks clang for locations only) and the object gets no debug info.
// A clang before 17 gives a plugin no way to ask: it says so in a remark
// (not a warning, so -Werror builds go on), and the report names functions.
// RUN: %clangxx_mg_nog -Werror -O2 %s -o %t 2> %t.compile.log
// RUN: FileCheck %s --allow-empty --check-prefix=%if plugin-line-tables %{COMPILE%} %else %{REMARK%} < %t.compile.log
// RUN: %expect_exit 66 %t 2>&1 | FileCheck %s --check-prefixes=CHECK,%if plugin-line-tables %{POS%} %else %{NOPOS%}
// RUN: llvm-dwarfdump-19 --debug-info %t | FileCheck %s --check-prefix=NODWARF
// COMPILE-NOT: mapguard
// REMARK: remark: mapguard: clang {{[0-9.]+}} gives a plugin no way to ask for line tables: compile with -gline-tables-only (or -g) for source positions and map names in reports
// CHECK: fatal error: concurrent map writes
// POS: Write (insert) by thread T2 {{.*}} at {{.*}}no_debug_info.cpp:[[@LINE+14]]:{{[0-9]+}} in put(int)
// NOPOS: Write (insert) by thread T2 {{.*}} at <unknown location> in put(int)
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
