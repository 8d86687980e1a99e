// Runtime-owned memory (ground rule 3): power-of-two size classes carved
// from mmap'd chunks, with a free list per class. Slow paths only.
#ifndef MAPGUARD_ARENA_H
#define MAPGUARD_ARENA_H

#include <sched.h>
#include <stddef.h>

namespace mapguard {

void *ArenaAlloc(size_t bytes);            // zeroed, 16-byte aligned
void ArenaFree(void *p, size_t bytes);     // `bytes` as passed to ArenaAlloc

// A spin lock for slow paths (sync objects, per-map happens-before state).
struct SpinLock {
  volatile int word = 0;
  // Critical sections are short, but a holder can be preempted (more threads
  // than cores): after a while, give the CPU away instead of spinning on.
  void Lock() {
    while (__atomic_exchange_n(&word, 1, __ATOMIC_ACQUIRE)) {
      for (int spins = 0; __atomic_load_n(&word, __ATOMIC_RELAXED); spins++) {
        if (spins < 128) __builtin_ia32_pause();
        else sched_yield();
      }
    }
  }
  void Unlock() { __atomic_store_n(&word, 0, __ATOMIC_RELEASE); }
};

}  // namespace mapguard

#endif
