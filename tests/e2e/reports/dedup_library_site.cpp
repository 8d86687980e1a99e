// dedup=1 with halt_on_error=0 keeps one report per pair of source lines as
// the report prints them. A map member called by the library (std::bind
// with a member pointer) has one site inside <functional> for every user
// line that calls through it: two user lines are still two reports, and the
// same line again is still a duplicate.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: env MAPGUARD_OPTIONS=halt_on_error=0:report_wait_ms=200 %expect_exit 66 %t 2>&1 | FileCheck %s
// CHECK: Read (size via member pointer) by thread T2 {{.*}} at {{.*}}dedup_library_site.cpp:[[#@LINE+28]]:
// CHECK: Previous Write (clear via member pointer) by thread T1 at {{.*}}dedup_library_site.cpp:[[#@LINE+20]]:
// CHECK: Read (size via member pointer) by thread T2 {{.*}} at {{.*}}dedup_library_site.cpp:[[#@LINE+27]]:
// CHECK: Previous Write (clear via member pointer) by thread T1 at {{.*}}dedup_library_site.cpp:[[#@LINE+18]]:
// CHECK-NOT: fatal error
// CHECK: DONE 0
#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <thread>

using M = std::map<int, int>;
M m;
std::atomic<int> step{0};
void (M::*clear_p)() = &M::clear;
size_t (M::*size_p)() const = &M::size;

int main() {
  m[1] = 1;
  std::thread a([] {
    std::bind(clear_p, &m)();
    step.store(1, std::memory_order_relaxed);  // no release: the reads below race
  });
  std::thread b([] {
    while (!step.load(std::memory_order_relaxed)) std::this_thread::yield();
    size_t n = 0;
    for (int i = 0; i < 2; i++) {  // the second time round: duplicates
      n += std::bind(size_p, &m)();
      n += std::bind(size_p, &m)();
    }
    std::printf("DONE %zu\n", n);
  });
  a.join();
  b.join();
}
