// fork() from a busy multithreaded program: other threads are inside map
// operations, lock and unlock mutexes, start threads and hand maps over at
// every moment. No child may hang on a runtime lock another thread held at
// the fork, and a child writing a map that parent threads had read (under a
// lock) is not reported: those threads do not exist in the child, and
// everything they did happened before the fork.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 50 2>&1 | FileCheck %s
// RUN: %t.O2 50 2>&1 | FileCheck %s
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 50 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK-NOT: FAILED
// CHECK: DONE forks=50 hung=0 bad=0
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "test_sync.h"

std::mutex g_mu;
std::shared_mutex g_rw;
std::map<int, int> g_shared;                 // read and written under g_mu
std::unordered_map<int, int> g_read_mostly;  // read under g_rw (shared)
std::atomic<bool> g_stop{false};

void busy(int id) {
  long s = 0;
  for (int i = 0; !g_stop.load(std::memory_order_relaxed); i++) {
    {
      std::lock_guard<std::mutex> lock(g_mu);
      g_shared[(id * 7 + i) % 64] = i;
      s += long(g_shared.count(i % 64));
    }
    {
      std::shared_lock<std::shared_mutex> lock(g_rw);
      s += long(g_read_mostly.count(i % 32));
    }
    // A map built here and handed to a short-lived thread (a takeover).
    std::unordered_map<int, int> local;
    for (int k = 0; k < 8; k++) local[k] = k;
    if (i % 16 == 0) {
      std::thread t([&] { s += long(local.count(3)); });
      t.join();
    }
  }
  (void)s;
}

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 50;
  for (int i = 0; i < 32; i++) g_read_mostly[i] = i;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; t++) threads.emplace_back(busy, t);
  int hung = 0, bad = 0;
  for (int f = 0; f < forks; f++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    pid_t pid = fork();
    if (pid == 0) {
      // The child: one thread. It uses the maps the parent's threads used
      // (without their locks: nobody else is here, and a lock a vanished
      // thread held would stay held) and starts a thread of its own.
      g_read_mostly[100] = 1;
      std::map<int, int> mine;
      mine[1] = 1;
      std::thread t([&] { mine[2] = 2; });
      t.join();
      mine[3] = 3;
      _exit(mine.size() == 3 ? 0 : 1);
    }
    mg_test::wait_child(pid, f, 10000, &hung, &bad);
  }
  g_stop = true;
  for (auto &t : threads) t.join();
  std::printf("DONE forks=%d hung=%d bad=%d\n", forks, hung, bad);
  return 0;
}
