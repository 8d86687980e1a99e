// The linearizability stress of mapguard::guarded, shared by the unit test
// (tests/unit/guarded_test.cpp) and the end-to-end test under the plugin
// (tests/e2e/plugin/guarded.cpp). 8 threads hammer one guard while another
// thread switches its strategy at random moments (pinned ones and adaptive).
// It checks what linearizability promises:
//  - every acknowledged write is visible: after insert_or_assign(k, n)
//    returns, the writer's own find(k) gives n;
//  - no lost update: shared counters incremented by every thread end at the
//    number of increments;
//  - per-key order: each key has one writer counting up, and no reader ever
//    sees it go back.
// Returns the number of violations (0), printing each.
#ifndef MAPGUARD_GUARDED_STRESS_H
#define MAPGUARD_GUARDED_STRESS_H

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mapguard/guarded.h"

namespace guarded_stress {

inline int Run(int threads = 8, int ops_per_thread = 20000, unsigned seed = 1) {
  using Guard = mapguard::guarded<std::unordered_map<long, long>>;
  Guard g;
  constexpr long kShared = 8, kOwnKeys = 32;
  std::atomic<int> violations{0};
  std::atomic<bool> done{false};
  auto violation = [&](const char *what, long k, long a, long b) {
    if (violations.fetch_add(1) < 10) std::fprintf(stderr, "violation: %s: key %ld: %ld vs %ld\n", what, k, a, b);
  };
  std::thread switcher([&] {
    std::mt19937 rng(seed);
    const mapguard::Strategy all[] = {mapguard::Strategy::kMutex, mapguard::Strategy::kReaderWriter,
                                      mapguard::Strategy::kSharded, mapguard::Strategy::kCopyOnWrite,
                                      mapguard::Strategy::kAdaptive};
    while (!done.load(std::memory_order_relaxed)) {
      g.pin(all[rng() % 5]);
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
    }
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++)
    ts.emplace_back([&, t] {
      std::mt19937 rng(seed * 7919 + unsigned(t));
      std::vector<long> seen(size_t(threads * kOwnKeys), -1);  // last value read per key
      std::vector<long> mine(kOwnKeys, 0);
      for (int i = 0; i < ops_per_thread; i++) {
        unsigned op = rng() % 100;
        if (op < 30) {  // my own key counts up; I must see what I wrote
          long j = long(rng() % kOwnKeys), k = 1000 + t * kOwnKeys + j;
          g.insert_or_assign(k, ++mine[size_t(j)]);
          auto v = g.find(k);
          if (!v || *v != mine[size_t(j)]) violation("own write not visible", k, v ? *v : -1, mine[size_t(j)]);
        } else if (op < 45) {  // shared counters: no lost update
          g.update(long(rng() % kShared), [](long &v) { v++; });
        } else if (op < 97) {  // another thread's key never goes back
          int other = int(rng() % unsigned(threads));
          long j = long(rng() % kOwnKeys), k = 1000 + other * kOwnKeys + j;
          auto v = g.find(k);
          long now = v ? *v : 0;
          long &last = seen[size_t(other * kOwnKeys + j)];
          if (now < last) violation("a key went back", k, now, last);
          last = now;
        } else if (op < 99) {
          (void)g.size();
        } else {  // a whole-map write: one more shared increment, seen by all
          g.write([](std::unordered_map<long, long> &m) { m[0]++; });
        }
      }
    });
  for (auto &th : ts) th.join();
  done = true;
  switcher.join();
  // Replay the increments each thread made: a second run of the same seeds.
  long expected = 0;
  for (int t = 0; t < threads; t++) {
    std::mt19937 rng(seed * 7919 + unsigned(t));
    for (int i = 0; i < ops_per_thread; i++) {
      unsigned op = rng() % 100;
      if (op < 30) (void)rng(), (void)0;
      else if (op < 45) (void)rng(), expected++;
      else if (op < 97) (void)rng(), (void)rng();
      else if (op >= 99) expected++;
    }
  }
  long total = g.read([&](const std::unordered_map<long, long> &m) {
    long sum = 0;
    for (long k = 0; k < kShared; k++) {
      auto it = m.find(k);
      if (it != m.end()) sum += it->second;
    }
    return sum;
  });
  if (total != expected) violation("lost update", -1, total, expected);
  std::printf("stress: %d threads x %d ops, %llu switches, %d violations\n", threads, ops_per_thread,
              (unsigned long long)g.switches(), violations.load());
  return violations.load();
}

}  // namespace guarded_stress

#endif
