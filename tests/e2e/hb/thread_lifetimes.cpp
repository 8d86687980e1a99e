// Thread lifetimes under happens-before (detect=hb).
//
// joined: three creators each start and join short threads one at a time,
// handing each a small map (a thread-per-request server). Each joined
// thread's slot is taken over by its creator's next thread, so memory stays
// flat however many threads come and go (before: every clock grew with every
// thread ever created, 120 MB at 3 x 2000 threads and 10 GB in fork_busy).
//
// detached: thread per task, detached, one at a time, each handing its result
// back through a release flag and destroying its own map after it. The
// creator learned everything the thread published, so the next thread takes
// its slot (before: detached threads' slots were never reused, 64 MB at 4000
// threads).
//
// reused-pthread: a detached thread writes a map and exits; glibc gives its
// descriptor, hence its pthread_t, to the next thread. Joining that thread
// says nothing about the detached one, so main's read of the map is still a
// race (before: the join acquired the detached thread's exit release, and the
// race was missed). Its clean twin orders the write with a release flag.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O2 joined 1500 2>&1 | FileCheck %s --check-prefix=JOINED
// RUN: %t.O2 detached 3000 2>&1 | FileCheck %s --check-prefix=DETACHED
// RUN: %t.O0 detached 3000 2>&1 | FileCheck %s --check-prefix=DETACHED
// RUN: %t.O0 reused-pthread clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 reused-pthread clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 reused-pthread racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 reused-pthread racy 2>&1 | FileCheck %s --check-prefix=RACY
// JOINED-NOT: fatal error
// JOINED: DONE threads=4500 rss-flat=1
// DETACHED-NOT: fatal error
// DETACHED: DONE threads=3000 rss-flat=1
// CLEAN-NOT: fatal error
// CLEAN: DONE reused=1
// RACY: fatal error: unsynchronized map read and map write
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>
#include <unordered_map>
#include <vector>

#include "test_sync.h"

using mg_test::rss_kb;

static int joined(int per_creator) {
  std::atomic<long> rss_warm{0};
  std::atomic<int> warmed{0};
  std::vector<std::thread> creators;
  for (int c = 0; c < 3; c++)
    creators.emplace_back([&, c] {
      long s = 0;
      for (int i = 0; i < per_creator; i++) {
        std::map<int, int> request;
        for (int k = 0; k < 4; k++) request[k] = c + i;
        std::thread t([&] { s += request.count(2) + request[3]; });
        t.join();
        if (i == per_creator / 10 && warmed.fetch_add(1) == 2) rss_warm = rss_kb();
      }
      if (s < 0) std::printf("impossible\n");
    });
  for (auto &t : creators) t.join();
  long grew = rss_kb() - rss_warm.load();
  std::printf("rss grew by %ld KB after warm-up\n", grew);
  std::printf("DONE threads=%d rss-flat=%d\n", 3 * per_creator, grew < 8 * 1024);
  return 0;
}

static int detached(int n) {
  long rss_warm = 0, total = 0;
  for (int i = 0; i < n; i++) {
    std::atomic<int> done{0};
    long result = 0;
    std::thread([&, i] {
      std::unordered_map<int, int> task;
      for (int k = 0; k < 4; k++) task[k] = i + k;
      result = task[3];
      done.store(1, std::memory_order_release);
    }).detach();
    while (!done.load(std::memory_order_acquire)) std::this_thread::yield();
    total += result;
    if (i == n / 10) rss_warm = rss_kb();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the last one exits
  long grew = rss_kb() - rss_warm;
  std::printf("rss grew by %ld KB after warm-up (%ld)\n", grew, total);
  std::printf("DONE threads=%d rss-flat=%d\n", n, grew < 8 * 1024);
  return 0;
}

std::unordered_map<int, int> g_map;
std::atomic<unsigned long> g_first_id{0};
std::atomic<int> g_first_tid{0};
std::atomic<bool> g_written{false};
bool g_clean;

static void *first_thread(void *) {
  g_map[1] = 1;
  if (g_clean) g_written.store(true, std::memory_order_release);
  g_first_id.store((unsigned long)pthread_self(), std::memory_order_relaxed);
  g_first_tid.store(int(syscall(SYS_gettid)), std::memory_order_relaxed);
  return nullptr;
}

static void *second_thread(void *) { return nullptr; }

static int reused_pthread(bool clean) {
  g_clean = clean;
  pthread_attr_t detached;
  pthread_attr_init(&detached);
  pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
  pthread_t first, second;
  if (pthread_create(&first, &detached, first_thread, nullptr)) return 2;
  // Wait, with no synchronization, until the detached thread is gone: its
  // kernel thread no longer exists, and then a little longer for glibc to put
  // its stack back in the cache.
  while (!g_first_tid.load(std::memory_order_relaxed))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  int tid = g_first_tid.load(std::memory_order_relaxed);
  while (syscall(SYS_tgkill, getpid(), tid, 0) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (pthread_create(&second, nullptr, second_thread, nullptr)) return 2;
  pthread_join(second, nullptr);
  bool reused = (unsigned long)second == g_first_id.load(std::memory_order_relaxed);
  if (clean)
    while (!g_written.load(std::memory_order_acquire)) {
    }
  std::printf("main reads the map: %zu\n", g_map.count(1));
  std::printf("DONE reused=%d\n", int(reused));
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 2 && !std::strcmp(argv[1], "joined")) return joined(std::atoi(argv[2]));
  if (argc > 2 && !std::strcmp(argv[1], "detached")) return detached(std::atoi(argv[2]));
  if (argc > 2 && !std::strcmp(argv[1], "reused-pthread"))
    return reused_pthread(!std::strcmp(argv[2], "clean"));
  std::fprintf(stderr, "usage: %s joined N | reused-pthread clean|racy\n", argv[0]);
  return 2;
}
