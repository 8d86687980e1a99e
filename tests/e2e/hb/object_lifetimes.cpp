// State that must die with its object (detect=hb).
//
// factory: maps made, handed over and destroyed by code built without the
// plugin (Inputs/plain_factory.cpp), with synchronization mapguard cannot
// see; the memory of one goes to the next. A correct program: each map is
// written by one worker, then destroyed by main after the factory's own
// hand-off. Before, the next map at the address inherited the previous
// one's last write, and the next worker's write was reported.
//
// granule: two std::atomic<int> side by side, in one 8-byte granule. A
// thread that acquires `b` learns nothing released into `a`: the racy twin
// orders the second write through the wrong flag and is reported (before:
// one clock per granule, missed); the clean twin acquires `a`.
//
// freed-atomic: an atomic released into, freed, and a new one allocated at
// the same address. Acquiring the new one orders nothing released into the
// old one: the racy twin is reported (before: the clock was inherited,
// missed); in the clean twin main acquired the old one first.
// RUN: %clangxx_plain -g -O0 -c %S/Inputs/plain_factory.cpp -o %t.factory.o
// RUN: %clangxx_mg -O0 %s %t.factory.o -o %t.O0
// RUN: %clangxx_mg -O2 %s %t.factory.o -o %t.O2
// RUN: %t.O0 factory 2>&1 | FileCheck %s --check-prefix=FACTORY
// RUN: %t.O2 factory 2>&1 | FileCheck %s --check-prefix=FACTORY
// RUN: %t.O0 granule clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 granule clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 granule racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 granule racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %t.O0 freed-atomic clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 freed-atomic clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 freed-atomic racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 freed-atomic racy 2>&1 | FileCheck %s --check-prefix=RACY
// FACTORY-NOT: fatal error
// FACTORY: DONE maps=200 reused=1
// CLEAN-NOT: fatal error
// CLEAN: DONE
// RACY: fatal error: unsynchronized map writes
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "Inputs/plain_factory.h"

static void spin_relaxed(const std::atomic<int> &f) {
  while (!f.load(std::memory_order_relaxed))
    std::this_thread::sleep_for(std::chrono::microseconds(100));
}

static int factory() {
  int reused = 0;
  void *last = nullptr;
  for (int i = 0; i < 200; i++) {
    Handle *h = make_handle();
    reused |= static_cast<void *>(h) == last;
    last = h;
    // Each map goes to a new worker, which writes it and gives it back
    // through the factory; main destroys it through the factory.
    std::thread worker([h, i] {
      map_of(h)[i] = i;
      release_handle(h);
    });
    worker.detach();
    destroy_when_released(h);
  }
  std::printf("DONE maps=200 reused=%d\n", reused);
  return 0;
}

std::unordered_map<int, int> g_map;

struct alignas(8) TwoFlags {
  std::atomic<int> a{0};
  std::atomic<int> b{0};
};
TwoFlags g_flags;

static int granule(bool clean) {
  std::thread first([] {
    g_map[1] = 1;
    g_flags.a.store(1, std::memory_order_release);
  });
  std::thread second([clean] {
    if (clean) {
      while (!g_flags.a.load(std::memory_order_acquire)) {
      }
    } else {
      while (!g_flags.b.load(std::memory_order_acquire)) {
      }
    }
    g_map[2] = 2;
  });
  // Main sets b once a is set, without acquiring a: b carries main's
  // knowledge only, which does not include the first thread's write.
  spin_relaxed(g_flags.a);
  g_flags.b.store(1, std::memory_order_release);
  first.join();
  second.join();
  std::printf("DONE\n");
  return 0;
}

std::atomic<std::atomic<int> *> g_current{nullptr};

static int freed_atomic(bool clean) {
  std::atomic<int> *old_flag = new std::atomic<int>(0);
  std::atomic<int> go{0};
  std::thread first([old_flag] {
    g_map[1] = 1;
    old_flag->store(1, std::memory_order_release);
  });
  std::thread second([] {
    std::atomic<int> *f;
    while (!(f = g_current.load(std::memory_order_relaxed))) {
    }
    while (!f->load(std::memory_order_acquire)) {
    }
    g_map[2] = 2;
  });
  if (clean)
    while (!old_flag->load(std::memory_order_acquire)) {
    }
  else
    spin_relaxed(*old_flag);
  delete old_flag;
  std::atomic<int> *new_flag = new std::atomic<int>(0);
  std::printf("same address: %d\n", int(new_flag == old_flag));
  g_current.store(new_flag, std::memory_order_relaxed);
  new_flag->store(1, std::memory_order_release);
  first.join();
  second.join();
  delete new_flag;
  (void)go;
  std::printf("DONE\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !std::strcmp(argv[1], "factory")) return factory();
  bool clean = argc > 2 && !std::strcmp(argv[2], "clean");
  if (argc > 1 && !std::strcmp(argv[1], "granule")) return granule(clean);
  if (argc > 1 && !std::strcmp(argv[1], "freed-atomic")) return freed_atomic(clean);
  std::fprintf(stderr, "usage: %s factory | granule clean|racy | freed-atomic clean|racy\n", argv[0]);
  return 2;
}
