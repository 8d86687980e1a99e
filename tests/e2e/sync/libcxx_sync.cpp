// Hand-offs whose synchronizing side runs inside prebuilt libc++.so
// (-stdlib=libc++): std::call_once (the flag is marked complete there) and
// std::barrier (arrivals meet there), with latch, counting_semaphore and
// atomic::wait beside them. Correct hand-offs are quiet (before
// runtime/mg_libcxx.cpp, call_once and barrier ones were reported in most
// runs); each racy twin, an access the hand-off does not order, is reported.
// RUN: %clangxx_mg -stdlib=libc++ -O0 %s -o %t.O0
// RUN: %clangxx_mg -stdlib=libc++ -O2 %s -o %t.O2
// RUN: %t.O0 once 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 once 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O0 latch 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 latch 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O0 barrier 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 barrier 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O0 barrier-rounds 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 barrier-rounds 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O0 semaphore 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 semaphore 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O0 wait 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 wait 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy-once 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy-once 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O0 racy-barrier 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy-barrier 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy-latch 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE
// RACY: fatal error: {{concurrent|unsynchronized}} map
// RACY: SUMMARY: mapguard
#include <atomic>
#include <barrier>
#include <cstdio>
#include <cstring>
#include <latch>
#include <map>
#include <mutex>
#include <semaphore>
#include <thread>

std::map<int, int> g;
std::once_flag once;

void fill() {
  for (int i = 0; i < 100; i++) g[i] = i;
}

int main(int argc, char **argv) {
  const char *m = argv[1];
  if (!std::strcmp(m, "once")) {
    // Whoever runs fill(), both read after call_once returns.
    auto use = [] {
      std::call_once(once, fill);
      (void)g.size();
    };
    std::thread a(use), b(use);
    a.join();
    b.join();
  } else if (!std::strcmp(m, "racy-once")) {
    std::thread a([] { std::call_once(once, fill); });
    std::thread b([] { (void)g.size(); });  // never calls call_once
    a.join();
    b.join();
  } else if (!std::strcmp(m, "latch") || !std::strcmp(m, "racy-latch")) {
    bool racy = m[0] == 'r';
    std::latch done(1);
    std::thread a([&] {
      if (!racy) g[1] = 1;
      done.count_down();
      if (racy) g[1] = 1;  // after the hand-off: unordered with b's write
    });
    std::thread b([&] {
      done.wait();
      g[2] = 2;
    });
    a.join();
    b.join();
  } else if (!std::strcmp(m, "barrier") || !std::strcmp(m, "racy-barrier")) {
    // Quiet: one thread writes before each phase, all read after it, and
    // the writer changes. Racy: two threads write after the same phase.
    bool racy = m[0] == 'r';
    std::barrier sync(3);
    auto work = [&](int id) {
      for (int writer = 1; writer <= 3; writer++) {
        if (!racy && id == writer) g[id] = id;
        sync.arrive_and_wait();
        if (racy && id != writer) g[id] = id;
        else (void)g.size();
        sync.arrive_and_wait();
      }
    };
    std::thread a(work, 1), b(work, 2), c(work, 3);
    a.join();
    b.join();
    c.join();
  } else if (!std::strcmp(m, "barrier-rounds")) {
    // Round k's writer changes hands every phase.
    std::barrier sync(2);
    auto work = [&](int id) {
      for (int round = 0; round < 50; round++) {
        if (round % 2 == id) g[round] = id;
        sync.arrive_and_wait();
      }
    };
    std::thread a(work, 0), b(work, 1);
    a.join();
    b.join();
  } else if (!std::strcmp(m, "semaphore")) {
    std::binary_semaphore ready(0);
    std::thread a([&] {
      g[1] = 1;
      ready.release();
    });
    std::thread b([&] {
      ready.acquire();
      g[2] = 2;
    });
    a.join();
    b.join();
  } else if (!std::strcmp(m, "wait")) {
    std::atomic<int> flag{0};
    std::thread a([&] {
      g[1] = 1;
      flag.store(1, std::memory_order_release);
      flag.notify_one();
    });
    std::thread b([&] {
      flag.wait(0, std::memory_order_acquire);
      g[2] = 2;
    });
    a.join();
    b.join();
  }
  std::printf("DONE\n");
}
