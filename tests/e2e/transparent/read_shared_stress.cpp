// Read-shared maps (steps A0-A5, W1-W3 in runtime/mg_ownership.cpp) under
// random delays, correctly synchronized, so any report is a false alarm.
// Three readers look keys up, the hash and the gaps between lookups spin for
// random times, so reads overlap (the map turns read-shared) and announced
// reads begin and end at every point of a writer's switch back:
//   rwlock:  reads under a shared lock, writes under the exclusive lock;
//   phases:  reads without any lock, then a pthread barrier, one thread
//            writes, another barrier, and so on.
// Zero reports in both modes, and every phase's reads and writes happened.
// At -O0 the readers' steps run in the runtime's entry points; at -O2 the
// announced read (A1-A5) runs inlined in the reader's own function
// (mg_fast_path.h): its A2 exchange is there (this file has no atomic
// exchange of its own).
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: llvm-objdump-19 -d %t.O2 | FileCheck %s --check-prefix=INLINED
// INLINED: <{{.*}}_M_run{{.*}}>:
// INLINED: xchg
// RUN: %t.O0 rwlock 300 2>&1 | FileCheck %s
// RUN: %t.O2 rwlock 1000 2>&1 | FileCheck %s
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 rwlock 1000 2>&1 | FileCheck %s
// RUN: %t.O0 phases 200 2>&1 | FileCheck %s
// RUN: %t.O2 phases 600 2>&1 | FileCheck %s
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 phases 600 2>&1 | FileCheck %s
// CHECK-NOT: mapguard
// CHECK: DONE writes={{[1-9][0-9]*}} reads={{[1-9][0-9]*}}
#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "test_sync.h"

using mg_test::spin;
using SlowHash = mg_test::SpinningHash<300>;
using Table = std::unordered_map<int, int, SlowHash>;

constexpr int kReaders = 3;

int main(int argc, char **argv) {
  const bool phases = argc > 1 && !strcmp(argv[1], "phases");
  const int rounds = argc > 2 ? atoi(argv[2]) : 300;
  Table table;
  for (int i = 0; i < 64; i++) table[i] = i;
  std::shared_mutex mu;
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, nullptr, kReaders + 1);
  std::atomic<long> reads{0}, writes{0};
  std::atomic<int> reader_rounds{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; t++)
    readers.emplace_back([&] {
      long n = 0, found = 0;
      for (int round = 0; round < rounds; round++) {
        const int lookups = 1 + int(mg_test::random_below(8));
        for (int i = 0; i < lookups; i++) {
          if (phases) {
            found += long(table.count(int(mg_test::random_below(80))));
          } else {
            std::shared_lock<std::shared_mutex> l(mu);
            auto it = table.find(int(mg_test::random_below(80)));
            found += it != table.end();
          }
          n++;
          spin(200);
        }
        if (phases) {
          pthread_barrier_wait(&barrier);  // the writer writes now
          pthread_barrier_wait(&barrier);
        }
        reader_rounds.fetch_add(1, std::memory_order_relaxed);
      }
      reads.fetch_add(n, std::memory_order_relaxed);
      (void)found;
    });
  for (int round = 0; round < rounds; round++) {
    if (phases) pthread_barrier_wait(&barrier);  // all reads of this round are done
    {
      std::unique_lock<std::shared_mutex> l(mu, std::defer_lock);
      if (!phases) {
        // Interleaved with the reads: round r waits for r reader rounds.
        while (reader_rounds.load(std::memory_order_relaxed) < round) std::this_thread::yield();
        spin(3000);
        l.lock();
      }
      const int k = int(mg_test::random_below(80));
      if (mg_test::random_below(2)) table[k] = round;
      else table.erase(k);
      writes.fetch_add(1, std::memory_order_relaxed);
    }
    if (phases) pthread_barrier_wait(&barrier);
  }
  for (auto &r : readers) r.join();
  pthread_barrier_destroy(&barrier);
  std::printf("DONE writes=%ld reads=%ld\n", writes.load(), reads.load());
  return 0;
}
