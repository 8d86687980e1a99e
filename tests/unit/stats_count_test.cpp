// The runtime's own per-map counts (mg_stats_record.h), which print_stats
// prints and mapguard-sidecar reads: exact under threads and signal
// handlers, through the same entry points the plugin's code calls (the
// inlined fast path's code, with its per-thread count cache).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/time.h>
#include <ucontext.h>

#include <atomic>
#include <condition_variable>
#include <iterator>
#include <mutex>
#include <thread>
#include <vector>

#include "mapguard/interface.h"
#include "mg_probes.h"
#include "mg_stats.h"

namespace {

mg_site Site(mg_access_kind kind, const char *op, unsigned line) {
  return mg_site{op, "stats.cpp", line, 3, "test_function()", "std::map<int, int>", "m", uint32_t(kind),
                 MG_ABI_VERSION};
}
const mg_site kRead = Site(MG_READ, "find", 10);
const mg_site kWrite = Site(MG_WRITE, "insert", 20);

// Counting on, as while a sidecar is attached (its semaphore up).
struct CountingOn {
  CountingOn() { __atomic_fetch_add(&mapguard_stats_handover_semaphore, 1, __ATOMIC_RELAXED); }
  ~CountingOn() { __atomic_fetch_sub(&mapguard_stats_handover_semaphore, 1, __ATOMIC_RELAXED); }
};

const mapguard::MapRecord *RecordOf(const void *map) {
  for (uint64_t a = __atomic_load_n(&mapguard_sidecar_registry.head, __ATOMIC_ACQUIRE); a;
       a = reinterpret_cast<const mapguard::MapRecord *>(a)->next) {
    auto *r = reinterpret_cast<const mapguard::MapRecord *>(a);
    if (r->map == reinterpret_cast<uintptr_t>(map)) return r;
  }
  return nullptr;
}

alignas(64) char g_handler_map[64];
std::atomic<long> g_handler_reads{0};

void OnAlarm(int) {
  __mapguard_read_begin(g_handler_map, &kRead);
  __mapguard_read_end(g_handler_map, &kRead);
  g_handler_reads.fetch_add(1, std::memory_order_relaxed);
}

// Four threads each write and read their own map and read a shared one,
// while SIGALRM every 50 us runs a handler that reads a third map on
// whatever thread it lands, mid-access or mid-fill of the count cache. Every
// count comes out exact, and each private map's counts are its own
// thread's.
TEST(StatsCount, CountsAreExactUnderThreadsAndSignalHandlers) {
  CountingOn on;
  constexpr int kThreads = 4, kRounds = 200000;
  alignas(64) static char shared_map[64], own[kThreads][64];
  struct sigaction sa = {};
  sa.sa_handler = OnAlarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, nullptr);
  itimerval every = {{0, 50}, {0, 50}};
  setitimer(ITIMER_REAL, &every, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++)
    threads.emplace_back([t] {
      for (int i = 0; i < kRounds; i++) {
        __mapguard_write_begin(own[t], &kWrite);
        __mapguard_write_end(own[t], &kWrite);
        __mapguard_read_begin(own[t], &kRead);
        __mapguard_read_end(own[t], &kRead);
        __mapguard_read_begin(shared_map, &kRead);
        __mapguard_read_end(shared_map, &kRead);
      }
    });
  for (auto &t : threads) t.join();
  itimerval off = {};
  setitimer(ITIMER_REAL, &off, nullptr);
  signal(SIGALRM, SIG_IGN);
  for (int t = 0; t < kThreads; t++) {
    const mapguard::MapRecord *r = RecordOf(own[t]);
    ASSERT_NE(r, nullptr);
    const mapguard::MapUsage u = mapguard::UsageOf(*r);
    EXPECT_EQ(u.reads, uint64_t(kRounds));
    EXPECT_EQ(u.writes, uint64_t(kRounds));
    EXPECT_EQ(u.threads, 1u);
    EXPECT_EQ(u.switches, 0u);
  }
  const mapguard::MapUsage shared = mapguard::UsageOf(*RecordOf(shared_map));
  EXPECT_EQ(shared.reads, uint64_t(kThreads) * kRounds);
  EXPECT_EQ(shared.threads, uint64_t(kThreads));
  EXPECT_GT(g_handler_reads.load(), 0);
  EXPECT_EQ(mapguard::UsageOf(*RecordOf(g_handler_map)).reads, uint64_t(g_handler_reads.load()));
}

// Two live threads take turns writing a map (runs handed over under a
// mutex): every change of hands is counted (the advice's hand-off test
// weighs them), though a run's writes count inline and each thread's cache
// still holds the map when its next turn comes.
TEST(StatsCount, EveryHandOffAroundWritesIsCounted) {
  CountingOn on;
  alignas(64) static char map[64];
  constexpr int kTurns = 6, kRun = 500;
  std::mutex mu;
  std::condition_variable cv;
  int turn = 0;
  auto player = [&](int me) {
    for (;;) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return turn >= kTurns || turn % 2 == me; });
      if (turn >= kTurns) return;
      for (int i = 0; i < kRun; i++) {
        __mapguard_write_begin(map, &kWrite);
        __mapguard_write_end(map, &kWrite);
      }
      turn++;
      cv.notify_all();
    }
  };
  std::thread a(player, 0), b(player, 1);
  a.join();
  b.join();
  const mapguard::MapUsage u = mapguard::UsageOf(*RecordOf(map));
  EXPECT_EQ(u.writes, uint64_t(kTurns) * kRun);
  EXPECT_EQ(u.switches, uint64_t(kTurns - 1));
}

#if defined(__x86_64__)
// A handler at every instruction: the trap flag (EFLAGS.TF) makes the CPU
// raise SIGTRAP after each instruction the test thread runs; the SIGTRAP
// handler may read a map of its own, counting it. The kernel clears the flag
// for the handler and sigreturn sets it again, so the handler itself runs
// untraced and the interrupted code is stepped through whole. Map A
// (written) and the handler's map H share one count cache entry; B (read,
// and shared with another thread) has its own. First a handler at every
// instruction: every store of every fill of the entry is interrupted. Then,
// round k, one handler k instructions into a write of A whose entry holds A
// (the write before it filled it): every instruction of the inline count,
// CountsInline accepted and CountNow not yet done, is interrupted once.
alignas(128) char g_step_maps[3][128];  // A, B (at +64), H
char *const g_step_a = g_step_maps[0], *const g_step_b = g_step_maps[1] + 64,
            *const g_step_h = g_step_maps[2];
std::atomic<bool> g_stepping{false};
long g_step_at = -1;  // -1: a handler at every trap; else at trap number g_step_at only
long g_step_traps, g_step_handler_reads;

void OnTrap(int, siginfo_t *, void *context) {
  auto *uc = static_cast<ucontext_t *>(context);
  if (!g_stepping.load(std::memory_order_relaxed)) {
    uc->uc_mcontext.gregs[REG_EFL] &= ~0x100LL;
    return;
  }
  if (g_step_at != -1 && g_step_traps++ != g_step_at) return;
  __mapguard_read_begin(g_step_h, &kRead);
  __mapguard_read_end(g_step_h, &kRead);
  g_step_handler_reads++;
}

void StartStepping(int, siginfo_t *, void *context) {
  static_cast<ucontext_t *>(context)->uc_mcontext.gregs[REG_EFL] |= 0x100;
}

void WriteA() {
  __mapguard_write_begin(g_step_a, &kWrite);
  __mapguard_write_end(g_step_a, &kWrite);
}
void ReadB() {
  __mapguard_read_begin(g_step_b, &kRead);
  __mapguard_read_end(g_step_b, &kRead);
}

TEST(StatsCount, AHandlerAtEveryInstructionCountsExactly) {
  CountingOn on;
  ASSERT_EQ(mapguard::CountCacheIndex(g_step_a), mapguard::CountCacheIndex(g_step_h));
  ASSERT_NE(mapguard::CountCacheIndex(g_step_a), mapguard::CountCacheIndex(g_step_b));
  constexpr int kEveryRounds = 100, kOffsets = 200;
  // B and H are shared (read by another thread first): their reads take the
  // shared paths.
  std::thread([] {
    ReadB();
    __mapguard_read_begin(g_step_h, &kRead);
    __mapguard_read_end(g_step_h, &kRead);
  }).join();
  long a_writes = 0, b_reads = 0;
  std::thread stepped([&] {
    struct sigaction sa = {};
    sa.sa_sigaction = OnTrap;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGTRAP, &sa, nullptr);
    sa.sa_sigaction = StartStepping;
    sigaction(SIGUSR2, &sa, nullptr);
    WriteA();  // untraced: the thread's state and the records exist
    ReadB();
    g_stepping.store(true);
    raise(SIGUSR2);
    for (int i = 0; i < kEveryRounds; i++) {
      WriteA();
      ReadB();
    }
    for (long k = 0; k < kOffsets; k++) {
      WriteA();  // fills A's entry (the last handler took it for H)
      g_step_traps = 0;
      g_step_at = k;
      WriteA();  // counted inline, a handler k instructions in
      g_step_at = -2;  // no handler (-2 never equals a count)
      ReadB();
    }
    g_stepping.store(false);
    a_writes = 1 + kEveryRounds + 2 * kOffsets;
    b_reads = 1 + kEveryRounds + kOffsets;
  });
  stepped.join();
  signal(SIGTRAP, SIG_DFL);
  ASSERT_GT(g_step_handler_reads, 50 * kEveryRounds);  // really stepped
  const mapguard::MapUsage a = mapguard::UsageOf(*RecordOf(g_step_a));
  const mapguard::MapUsage b = mapguard::UsageOf(*RecordOf(g_step_b));
  const mapguard::MapUsage h = mapguard::UsageOf(*RecordOf(g_step_h));
  EXPECT_EQ(a.writes, uint64_t(a_writes));
  EXPECT_EQ(a.reads, 0u);
  EXPECT_EQ(b.reads, uint64_t(b_reads) + 1);
  EXPECT_EQ(b.writes, 0u);
  EXPECT_EQ(h.reads, uint64_t(g_step_handler_reads) + 1);
  EXPECT_EQ(h.writes, 0u);
}
#endif

}  // namespace
