// At -O1 and above the plugin links the runtime's owned fast path
// (mapguard_fast_path.bc) into the module: the common case of a map call's
// begin and end runs inline, and only its slow cases call the runtime. At -O0
// and with fast-path=off, instrumented code calls the runtime's entry points.
// RUN: %clangxx_mg -O2 -S -emit-llvm %s -o - | FileCheck %s --check-prefix=INLINE
// RUN: %clangxx_mg -O1 -S -emit-llvm %s -o - | FileCheck %s --check-prefix=INLINE
// RUN: %clangxx_mg -O0 -S -emit-llvm %s -o - | FileCheck %s --check-prefix=CALLS
// RUN: %clangxx_mg -O2 -fplugin-arg-mapguard-fast-path=off -S -emit-llvm %s -o - | FileCheck %s --check-prefix=CALLS
// Ends on an unwind path (in a landing pad) stay calls: cold code.
// INLINE-NOT: call void @__mapguard_{{(read|write)_begin}}(
// INLINE-NOT: define {{.*}}@__mapguard_inline_
// INLINE: call {{.*}}@__mapguard_fp_{{[0-9a-f]+}}_begin_slow(
// INLINE-NOT: call void @__mapguard_{{(read|write)_begin}}(
// INLINE: landingpad
// INLINE-NEXT: cleanup
// INLINE-NEXT: call void @__mapguard_write_end(
// INLINE-NOT: call void @__mapguard_{{(read|write)_begin}}(
// INLINE-NOT: define {{.*}}@__mapguard_inline_
// CALLS-DAG: call void @__mapguard_read_begin(
// CALLS-DAG: call void @__mapguard_write_end(
// CALLS-NOT: __mapguard_fp_
//
// Inlined, the same program behaves the same: quiet while one thread owns
// the map, the report's lines right once two threads race, with -O2 PIE, a
// non-PIE executable (the runtime's globals are reached through the GOT, never
// copied into the executable by a copy relocation the runtime would not see)
// and the fast path off.
// RUN: %clangxx_mg -O2 %s -o %t.pie && %expect_exit 66 %t.pie 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O2 -fno-pie -no-pie %s -o %t.nopie && %expect_exit 66 %t.nopie 2>&1 | FileCheck %s
// RUN: llvm-readelf-19 -rW %t.nopie | FileCheck %s --check-prefix=NOCOPY
// RUN: %clangxx_mg -O2 -fplugin-arg-mapguard-fast-path=off %s -o %t.off && %expect_exit 66 %t.off 2>&1 | FileCheck %s
// Link-time optimization and a caller built for another CPU inline it too.
// RUN: %clangxx_mg -O2 -flto %s -o %t.lto && %expect_exit 66 %t.lto 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O2 -march=native %s -o %t.native && %expect_exit 66 %t.native 2>&1 | FileCheck %s
// RUN: llvm-objdump-19 -d %t.lto %t.native | FileCheck %s --check-prefix=NOCALLS
// NOCALLS-NOT: call{{.*}}<__mapguard_{{(read|write)_begin}}
// CHECK: owned: 50000
// CHECK: fatal error: concurrent map writes
// CHECK: Write (operator[]) by thread T2 {{.*}} at {{.*}}fast_path.cpp:[[#WRITE_LINE:]]:{{[0-9]+}} in put(int):
// CHECK-NEXT: #0 put(int) {{.*}}fast_path.cpp:[[#WRITE_LINE]]
// CHECK: Write (operator[]) in progress in thread T1 {{.*}} at {{.*}}fast_path.cpp:[[#WRITE_LINE]]:{{[0-9]+}} in put(int):
// CHECK: #3 put(int) {{.*}}fast_path.cpp:[[#WRITE_LINE]]
// NOCOPY-NOT: R_X86_64_COPY {{.*}}mapguard
// NOCOPY-NOT: R_X86_64_COPY {{.*}}_ZN8mapguard
//
// A fast path that cannot be read, or is not bitcode, is one clear error.
// RUN: not %clangxx_raw -I%S/../Inputs -fplugin=%plugin -fplugin-arg-mapguard-fast-path=%t.missing -c %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: echo "not bitcode" > %t.txt
// RUN: not %clangxx_raw -I%S/../Inputs -fplugin=%plugin -fplugin-arg-mapguard-fast-path=%t.txt -c %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOTBC
// MISSING: error: mapguard: cannot read the inlined fast path '{{.*}}.missing' (it ships next to mapguard.so; fast-path=off calls the runtime instead)
// MISSING-NOT: error:
// NOTBC: error: mapguard: '{{.*}}.txt' is not LLVM bitcode (expected mapguard_fast_path.clang{{[0-9]+}}.bc)
// NOTBC-NOT: error:
#include <cstdio>
#include <unordered_map>

#include "test_sync.h"

std::unordered_map<int, int, mg_test::BlockingHash> shared_map;

__attribute__((noinline)) void put(int k) { shared_map[k] = k; }

int main() {
  // One thread, many owned accesses: every begin and end takes the fast path.
  std::unordered_map<int, long> owned;
  long sum = 0;
  for (int i = 0; i < 100000; i++) owned[i % 100] += i;
  for (int i = 0; i < 100000; i++) sum += owned.count(i % 200);
  std::fprintf(stderr, "owned: %ld\n", sum);
  mg_test::race([] { put(mg_test::kBlockKey); }, [] { put(3); });
}
