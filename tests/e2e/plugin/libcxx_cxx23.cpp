// libc++'s C++23 members are constrained templates whose mangled names the
// demangler cannot read (std::map::insert_range): the plugin classifies the
// call from what the AST saw there, so the report names the user's line, the
// member and the map, not libc++'s <map>.
// REQUIRES: cxx23
// RUN: %clangxx_mg -std=c++23 -stdlib=libc++ -O0 %s -o %t.O0
// RUN: %clangxx_mg -std=c++23 -stdlib=libc++ -O2 %s -o %t.O2
// RUN: %expect_exit 66 %t.O0 2>&1 | FileCheck %s
// RUN: %expect_exit 66 %t.O2 2>&1 | FileCheck %s
// CHECK: fatal error: unsynchronized map read and map write [map-read-write]
// CHECK: Map: std::map<int, int> 'm' at
// CHECK: Read (count) by thread
// CHECK: Previous Write (insert_range) by thread T1 at {{.*}}libcxx_cxx23.cpp:[[#@LINE+13]]:{{[0-9]+}} in
#include <atomic>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

std::map<int, int> m;
std::atomic<int> step{0};

int main() {
  std::vector<std::pair<int, int>> v{{1, 1}, {2, 2}};
  std::thread a([&] {
    m.insert_range(v);
    step.store(1, std::memory_order_relaxed);
  });
  std::thread b([] {
    while (!step.load(std::memory_order_relaxed)) std::this_thread::yield();
    std::printf("%zu\n", m.count(1));
  });
  a.join();
  b.join();
}
