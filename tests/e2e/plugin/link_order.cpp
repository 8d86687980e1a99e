// Link order must not decide the verdict. A plain object (no plugin) and an
// instrumented one emit the same inline functions; with the plain object
// first the linker keeps its copies, and before the plugin gave instrumented
// copies names of their own (pass/InlineCopies.cpp) a race through an inline
// put() was missed and a release/acquire or promise/future hand-off through
// inline code was reported as unsynchronized. Both orders, -O0 and -O2.
// RUN: %clangxx_plain -O0 -I%S/Inputs -c %S/Inputs/link_order_plain.cpp -o %t.plain.O0.o
// RUN: %clangxx_plain -O2 -I%S/Inputs -c %S/Inputs/link_order_plain.cpp -o %t.plain.O2.o
// RUN: %clangxx_mg_nog -g -O0 -c %s -o %t.inst.O0.o
// RUN: %clangxx_mg_nog -g -O2 -c %s -o %t.inst.O2.o
// RUN: %clangxx_raw %t.plain.O0.o %t.inst.O0.o %{mglink} -o %t.pf.O0
// RUN: %clangxx_raw %t.inst.O0.o %t.plain.O0.o %{mglink} -o %t.if.O0
// RUN: %clangxx_raw %t.plain.O2.o %t.inst.O2.o %{mglink} -o %t.pf.O2
// RUN: %clangxx_raw %t.inst.O2.o %t.plain.O2.o %{mglink} -o %t.if.O2
// RUN: %expect_exit 66 %t.pf.O0 race 2>&1 | FileCheck %s --check-prefix=RACE
// RUN: %expect_exit 66 %t.if.O0 race 2>&1 | FileCheck %s --check-prefix=RACE
// RUN: %expect_exit 66 %t.pf.O2 race 2>&1 | FileCheck %s --check-prefix=RACE
// RUN: %expect_exit 66 %t.if.O2 race 2>&1 | FileCheck %s --check-prefix=RACE
// RUN: %t.pf.O0 flag 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.if.O0 flag 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.pf.O2 flag 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.if.O2 flag 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.pf.O0 future 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.if.O0 future 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.pf.O2 future 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.if.O2 future 2>&1 | FileCheck %s --check-prefix=CLEAN
// print_stats tells the two orders apart (runtime/mg_inline_copies.cpp):
// plain first, the original names of put() and the others reach the plain
// copies (what a call through a function pointer would run); instrumented
// first, none does.
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t.pf.O0 flag 2>&1 | FileCheck %s --check-prefix=COPIES-PF
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t.if.O0 flag 2>&1 | FileCheck %s --check-prefix=COPIES-IF
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json %t.pf.O0 flag 2>&1 | FileCheck %s --check-prefix=COPIES-JSON
// COPIES-PF: inline functions with an instrumented copy: {{[1-9][0-9]*}}; {{[1-9][0-9]*}} of them reached through their address in a plain object's copy
// COPIES-PF-DAG: {{^  }}put(std::unordered_map<
// COPIES-PF-DAG: {{^  }}Flag::get()
// COPIES-IF: inline functions with an instrumented copy: {{[1-9][0-9]*}}; 0 of them reached through their address in a plain object's copy{{$}}
// COPIES-JSON: {"mapguard_inline_copies":{"instrumented":{{[1-9][0-9]*}},"plain_by_address":{{[1-9][0-9]*}},"names":[
// The report names put() as the user wrote it, not its instrumented copy:
// RACE: fatal error: concurrent map writes
// RACE: Write (operator[]) by thread {{.*}} in put(
// RACE-NOT: mapguard)
// RACE: SUMMARY:
// CLEAN-NOT: fatal error
// CLEAN: DONE
#include <cstdio>
#include <cstring>
#include <thread>

#include "link_order.h"

Table g;
Flag flag;

int main(int argc, char **argv) {
  for (int i = 100; i < 164; i++) g[i] = i;  // past libstdc++'s small-size scan: find hashes
  if (!std::strcmp(argv[1], "race")) {
    mg_test::race([] { put(g, mg_test::kBlockKey); }, [] { put(g, 3); });
  } else if (!std::strcmp(argv[1], "flag")) {
    std::thread a([] { g[1] = 1; flag.set(); });
    std::thread b([] {
      while (!flag.get()) std::this_thread::yield();
      g[2] = 2;
    });
    a.join();
    b.join();
  } else {
    std::promise<void> p;
    std::future<void> f = p.get_future();
    std::thread a([&] { g[1] = 1; hand_over(p); });
    std::thread b([&] { wait_for(f); g[2] = 2; });
    a.join();
    b.join();
  }
  if (argc > 2) plain_side(g, flag);  // keeps the plain object's copies referenced
  std::printf("DONE\n");
}
