// std::invoke(&Map::member, m, args...) with the member named in place is
// classified like m.member(args...): size() reads, clear() writes.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %clangxx_mg -stdlib=libc++ -O2 %s -o %t.cxx
// RUN: %t.cxx clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.cxx racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE
// RACY: fatal error: unsynchronized map read and map write [map-read-write]
// RACY: Map: std::map<int, int> 'm' at
// RACY: Read (std::invoke (size)) by thread
// RACY: Previous Write (std::invoke (clear)) by thread
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <thread>

std::map<int, int> m;
std::atomic<int> step{0};
bool racy = false;

int main(int argc, char **argv) {
  racy = argc > 1 && !strcmp(argv[1], "racy");
  m[1] = 1;
  std::thread a([] {
    std::invoke(&std::map<int, int>::clear, m);
    step.store(1, racy ? std::memory_order_relaxed : std::memory_order_release);
  });
  std::thread b([] {
    while (!step.load(racy ? std::memory_order_relaxed : std::memory_order_acquire)) std::this_thread::yield();
    std::printf("%zu\n", std::invoke(&std::map<int, int>::size, m));
  });
  a.join();
  b.join();
  std::printf("DONE\n");
}
