// A map member called through a member-function pointer is the member's
// access: (m.*pm)(), std::bind(pm, &m)(), std::function<...> f = pm,
// std::mem_fn(pm)(m) and std::invoke(pm, m) with the pointer in a variable.
// The last four call it inside the library's invoke machinery; the report
// still names the user's line and the map.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %clangxx_mg -stdlib=libc++ -O2 %s -o %t.cxxO2
// RUN: %t.O0 0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 0 racy 2>&1 | FileCheck %s --check-prefixes=RACY,PM
// RUN: %t.O0 1 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 1 racy 2>&1 | FileCheck %s --check-prefixes=RACY,BIND
// RUN: %t.O0 2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 2 racy 2>&1 | FileCheck %s --check-prefixes=RACY,FUNCTION
// RUN: %t.O0 3 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 3 racy 2>&1 | FileCheck %s --check-prefixes=RACY,MEMFN
// RUN: %t.O0 4 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 4 racy 2>&1 | FileCheck %s --check-prefixes=RACY,INVOKE
// RUN: %t.O2 0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O2 0 racy 2>&1 | FileCheck %s --check-prefixes=RACY,PM
// RUN: %t.O2 1 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O2 1 racy 2>&1 | FileCheck %s --check-prefixes=RACY,BIND
// RUN: %t.O2 2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O2 2 racy 2>&1 | FileCheck %s --check-prefixes=RACY,FUNCTION
// RUN: %t.O2 3 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O2 3 racy 2>&1 | FileCheck %s --check-prefixes=RACY,MEMFN
// RUN: %t.O2 4 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O2 4 racy 2>&1 | FileCheck %s --check-prefixes=RACY,INVOKE
// RUN: %t.cxxO2 0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.cxxO2 0 racy 2>&1 | FileCheck %s --check-prefixes=RACY,PM
// RUN: %t.cxxO2 1 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.cxxO2 1 racy 2>&1 | FileCheck %s --check-prefixes=RACY,BIND
// RUN: %t.cxxO2 2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.cxxO2 2 racy 2>&1 | FileCheck %s --check-prefixes=RACY,FUNCTION
// RUN: %t.cxxO2 3 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.cxxO2 3 racy 2>&1 | FileCheck %s --check-prefixes=RACY,MEMFN
// RUN: %t.cxxO2 4 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.cxxO2 4 racy 2>&1 | FileCheck %s --check-prefixes=RACY,INVOKE
// CLEAN-NOT: fatal error
// CLEAN: DONE
// RACY: fatal error: unsynchronized map read and map write [map-read-write]
// RACY: Map: std::map<int, int> 'm' at
// PM: Read (size via member pointer) by thread T2 {{.*}} at {{.*}}member_pointer.cpp:[[#@LINE+49]]:
// BIND: Read (size via member pointer) by thread T2 {{.*}} at {{.*}}member_pointer.cpp:[[#@LINE+49]]:
// FUNCTION: Read (size via member pointer) by thread T2 {{.*}} at {{.*}}member_pointer.cpp:[[#@LINE+49]]:
// MEMFN: Read (size via member pointer) by thread T2 {{.*}} at {{.*}}member_pointer.cpp:[[#@LINE+49]]:
// INVOKE: Read (size via member pointer) by thread T2 {{.*}} at {{.*}}member_pointer.cpp:[[#@LINE+49]]:
// PM: Previous Write (clear via member pointer) by thread T1 at {{.*}}member_pointer.cpp:[[#@LINE+33]]:
// BIND: Previous Write (clear via member pointer) by thread T1 at {{.*}}member_pointer.cpp:[[#@LINE+33]]:
// FUNCTION: Previous Write (clear via member pointer) by thread T1 at {{.*}}member_pointer.cpp:[[#@LINE+33]]:
// MEMFN: Previous Write (clear via member pointer) by thread T1 at {{.*}}member_pointer.cpp:[[#@LINE+33]]:
// INVOKE: Previous Write (clear via member pointer) by thread T1 at {{.*}}member_pointer.cpp:[[#@LINE+33]]:
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <thread>

using M = std::map<int, int>;
M m;
std::atomic<int> step{0};
bool racy;
// In variables, so no call is resolved at compile time.
void (M::*clear_p)() = &M::clear;
size_t (M::*size_p)() const = &M::size;

// Another class's member of the same type through a pointer: not a map access.
struct Counter {
  size_t n = 0;
  size_t size() const { return n; }
};
size_t (Counter::*counter_p)() const = &Counter::size;

int main(int argc, char **argv) {
  int form = atoi(argv[1]);
  racy = !strcmp(argv[2], "racy");
  m[1] = 1;
  std::thread a([form] {
    if (form == 0) (m.*clear_p)();
    else if (form == 1) std::bind(clear_p, &m)();
    else if (form == 2) { std::function<void(M &)> f = clear_p; f(m); }
    else if (form == 3) std::mem_fn(clear_p)(m);
    else std::invoke(clear_p, m);
    step.store(1, racy ? std::memory_order_relaxed : std::memory_order_release);
  });
  std::thread b([form] {
    Counter c;
    size_t n = (c.*counter_p)();
    while (!step.load(racy ? std::memory_order_relaxed : std::memory_order_acquire)) std::this_thread::yield();
    if (form == 0) n += (m.*size_p)();
    else if (form == 1) n += std::bind(size_p, &m)();
    else if (form == 2) { std::function<size_t(const M &)> f = size_p; n += f(m); }
    else if (form == 3) n += std::mem_fn(size_p)(m);
    else n += std::invoke(size_p, m);
    std::printf("%zu\n", n);
  });
  a.join();
  b.join();
  std::printf("DONE\n");
}
