// oneTBB (Debian's prebuilt libtbb) hands tasks over inside the library:
// spawn and steal, and the wait that returns once a wait_context reaches
// zero. The catalogue's oneTBB lines (pass/mapguard-catalogue.txt) give those
// edges: a spawn releases on the task, the task's execute() acquires on it at
// entry, wait_context::release releases, and wait/execute_and_wait acquire.
// Before them, the quiet programs below were reported in about 1 run in 5.
// Racy twins force two threads into the loop or group (each task waits,
// with relaxed atomics only, until both are in) and must be reported.
// RUN: %clangxx_mg -O0 %s -ltbb -o %t.O0
// RUN: %clangxx_mg -O2 %s -ltbb -o %t.O2
// RUN: for i in 1 2 3 4 5; do for m in fill-then-read tasks-write task-group reduce; do %t.O0 $m; %t.O2 $m; done; done 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy-for 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy-for 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O0 racy-group 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy-group 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE
// RACY: fatal error: {{concurrent|unsynchronized}} map writes
// RACY: SUMMARY: mapguard
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>
#include <tbb/spin_mutex.h>
#include <tbb/task_group.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

std::map<int, int> g;
std::atomic<int> g_in{0};

// Both tasks of a racy twin are in before either writes (relaxed: no edge).
void wait_for_partner() {
  g_in.fetch_add(1, std::memory_order_relaxed);
  for (int i = 0; i < 2000 && g_in.load(std::memory_order_relaxed) < 2; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

int main(int argc, char **argv) {
  const char *m = argv[1];
  if (!std::strcmp(m, "fill-then-read")) {
    // The caller writes before each loop; the loop's tasks read.
    for (int round = 0; round < 50; round++) {
      g[round] = round;
      tbb::parallel_for(0, 64, [](int i) { volatile size_t n = g.count(i); (void)n; });
    }
  } else if (!std::strcmp(m, "tasks-write")) {
    // Tasks write under a spin_mutex; the caller reads after the loop.
    tbb::spin_mutex mu;
    for (int round = 0; round < 20; round++) {
      tbb::parallel_for(0, 64, [&](int i) {
        tbb::spin_mutex::scoped_lock lock(mu);
        g[i] = round;
      });
      volatile size_t n = g.size();
      (void)n;
    }
  } else if (!std::strcmp(m, "task-group")) {
    for (int round = 0; round < 20; round++) {
      g[-1] = round;
      tbb::task_group tg;
      for (int k = 0; k < 4; k++) tg.run([k] { volatile size_t n = g.count(k); (void)n; });
      tg.wait();
      g[-2] = round;
    }
  } else if (!std::strcmp(m, "reduce")) {
    for (int round = 0; round < 20; round++) {
      g[round] = round;
      long sum = tbb::parallel_reduce(
          tbb::blocked_range<int>(0, 64), 0L,
          [](const tbb::blocked_range<int> &r, long acc) {
            for (int i = r.begin(); i != r.end(); ++i) acc += long(g.count(i));
            return acc;
          },
          [](long a, long b) { return a + b; });
      g[-round - 1] = int(sum);
    }
  } else if (!std::strcmp(m, "racy-for")) {
    tbb::parallel_for(
        0, 2, [](int i) { wait_for_partner(); g[i] = i; }, tbb::simple_partitioner());
  } else if (!std::strcmp(m, "racy-group")) {
    tbb::task_group tg;
    for (int k = 0; k < 2; k++) tg.run([k] { wait_for_partner(); g[k] = k; });
    tg.wait();
  }
  std::printf("DONE\n");
}
