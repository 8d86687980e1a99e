// A [[clang::musttail]] call on a map: nothing may run between the call and
// the return, so the access is recorded as a point just before the call. The
// module stays valid (verify_ir.test checks every e2e input), the program
// keeps its tail call, and a race on the map is still reported.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE
// RACY: fatal error: unsynchronized map read and map write [map-read-write]
// RACY: Read (count) by thread
// RACY: Previous Write (std::swap) by thread
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

std::map<int, int> a, b;
std::atomic<int> g_step{0};
bool g_racy = false;
// Clean: the flag is a release/acquire pair. Racy: relaxed, which orders nothing.
std::memory_order racy_flag_order() { return g_racy ? std::memory_order_relaxed : std::memory_order_release; }

// Same signature as std::swap(map&, map&): a guaranteed tail call.
__attribute__((noinline)) void swap_maps(std::map<int, int> &x, std::map<int, int> &y) {
  [[clang::musttail]] return std::swap(x, y);
}

int main(int argc, char **argv) {
  g_racy = argc > 1 && !strcmp(argv[1], "racy");
  a[1] = 1;
  std::thread t1([] {
    swap_maps(a, b);
    g_step.store(1, racy_flag_order());
  });
  std::thread t2([&] {
    while (g_step.load(g_racy ? std::memory_order_relaxed : std::memory_order_acquire) < 1)
      std::this_thread::yield();
    std::printf("%zu\n", b.count(1));
  });
  t1.join();
  t2.join();
  std::printf("DONE\n");
  return 0;
}
