// Runtime-owned memory (ground rule 3): power-of-two size classes carved
// from mmap'd chunks, with a free list per class. Slow paths only.
#ifndef MAPGUARD_ARENA_H
#define MAPGUARD_ARENA_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#include <atomic>

namespace mapguard {

void *ArenaAlloc(size_t bytes);            // zeroed; aligned to its size, at most 64
void ArenaFree(void *p, size_t bytes);     // `bytes` as passed to ArenaAlloc

// Bumped in every child of fork(). A spin lock remembers the generation in
// which it was taken, so a child can tell a lock held by a thread that does
// not exist there (it was running in the parent at the fork) from a live one.
extern std::atomic<uint32_t> g_fork_generation;

// A spin lock for slow paths (sync objects, per-map happens-before state).
// Never a cancellation point, never a signal: waiting yields the CPU.
//
// fork(): the runtime's global locks are taken before fork and released in
// both processes (mg_thread.cpp). Per-object locks cannot all be taken, so a
// child that finds one held by a thread of the parent (an older generation)
// takes it over: that thread is gone, and what it was doing under the lock
// (joining a clock, recording an access) leaves the data usable.
struct SpinLock {
  std::atomic<uint32_t> word{0};  // 0 free, else the holder's generation + 1
  void Lock() {
    uint32_t mine = g_fork_generation.load(std::memory_order_relaxed) + 1;
    uint32_t seen = 0;
    if (__builtin_expect(word.compare_exchange_strong(seen, mine, std::memory_order_acquire), 1))
      return;
    LockSlow(mine);
  }
  void Unlock() { word.store(0, std::memory_order_release); }
  // In a fork child, for a global lock the forking thread itself took.
  void ResetAfterFork() { word.store(0, std::memory_order_relaxed); }

 private:
  // Critical sections are short, but a holder can be preempted (more threads
  // than cores): after a while, give the CPU away instead of spinning on.
  void LockSlow(uint32_t mine) {
    for (int spins = 0;; spins++) {
      uint32_t seen = word.load(std::memory_order_relaxed);
      if (seen != mine) {
        // Free (0), or held by a thread of an earlier generation (gone): take it.
        if (word.compare_exchange_weak(seen, mine, std::memory_order_acquire)) return;
        continue;
      }
      if (spins < 128) __builtin_ia32_pause();
      else sched_yield();
    }
  }
};

}  // namespace mapguard

#endif
