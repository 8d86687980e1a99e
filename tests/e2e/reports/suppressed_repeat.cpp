// A suppressed race is remembered by its pair of sites, and the access is
// recorded as usual: 20,000 later reads racing with the same write build the
// report (stacks, symbolization) once or twice, not 20,000 times. Likewise a
// duplicate with halt_on_error=0 and dedup.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: echo 'map:std::unordered_map<int, int>' > %t.supp
// RUN: env MAPGUARD_OPTIONS=suppressions=%t.supp:print_suppressions=1 %t 2>&1 | FileCheck %s --check-prefix=SUPP
// RUN: env MAPGUARD_OPTIONS=halt_on_error=0 %expect_exit 66 %t 2>&1 | FileCheck %s --check-prefix=DEDUP
// SUPP: mapguard: suppression map:std::unordered_map<int, int> matched {{[1-9]}} report{{s?}}
// SUPP: DONE 20000
// DEDUP-COUNT-1: fatal error: unsynchronized map read and map write
// DEDUP-NOT: fatal error
// DEDUP: DONE 20000
#include <atomic>
#include <cstdio>
#include <thread>
#include <unordered_map>

std::unordered_map<int, int> m;
std::atomic<bool> written{false};  // relaxed: orders nothing

int main() {
  m[1] = 1;
  std::thread racer([] {
    m[3] = 3;
    written.store(true, std::memory_order_relaxed);
  });
  long reads = 0;
  std::thread reader([&] {
    while (!written.load(std::memory_order_relaxed)) {
    }
    for (int i = 0; i < 20000; i++) reads += long(m.count(i & 7) >= 0);
  });
  racer.join();
  reader.join();
  std::printf("DONE %ld\n", reads);
  return 0;
}
