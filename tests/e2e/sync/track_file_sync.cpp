// A lock class of a prebuilt library (Inputs/vendor_lock.cpp, compiled
// without the plugin: its atomics are invisible) named in a track-file's
// sync line: the calls to it become happens-before edges, and a map it
// guards is quiet. Without the line the same program is reported, and a bad
// sync line stops the compile with one line naming the problem.
// RUN: %clangxx_plain -O1 -fPIC -shared %S/Inputs/vendor_lock.cpp -o %t.libvendor.so
// RUN: echo "sync vendor::SpinLock lock=acquire trylock=try_acquire unlock=release  # the vendor's lock" > %t.sync
// RUN: %clangxx_mg -O0 -fplugin-arg-mapguard-track-file=%t.sync %s %t.libvendor.so -o %t.O0
// RUN: %clangxx_mg -O2 -fplugin-arg-mapguard-track-file=%t.sync %s %t.libvendor.so -o %t.O2
// RUN: %t.O0 lock 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 lock 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O0 trylock 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 trylock 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %clangxx_mg -O0 %s %t.libvendor.so -o %t.unnamed
// RUN: %expect_exit 66 %t.unnamed lock 2>&1 | FileCheck %s --check-prefix=UNNAMED
// RUN: echo "sync vendor::SpinLock grab=acquire" > %t.bad
// RUN: not %clangxx_mg -O0 -fplugin-arg-mapguard-track-file=%t.bad %s -o %t.badbin 2>&1 | FileCheck %s --check-prefix=BAD
// CLEAN-NOT: fatal error
// CLEAN: DONE
// UNNAMED: fatal error: unsynchronized map writes
// BAD: error: mapguard: {{.*}}.bad:1: unknown sync role 'grab'
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

#include "Inputs/vendor_lock.h"

std::map<int, int> table;
vendor::SpinLock lock;

int main(int argc, char **argv) {
  bool use_try = argc > 1 && !std::strcmp(argv[1], "trylock");
  // Two threads take turns (forced by a relaxed counter, which orders
  // nothing), each writing the map under the vendor's lock.
  std::atomic<int> turn{0};
  auto worker = [&](int me) {
    for (int i = 0; i < 100; i++) {
      while (turn.load(std::memory_order_relaxed) % 2 != me) std::this_thread::yield();
      if (use_try) {
        while (!lock.try_acquire()) std::this_thread::yield();
      } else {
        lock.acquire();
      }
      table[i % 5] += me;
      lock.release();
      turn.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  std::printf("DONE\n");
  return 0;
}
