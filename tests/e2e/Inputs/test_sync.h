// Helpers that force the interleaving a racy test needs, so it fails the
// same way on every run. They use relaxed atomics and sleeps only: they make
// two threads overlap without ordering them (no happens-before).
#ifndef MAPGUARD_TEST_SYNC_H
#define MAPGUARD_TEST_SYNC_H

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <random>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace mg_test {

// The process's resident memory now, in KiB (VmRSS), or -1: for tests whose
// memory must stay flat however many threads or maps come and go.
inline long rss_kb() {
  FILE *f = std::fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && std::fgets(line, sizeof line, f))
    if (!std::strncmp(line, "VmRSS:", 6)) kb = std::atol(line + 6);
  if (f) std::fclose(f);
  return kb;
}

constexpr int kBlockKey = 42;
inline std::atomic<bool> g_inside{false};
inline std::atomic<bool> g_release{false};  // lets a parked thread go (halt_on_error=0 runs)
inline thread_local bool t_armed = false;

// Called by the blocking thread from inside a map operation (hash, compare,
// loop body): says it is inside, then stays there. A report ends the process
// long before the 10 s are up; if none comes, the test sees no report.
__attribute__((noinline)) inline void stay_inside() {
  g_inside.store(true, std::memory_order_relaxed);
  for (int i = 0; i < 10000 && !g_release.load(std::memory_order_relaxed); i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

inline void maybe_block(int key) {
  if (key == kBlockKey && t_armed) {
    t_armed = false;
    stay_inside();
  }
}

// The second thread waits until the first is inside its map operation.
inline void wait_until_inside() {
  for (int i = 0; i < 10000 && !g_inside.load(std::memory_order_relaxed); i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!g_inside.load(std::memory_order_relaxed)) {
    std::fprintf(stderr, "TEST TIMEOUT: the first thread never got inside\n");
    std::exit(3);
  }
}

// A hash that parks the armed thread inside the map operation.
struct BlockingHash {
  size_t operator()(int k) const {
    maybe_block(k);
    return size_t(k);
  }
};

// Runs `inside` on a new thread, armed, so that it stays inside its map
// operation on kBlockKey; then runs `racer` on a second thread. Returns only
// if no report stopped the process.
template <typename Inside, typename Racer>
void race(Inside inside, Racer racer) {
  std::thread a([&] {
    t_armed = true;
    inside();
  });
  std::thread b([&] {
    wait_until_inside();
    racer();
    g_release.store(true, std::memory_order_relaxed);
  });
  a.join();
  b.join();
  g_inside.store(false, std::memory_order_relaxed);
  g_release.store(false, std::memory_order_relaxed);
}

// Random choices and delays for stress tests: a generator per thread,
// seeded per run. A number in [0, n).
inline unsigned random_below(unsigned n) {
  static thread_local std::minstd_rand rng{std::random_device{}()};
  return unsigned(rng() % n);
}
// Spins for a random count up to `max`.
__attribute__((noinline)) inline void spin(int max) {
  int n = int(random_below(unsigned(max + 1)));
  for (volatile int i = 0; i < n; i = i + 1) {
  }
}
// A hash that spins inside the map operation (so regions last a random time).
template <int kMaxSpin>
struct SpinningHash {
  size_t operator()(int k) const {
    spin(kMaxSpin);
    return size_t(k);
  }
};

// Waits up to `limit_ms` for fork child `pid`. A child still running then is
// counted as hung (and killed); one that exits other than with status 0 as
// bad (and said). Only a hang takes that long: the limit is not timing.
inline void wait_child(pid_t pid, int child, int limit_ms, int *hung, int *bad) {
  int status = 0;
  bool done = false;
  for (int waited = 0; waited < limit_ms && !done; waited += 5) {
    if (waitpid(pid, &status, WNOHANG) == pid) done = true;
    else std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!done) {
    ++*hung;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ++*bad;
    std::printf("FAILED: child %d exited with status 0x%x\n", child, status);
  }
}

}  // namespace mg_test

#endif
