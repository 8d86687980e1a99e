// The revocation protocol (mg_ownership.cpp) against every step of the
// owner's begin and end paths: the owner runs random sequences of reads,
// iterations with nested lookups, and writes on maps it owns, with random
// delays between and inside operations (the hash and the loop body spin);
// a second thread takes each map over at a random moment with a read, while
// the owner only reads. After a handshake (release/acquire), the owner writes.
// Correct code: zero reports over thousands of revocations, in both modes.
// At -O0 the owner's steps run in the runtime's entry points; at -O2 inlined
// in this program's functions (mg_fast_path.h), with the slow entries that
// settle a revocation (B3/E3: begin_slow, end_slow) called from there.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: llvm-objdump-19 -d %t.O2 | FileCheck %s --check-prefix=INLINED
// INLINED-DAG: call{{.*}}<__mapguard_fp_{{[0-9a-f]+}}_begin_slow
// INLINED-DAG: call{{.*}}<__mapguard_fp_{{[0-9a-f]+}}_end_slow
// RUN: %t.O0 2000 2>&1 | FileCheck %s
// RUN: %t.O2 4000 2>&1 | FileCheck %s
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 4000 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK: DONE revocations={{[0-9]+}}
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>
#include <unordered_map>

#include "test_sync.h"

using mg_test::spin;
using SlowHash = mg_test::SpinningHash<200>;
using Table = std::unordered_map<int, int, SlowHash>;
using Tree = std::map<int, int>;

std::atomic<Table *> g_table;
std::atomic<Tree *> g_tree;
std::atomic<int> g_phase;  // 0 owner reading, 1 taker done

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 1000;
  std::atomic<bool> stop{false};
  std::atomic<int> round_ready{-1};
  int taken = 0;
  std::thread taker([&] {
    for (int r = 0; r < rounds; r++) {
      while (round_ready.load(std::memory_order_acquire) != r) std::this_thread::yield();
      spin(4000);
      long s = 0;
      Table *t = g_table.load(std::memory_order_acquire);
      Tree *m = g_tree.load(std::memory_order_acquire);
      if (r % 3 == 0) {
        s += long(t->count(int(mg_test::random_below(16))));
        for (const auto &kv : *m) s += kv.second;
      } else if (r % 3 == 1) {
        s += long(m->count(int(mg_test::random_below(16))));
        for (const auto &kv : *t) s += kv.second;
      } else {
        auto it = t->find(3);
        s += it == t->end() ? 0 : it->second;
        s += long(m->count(2));
      }
      taken += 2;
      g_phase.store(1, std::memory_order_release);
      (void)s;
    }
  });
  long sum = 0;
  for (int r = 0; r < rounds; r++) {
    Table t;
    Tree m;
    for (int i = 0; i < 16; i++) t[i] = i, m[i] = i;
    g_table.store(&t, std::memory_order_release);
    g_tree.store(&m, std::memory_order_release);
    g_phase.store(0, std::memory_order_relaxed);
    round_ready.store(r, std::memory_order_release);
    // Read-only until the taker is done, then write after acquiring its end.
    while (g_phase.load(std::memory_order_acquire) == 0) {
      switch (mg_test::random_below(4)) {
        case 0: sum += long(t.count(int(mg_test::random_below(16)))); break;
        case 1:
          for (const auto &kv : m) {
            sum += kv.second;
            if (kv.first == 7) sum += long(t.count(7));  // nested in the iteration
            spin(50);
          }
          break;
        case 2:
          for (const auto &kv : t) {
            sum += kv.second;
            spin(20);
          }
          break;
        default: {
          auto it = m.find(int(mg_test::random_below(16)));
          sum += it == m.end() ? 0 : it->second;
        }
      }
      spin(100);
    }
    t[100] = 1;
    m.erase(3);
    m[200] = 2;
  }
  taker.join();
  (void)stop;
  std::printf("DONE revocations=%d\n", taken);
  return sum < 0;
}
