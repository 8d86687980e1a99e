// A map's owner is never interrupted when another thread takes the map over:
// its sleeping system calls are not cut short (no EINTR: usleep, poll,
// nanosleep, select, epoll_wait all run their full time), a daemon whose
// threads block every signal makes its first reads without stalling, and a
// thread waiting in sigtimedwait for any signal never receives one from mapguard.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: for m in syscalls daemon; do %t.O0 $m 2>&1 | FileCheck %s -DMODE=$m && %t.O2 $m 2>&1 | FileCheck %s -DMODE=$m || exit 1; done
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 syscalls 2>&1 | FileCheck %s -DMODE=syscalls
// CHECK-NOT: fatal error
// CHECK-NOT: FAILED
// CHECK: DONE [[MODE]]
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>
#include <unordered_map>
#include <vector>

using Clock = std::chrono::steady_clock;
static double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// The owner builds a map, publishes it, then sleeps in `call` for 200 ms
// while another thread reads the map for the first time.
template <typename Call>
void check_sleep(const char *name, Call call) {
  std::unordered_map<int, int> *m = nullptr;
  std::atomic<std::unordered_map<int, int> *> published{nullptr};
  std::atomic<bool> taken{false};
  std::thread owner([&] {
    m = new std::unordered_map<int, int>;
    for (int i = 0; i < 10; i++) (*m)[i] = i;
    published.store(m, std::memory_order_release);
    auto start = Clock::now();
    int rc = call();
    double ms = ms_since(start);
    if (rc < 0 || ms < 190) std::printf("FAILED %s: rc=%d errno=%s after %.0f ms\n", name, rc, strerror(errno), ms);
    else std::printf("%s slept %s\n", name, taken.load() ? "through a takeover" : "(no takeover?)");
  });
  std::thread taker([&] {
    std::unordered_map<int, int> *p;
    while (!(p = published.load(std::memory_order_acquire))) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    (void)p->count(3);  // the first access by a second thread
    taken = true;
  });
  owner.join();
  taker.join();
  delete m;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "syscalls";
  if (!strcmp(mode, "syscalls")) {
    check_sleep("usleep", [] { return usleep(200000); });
    check_sleep("nanosleep", [] {
      struct timespec ts = {0, 200000000};
      return nanosleep(&ts, nullptr);
    });
    check_sleep("poll", [] { return poll(nullptr, 0, 200); });
    check_sleep("select", [] {
      struct timeval tv = {0, 200000};
      return select(0, nullptr, nullptr, nullptr, &tv);
    });
    check_sleep("epoll_wait", [] {
      int ep = epoll_create1(0);
      struct epoll_event ev;
      int rc = epoll_wait(ep, &ev, 1, 200);
      close(ep);
      return rc;
    });
  } else {
    // The daemon pattern: every signal blocked before any thread starts; one
    // thread waits for signals with sigtimedwait.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    std::atomic<int> got{0};
    std::map<int, int> *waiter_map = nullptr;  // built by the waiter: it owns it
    std::atomic<bool> waiter_built{false};
    std::thread waiter([&] {
      waiter_map = new std::map<int, int>;
      for (int i = 0; i < 10; i++) (*waiter_map)[i] = i;
      waiter_built.store(true, std::memory_order_release);
      struct timespec ts = {1, 0};
      int sig = sigtimedwait(&all, nullptr, &ts);
      if (sig > 0) {
        got = sig;
        std::printf("FAILED: sigtimedwait received signal %d\n", sig);
      }
    });
    constexpr int kMaps = 5;
    std::vector<std::map<int, int> *> maps(kMaps);  // built by the owner thread
    std::atomic<bool> built{false};
    std::atomic<bool> done{false};
    std::thread owner([&] {
      for (auto &m : maps) {
        m = new std::map<int, int>;
        for (int i = 0; i < 100; i++) (*m)[i] = i;
      }
      built.store(true, std::memory_order_release);
      long s = 0;
      while (!done.load(std::memory_order_acquire))
        for (auto *m : maps) s += long(m->count(7));  // the owner keeps using them
      (void)s;
    });
    while (!built.load(std::memory_order_acquire) || !waiter_built.load(std::memory_order_acquire))
      std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the waiter is waiting
    auto start = Clock::now();
    long s = long(waiter_map->count(3));
    for (auto *m : maps) s += long(m->count(3));  // five first reads
    double ms = ms_since(start);
    done.store(true, std::memory_order_release);
    owner.join();
    if (ms > 250) std::printf("FAILED: five first reads took %.0f ms\n", ms);
    else std::printf("first reads fast\n");
    waiter.join();
    for (auto *m : maps) delete m;
    delete waiter_map;
    (void)s;
  }
  std::printf("DONE %s\n", mode);
  return 0;
}
