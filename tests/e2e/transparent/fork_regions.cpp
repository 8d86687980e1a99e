// fork() while other threads are between the steps of a map region: a
// reader or writer that has pushed its region but not yet counted it in the
// map's state word, or given its count back but not yet popped the region.
// The child must rebuild each such map's state from the one thread that
// exists there: no hang (a state word that underflowed into the frozen bit
// made the child wait forever) and no report (the parent's accesses all
// happened before the fork). Before the child rebuilt those state words,
// 18-23 of 100 children hung here.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 200 2>&1 | FileCheck %s
// RUN: %t.O2 200 2>&1 | FileCheck %s
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 200 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK-NOT: FAILED
// CHECK: DONE forks=200 hung=0 bad=0
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "test_sync.h"

std::unordered_map<int, int> g_read;  // read by every thread, never written in the parent
std::map<int, int> g_written;         // written under g_mu
std::mutex g_mu;
std::atomic<bool> g_stop{false};

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 200;
  for (int i = 0; i < 64; i++) g_read[i] = i;
  std::vector<std::thread> threads;
  std::atomic<long> sink{0};
  for (int t = 0; t < 3; t++)
    threads.emplace_back([&, t] {
      long s = 0;
      for (int i = 0; !g_stop.load(std::memory_order_relaxed); i++) {
        s += long(g_read.count(i & 63));
        if ((i & 7) == t) {
          std::lock_guard<std::mutex> lock(g_mu);
          g_written[i & 15] = i;
        }
      }
      sink += s;
    });
  int hung = 0, bad = 0;
  for (int f = 0; f < forks; f++) {
    pid_t pid = fork();
    if (pid == 0) {
      g_read[100] = 1;     // a write where other threads were reading
      g_written[100] = 1;  // and where they were writing
      _exit(g_read.size() == 65 && g_written.count(100) ? 0 : 1);
    }
    mg_test::wait_child(pid, f, 20000, &hung, &bad);
  }
  g_stop = true;
  for (auto &t : threads) t.join();
  std::printf("DONE forks=%d hung=%d bad=%d\n", forks, hung, bad);
}
