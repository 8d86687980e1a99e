// The previous access's stack in an unsynchronized-access report is the
// stack its thread had at that access. A thread that records the same stack
// over and over (here: a read under a mutex, 1000 times, each in a new epoch
// since every unlock ticks its clock) compares it with the one it recorded
// last instead of storing it again (StackDepotPutHistory, runtime/
// mg_stack.cpp). T1's last read comes from another caller: the report must
// show that caller, not the one it recorded 1000 times before.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %expect_exit 66 %t.O0 2>&1 | FileCheck %s
// RUN: %expect_exit 66 %t.O2 2>&1 | FileCheck %s
// CHECK: fatal error: unsynchronized map read and map write
// CHECK: Write (operator[]) by thread T2 {{.*}} at {{.*}}history_stacks.cpp:[[#@LINE+31]]
// CHECK: Previous Read (count) by thread T1 at {{.*}}history_stacks.cpp:[[#@LINE+11]]:{{[0-9]+}} in lookup
// CHECK-NEXT: #0 lookup({{.*}}) {{.*}}history_stacks.cpp:[[#@LINE+10]]
// CHECK-NEXT: #1 from_second_caller({{.*}}) {{.*}}history_stacks.cpp:[[#@LINE+14]]
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

std::map<int, int> m;
std::mutex mu;

__attribute__((noinline)) int lookup(int k) { return int(m.count(k)); }
__attribute__((noinline)) int from_first_caller(int k) {
  std::lock_guard<std::mutex> g(mu);
  return lookup(k) + 1;
}
__attribute__((noinline)) int from_second_caller(int k) { return lookup(k) + 2; }

int main() {
  m[1] = 1;
  // Relaxed: no happens-before between T1's reads and T2's write.
  std::atomic<bool> reads_done{false};
  volatile int sink = 0;
  std::thread t1([&] {
    for (int i = 0; i < 1000; i++) sink = sink + from_first_caller(1);
    sink = sink + from_second_caller(1);
    reads_done.store(true, std::memory_order_relaxed);
  });
  std::thread t2([&] {
    while (!reads_done.load(std::memory_order_relaxed)) std::this_thread::yield();
    m[2] = 2;
  });
  t1.join();
  t2.join();
  return sink == 0;
}
