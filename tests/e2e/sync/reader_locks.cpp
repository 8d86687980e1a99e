// Reader locks order readers with writers, never readers with each other
// (C++: unlock_shared synchronizes with a later lock(), not a later
// lock_shared()). operator[] under a std::shared_lock in one thread and a
// read or write under a shared_lock in another are reported in every order,
// even when the two holds never overlap. The correct pairs (a write under
// the exclusive lock, reads under shared locks) are quiet.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: for m in write-then-read read-then-write write-then-write; do \
// RUN:   %expect_exit 66 %t.O0 $m 2>&1 | FileCheck %s --check-prefix=RACY && \
// RUN:   %expect_exit 66 %t.O2 $m 2>&1 | FileCheck %s --check-prefix=RACY || exit 1; done
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RACY: fatal error: unsynchronized map {{read and map write|writes}}
// RACY: Hint: {{.*}}shared (reader) lock
// CLEAN-NOT: fatal error
// CLEAN: DONE clean
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>

std::shared_mutex g_mu;
std::map<std::string, int> g_cache;
std::atomic<int> g_step{0};  // relaxed: sequences the threads in time, orders nothing

__attribute__((noinline)) void wait_step(int s) {
  while (g_step.load(std::memory_order_relaxed) < s) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "clean";
  {
    std::unique_lock<std::shared_mutex> lock(g_mu);
    g_cache["a"] = 1;
  }
  auto reader_write = [] {  // the classic bug: operator[] under a reader lock
    std::shared_lock<std::shared_mutex> lock(g_mu);
    g_cache["b"] = 2;
  };
  auto reader_read = [] {
    std::shared_lock<std::shared_mutex> lock(g_mu);
    (void)g_cache.count("a");
  };
  auto writer_write = [] {
    std::unique_lock<std::shared_mutex> lock(g_mu);
    g_cache["c"] = 3;
  };
  std::function<void()> first, second;
  if (mode == "write-then-read") first = reader_write, second = reader_read;
  else if (mode == "read-then-write") first = reader_read, second = reader_write;
  else if (mode == "write-then-write") first = reader_write, second = reader_write;
  else first = reader_read, second = writer_write;
  std::thread a([&] {
    first();
    g_step.store(1, std::memory_order_relaxed);
  });
  std::thread b([&] {
    wait_step(1);
    second();
    if (mode == "clean") reader_read();
  });
  a.join();
  b.join();
  std::printf("DONE %s\n", mode.c_str());
  return 0;
}
