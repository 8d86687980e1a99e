// print_stats=1's advice, one access pattern per mode, with the exact text.
// Each mode uses one map named after it; contention is forced (the holder
// keeps the lock until the other thread sleeps in its lock), never timed.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t single 2>&1 | FileCheck %s --check-prefix=SINGLE
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t published 2>&1 | FileCheck %s --check-prefix=PUBLISHED
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t turns 2>&1 | FileCheck %s --check-prefix=TURNS
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t one-writer 2>&1 | FileCheck %s --check-prefix=ONEWRITER
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t reserve 2>&1 | FileCheck %s --check-prefix=RESERVE
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t read-mostly 2>&1 | FileCheck %s --check-prefix=READMOSTLY
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t write-heavy 2>&1 | FileCheck %s --check-prefix=WRITEHEAVY
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t hot-keys 2>&1 | FileCheck %s --check-prefix=HOTKEYS
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t handoff 2>&1 | FileCheck %s --check-prefix=HANDOFF
// A wait for another lock, given up before the map is touched, is not the
// map's: workers wait on a queue's lock, then fill a results map under its
// own lock that never waits.
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t queue-wait 2>&1 | FileCheck %s --check-prefix=QUEUEWAIT
// QUEUEWAIT: Map std::map<int, int> 'results'
// QUEUEWAIT: contention: 0 lock waits before an access
// QUEUEWAIT: pattern: 2 threads take turns and never waited for a lock to reach it
// Phases that never overlap (build, one pass by each worker, join, modify)
// are hand-offs, not a writer racing its iterating readers.
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t phases 2>&1 | FileCheck %s --check-prefix=PHASES
// PHASES: Map std::unordered_map<int, int> 'table'
// PHASES: pattern: used by one thread at a time, handed on 3 times: keep whatever orders the hand-off
// PHASES-NOT: advice: use a reader-writer lock
// The same facts in JSON.
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json %t write-heavy 2>&1 | FileCheck %s --check-prefix=JSON
//
// SINGLE: Map std::unordered_map<int, int> 'single'
// SINGLE: by thread: T1 (100/100/0) T0 (destroyed it)
// SINGLE-NEXT: contention: 0 lock waits before an access
// SINGLE: pattern: one thread uses it (1 other only constructed or destroyed it): no lock needed
// SINGLE-NOT: advice:
// PUBLISHED: Map std::unordered_map<int, int> 'published'
// PUBLISHED: pattern: written, then only read once a second thread used it (5 threads in all): no lock needed, as long as the writes happen before the readers start
// PUBLISHED-NOT: advice:
// TURNS: Map std::map<int, int> 'turns'
// TURNS: contention: 0 lock waits before an access; thread changes: 39;
// TURNS: pattern: 2 threads take turns and never waited for a lock to reach it: keep the lock; sharding or a reader-writer lock would not make it faster
// TURNS-NOT: advice:
// ONEWRITER: Map std::map<int, int> 'registry'
// ONEWRITER: pattern: one thread writes while 2 others iterate over it
// ONEWRITER-NEXT: advice: use a reader-writer lock (std::shared_mutex, iterating under std::shared_lock), or copy-on-write snapshots so iterations take no lock (mapguard::guarded<Map>, Strategy::kCopyOnWrite); sharding by key would not help an iteration
// RESERVE: Map std::unordered_map<int, int> 'filled'
// RESERVE: growth: 9 rehashes (4501 elements relinked); largest load factor: 1.00; largest size: 3000
// RESERVE-NEXT: rehashes (buckets, load factor when it grew): 1->13 (1.00) 13->29 (1.07) 29->59 (1.03) 59->127 (1.01) 127->257 (1.00) 257->541 (1.00) 541->1109 (1.00) 1109->2357 (1.00) 2357->5087 (1.00)
// RESERVE-NEXT: key spread at destruction: 3000 keys in 3000 of 5087 buckets; longest chain 1; 41.0% of buckets empty; dispersion 0.41 (1 is uniform)
// RESERVE-NOT: warning:
// RESERVE: pattern: one thread uses it: no lock needed
// RESERVE-NEXT: advice: call reserve(3000) before filling it: 9 rehashes relinked 4501 elements
// READMOSTLY: Map std::unordered_map<int, int> 'read_mostly'
// READMOSTLY: contention: 20 lock waits before an access
// READMOSTLY: pattern: read-mostly by 2 threads (threads waited for a lock 20 times)
// READMOSTLY-NEXT: advice: use std::shared_mutex so readers share the lock, or copy-on-write snapshots for lock-free reads (mapguard::guarded<Map>, Strategy::kReaderWriter or kCopyOnWrite)
// WRITEHEAVY: Map std::unordered_map<int, int> 'write_heavy'
// WRITEHEAVY: pattern: write-heavy from 2 threads (threads waited for a lock 20 times)
// WRITEHEAVY-NEXT: advice: shard the map by key hash, one lock per shard (mapguard::guarded<Map>, Strategy::kSharded)
// HOTKEYS: Map std::unordered_map<int, int> 'hot'
// HOTKEYS: pattern: 2 threads write to a few hot keys (threads waited for a lock 20 times)
// HOTKEYS-NEXT: advice: sharding by key would not spread so few keys: give each thread its own map and merge them at the end, or keep the hot values in std::atomic
// HANDOFF: Map std::unordered_map<int, int> 'b->items'
// HANDOFF: pattern: used by one thread at a time, handed on 1 time: keep whatever orders the hand-off (a queue, a future, a join, a lock); nothing more is needed
// HANDOFF-NOT: advice:
// JSON: "name":"write_heavy"
// JSON-SAME: "threads":2,"lifecycle_only_threads":0,"writer_threads":2,
// JSON-SAME: "contended_locks":20,
// JSON-SAME: "pattern":"write-heavy-contended"
// JSON: {"mapguard_stats_summary":{"maps":1,"shared":1,"shown":1}}
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

pid_t Tid() { return pid_t(syscall(SYS_gettid)); }

// Whether thread `tid` of this process is asleep (in the kernel, waiting).
bool Sleeping(pid_t tid) {
  char path[64], buf[512];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", int(tid));
  FILE *f = std::fopen(path, "r");
  if (!f) return false;
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char *paren = std::strrchr(buf, ')');
  return paren && paren[1] == ' ' && paren[2] == 'S';
}

// `rounds` times: this thread takes `mu`, lets the other thread try it, and
// waits until that thread sleeps in its lock (its lock had to wait) before
// running `hold` and giving the lock up; the other runs `wait` under it.
// Each then runs `then(who, round)` with `mu` given up (who: 0 this thread),
// the other thread first: nothing in `then` waits.
template <class Hold, class Wait, class Then>
void ContendedRounds(std::mutex &mu, int rounds, Hold hold, Wait wait, Then then) {
  std::atomic<int> round{-1}, attempt{-1}, done{-1};
  std::atomic<pid_t> waiter{0};
  std::thread other([&] {
    waiter.store(Tid());
    for (int r = 0; r < rounds; r++) {
      while (round.load(std::memory_order_relaxed) < r) {
      }
      attempt.store(r, std::memory_order_relaxed);  // nothing but the lock after this
      {
        std::lock_guard<std::mutex> g(mu);
        wait(r);
      }
      then(1, r);
      done.store(r, std::memory_order_relaxed);
    }
  });
  while (!waiter.load()) {
  }
  for (int r = 0; r < rounds; r++) {
    {
      std::unique_lock<std::mutex> g(mu);
      round.store(r, std::memory_order_relaxed);
      while (attempt.load(std::memory_order_relaxed) != r || !Sleeping(waiter.load())) sched_yield();
      hold(r);
    }
    // The other thread's round (its wait, its `then`) is over before ours.
    while (done.load(std::memory_order_relaxed) != r) sched_yield();
    then(0, r);
  }
  other.join();
}
template <class Hold, class Wait>
void ContendedRounds(std::mutex &mu, int rounds, Hold hold, Wait wait) {
  ContendedRounds(mu, rounds, hold, wait, [](int, int) {});
}

// Threads 0..n-1 run `step(i, round)` in strict turns under `mu`; the turn
// passes only after the lock is given up, so no lock ever waits.
template <class Step>
void Turns(int n, int rounds, std::mutex &mu, Step step) {
  std::atomic<int> turn{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < n; i++)
    ts.emplace_back([&, i] {
      for (int r = 0; r < rounds; r++) {
        while (turn.load(std::memory_order_acquire) != r * n + i) sched_yield();
        {
          std::lock_guard<std::mutex> g(mu);
          step(i, r);
        }
        turn.store(r * n + i + 1, std::memory_order_release);
      }
    });
  for (auto &t : ts) t.join();
}

}  // namespace

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  std::mutex mu;
  if (!std::strcmp(mode, "single")) {
    std::unordered_map<int, int> single;
    std::thread([&] {
      for (int i = 0; i < 100; i++) single[i] = i;
      long sum = 0;
      for (int i = 0; i < 100; i++) sum += single.count(i);
      std::printf("%ld\n", sum);
    }).join();
  } else if (!std::strcmp(mode, "published")) {
    std::unordered_map<int, int> published;
    published.reserve(1000);
    for (int i = 0; i < 1000; i++) published[i] = i;
    std::vector<std::thread> ts;
    std::atomic<long> sum{0};
    for (int t = 0; t < 4; t++)
      ts.emplace_back([&] {
        long s = 0;
        for (int i = 0; i < 1000; i++) s += published.count(i);
        sum += s;
      });
    for (auto &t : ts) t.join();
    std::printf("%ld\n", sum.load());
  } else if (!std::strcmp(mode, "turns")) {
    std::map<int, int> turns;
    Turns(2, 20, mu, [&](int i, int r) {
      for (int k = 0; k < 10; k++) turns[k] += i + r;
    });
  } else if (!std::strcmp(mode, "one-writer")) {
    std::map<int, int> registry;
    long seen = 0;
    Turns(3, 10, mu, [&](int i, int r) {
      if (i == 0) {
        registry[r] = r;
      } else {
        for (auto &kv : registry) seen += kv.second;
      }
    });
    std::printf("%ld\n", seen);
  } else if (!std::strcmp(mode, "reserve")) {
    std::unordered_map<int, int> filled;
    for (int i = 0; i < 3000; i++) filled[i] = i;
  } else if (!std::strcmp(mode, "read-mostly")) {
    std::unordered_map<int, int> read_mostly;
    for (int i = 0; i < 100; i++) read_mostly[i] = i;
    long sum = 0;
    ContendedRounds(
        mu, 20,
        [&](int r) {
          for (int i = 0; i < 50; i++) sum += read_mostly.count(i);
          read_mostly[r] = r;
        },
        [&](int) {
          for (int i = 0; i < 50; i++) sum += read_mostly.count(i);
        });
    std::printf("%ld\n", sum);
  } else if (!std::strcmp(mode, "write-heavy")) {
    std::unordered_map<int, int> write_heavy;
    ContendedRounds(
        mu, 20, [&](int r) { for (int i = 0; i < 50; i++) write_heavy[r * 100 + i] = i; },
        [&](int r) { for (int i = 50; i < 100; i++) write_heavy[r * 100 + i] = i; });
  } else if (!std::strcmp(mode, "hot-keys")) {
    std::unordered_map<int, int> hot;
    ContendedRounds(
        mu, 20, [&](int) { for (int i = 0; i < 50; i++) hot[i % 2]++; },
        [&](int) { for (int i = 0; i < 50; i++) hot[i % 2]++; });
  } else if (!std::strcmp(mode, "queue-wait")) {
    std::map<int, int> results;
    std::mutex queue_mu, results_mu;
    int next_job = 0;
    // Each thread takes a job under queue_mu (one of them waits for it every
    // round), gives it up, then files its result under results_mu, which
    // never waits (the rounds run one after the other).
    int mine[2] = {0, 0};
    ContendedRounds(
        queue_mu, 20, [&](int) { mine[0] = next_job++; }, [&](int) { mine[1] = next_job++; },
        [&](int who, int r) {
          std::lock_guard<std::mutex> g(results_mu);
          results[mine[who]] = r;
        });
  } else if (!std::strcmp(mode, "phases")) {
    std::unordered_map<int, int> table;
    table.reserve(2000);
    for (int i = 0; i < 1000; i++) table[i] = i;
    std::atomic<long> sum{0};
    std::thread a([&] {
      long s = 0;
      for (auto &kv : table) s += kv.second;
      sum += s;
    });
    a.join();
    std::thread b([&] {
      long s = 0;
      for (auto &kv : table) s += kv.second;
      sum += s;
    });
    b.join();
    for (int i = 0; i < 100; i++) table[i] = 0;
    std::printf("%ld\n", sum.load());
  } else if (!std::strcmp(mode, "handoff")) {
    struct Batch {
      std::unordered_map<int, int> items;
    };
    std::deque<std::unique_ptr<Batch>> queue;
    std::condition_variable cv;
    std::thread producer([&] {
      auto b = std::make_unique<Batch>();
      for (int i = 0; i < 100; i++) b->items[i] = i;
      std::lock_guard<std::mutex> g(mu);
      queue.push_back(std::move(b));
      cv.notify_one();
    });
    std::thread consumer([&] {
      std::unique_lock<std::mutex> g(mu);
      cv.wait(g, [&] { return !queue.empty(); });
      std::unique_ptr<Batch> b = std::move(queue.front());
      queue.pop_front();
      g.unlock();
      long sum = 0;
      for (int i = 0; i < 100; i++) sum += b->items.count(i);
      for (int i = 0; i < 100; i += 2) b->items.erase(i);
      std::printf("%ld %zu\n", sum, b->items.size());
    });
    producer.join();
    consumer.join();
  } else {
    std::fprintf(stderr, "unknown mode '%s'\n", mode);
    return 2;
  }
  return 0;
}
