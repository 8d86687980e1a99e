// What to do about one map, from the facts of how it was used: the access
// pattern, a sentence that names it, and advice when something should change.
// The runtime's print_stats and the BPF sidecar's report and metrics both
// fill a MapUsage and ask here, so they give the same advice for the same
// facts. Header-only, no runtime dependencies.
//
// The facts, and why each one matters:
//  - threads that used the map (read, wrote, iterated) against threads that
//    only constructed or destroyed it: main building a worker's map and
//    tearing it down does not make the map shared;
//  - writes after a second thread first used it: none means the map was
//    published and then only read, which needs no lock;
//  - changes of the thread using it: few means a hand-off (one thread at a
//    time), many means threads take turns;
//  - lock acquisitions that had to wait, just before an access to the map:
//    only contention makes a different lock pay; an uncontended mutex is
//    already the cheapest correct choice;
//  - iterations by threads that never write: sharding by key cannot help a
//    whole-map iteration, a reader-writer lock or a snapshot can.
#ifndef MAPGUARD_ADVICE_H
#define MAPGUARD_ADVICE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

namespace mapguard {

constexpr uint64_t kUnknown = ~uint64_t(0);

struct MapUsage {
  uint64_t reads = 0, writes = 0, iterations = 0;  // by the threads that used it
  uint64_t threads = 0;                 // threads that read, wrote or iterated
  uint64_t lifecycle_threads = 0;       // threads that only constructed or destroyed it
  uint64_t writer_threads = 0;          // threads that wrote
  uint64_t nonwriter_iterations = 0;    // iterations by threads that never wrote
  uint64_t shared_writes = kUnknown;    // writes after a second thread used it
  uint64_t switches = kUnknown;         // changes of the thread using it
  uint64_t contended_locks = kUnknown;  // waits for a lock just before an access
  uint64_t conflicts = 0;               // overlapping conflicting accesses seen
  uint64_t size = 0;                    // largest element count seen (the sidecar:
                                        // at a rehash); 0: unknown
  uint64_t rehashes = 0;                // bucket-count changes after the first write
  uint64_t moved = 0;                   // elements the rehashes relinked
};

struct MapAdvice {
  const char *pattern;  // a short name: "single-thread", "read-only-after-publication", ...
  char summary[192];    // what the pattern is, in a sentence
  char advice[256];     // what to do; empty when nothing needs changing
  char growth[192];     // what to do about growth; empty when nothing needs changing
};

// A map handed from thread to thread (a pipeline, a build then a parallel
// pass then a join) stays with each thread for long runs of accesses and
// changes hands about once per thread; threads taking turns change hands
// far more often, and a map touched a few times proves nothing.
constexpr uint64_t kHandOffRun = 8;  // accesses per run, at least, on average
inline bool IsHandOff(const MapUsage &u) {
  const uint64_t total = u.reads + u.writes + u.iterations;
  return u.switches != kUnknown && u.switches <= 2 * u.threads &&
         total >= kHandOffRun * (u.switches + 1);
}

// Rehashes before the map reached its size: reserve() would have made one.
// Below a thousand elements the relinking costs too little to mention.
constexpr uint64_t kRehashesWorthReserve = 4;
constexpr uint64_t kSizeWorthReserve = 1000;
// A contended map of this few elements has hot keys: shards cannot spread it.
constexpr uint64_t kHotKeys = 8;

__attribute__((format(printf, 3, 4))) inline void Say(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, n, fmt, ap);
  va_end(ap);
}

inline MapAdvice Advise(const MapUsage &u) {
  MapAdvice a{};
  const unsigned long long threads = u.threads, waits = u.contended_locks;
  const uint64_t total = u.reads + u.writes + u.iterations;
  if (u.threads <= 1) {
    a.pattern = "single-thread";
    if (u.lifecycle_threads)
      Say(a.summary, sizeof(a.summary),
          "one thread uses it (%llu other%s only constructed or destroyed it): no lock needed",
          (unsigned long long)u.lifecycle_threads, u.lifecycle_threads == 1 ? "" : "s");
    else
      Say(a.summary, sizeof(a.summary), "one thread uses it: no lock needed");
  } else if (u.conflicts) {
    a.pattern = "racy";
    Say(a.summary, sizeof(a.summary), "accesses from %llu threads overlapped %llu time%s", threads,
        (unsigned long long)u.conflicts, u.conflicts == 1 ? "" : "s");
    Say(a.advice, sizeof(a.advice),
        "put every access under one lock: std::mutex, or std::shared_mutex if reads dominate "
        "(mapguard::guarded<Map> does either)");
  } else if (u.shared_writes == 0) {
    a.pattern = "read-only-after-publication";
    Say(a.summary, sizeof(a.summary),
        "written, then only read once a second thread used it (%llu threads in all): no lock "
        "needed, as long as the writes happen before the readers start",
        threads);
  } else if (IsHandOff(u)) {
    a.pattern = "hand-off";
    Say(a.summary, sizeof(a.summary),
        "used by one thread at a time, handed on %llu time%s: keep whatever orders the hand-off "
        "(a queue, a future, a join, a lock); nothing more is needed",
        (unsigned long long)u.switches, u.switches == 1 ? "" : "s");
  } else if (u.writer_threads == 1 && u.nonwriter_iterations > 0) {
    a.pattern = "one-writer-iterating-readers";
    Say(a.summary, sizeof(a.summary), "one thread writes while %llu other%s iterate over it",
        threads - 1, threads == 2 ? "" : "s");
    Say(a.advice, sizeof(a.advice),
        "use a reader-writer lock (std::shared_mutex, iterating under std::shared_lock), or "
        "copy-on-write snapshots so iterations take no lock (mapguard::guarded<Map>, "
        "Strategy::kCopyOnWrite); sharding by key would not help an iteration");
  } else if (u.contended_locks == 0) {
    a.pattern = "uncontended";
    Say(a.summary, sizeof(a.summary),
        "%llu threads take turns and never waited for a lock to reach it: keep the lock; "
        "sharding or a reader-writer lock would not make it faster",
        threads);
  } else {
    char why[80] = "";
    if (u.contended_locks != kUnknown)
      Say(why, sizeof(why), " (threads waited for a lock %llu time%s)", waits, waits == 1 ? "" : "s");
    if (u.writes * 10 <= total) {
      a.pattern = "read-mostly-contended";
      Say(a.summary, sizeof(a.summary), "read-mostly by %llu threads%s", threads, why);
      Say(a.advice, sizeof(a.advice),
          "use std::shared_mutex so readers share the lock, or copy-on-write snapshots for "
          "lock-free reads (mapguard::guarded<Map>, Strategy::kReaderWriter or kCopyOnWrite)");
    } else if (u.size && u.size <= kHotKeys) {
      a.pattern = "hot-keys";
      // No count in the words: the sidecar sees a size only at a rehash.
      Say(a.summary, sizeof(a.summary), "%llu threads write to a few hot keys%s", threads, why);
      Say(a.advice, sizeof(a.advice),
          "sharding by key would not spread so few keys: give each thread its own map and merge "
          "them at the end, or keep the hot values in std::atomic");
    } else if (u.writes * 10 >= total * 3) {
      a.pattern = "write-heavy-contended";
      Say(a.summary, sizeof(a.summary), "write-heavy from %llu threads%s", threads, why);
      Say(a.advice, sizeof(a.advice),
          "shard the map by key hash, one lock per shard (mapguard::guarded<Map>, "
          "Strategy::kSharded)%s",
          u.iterations ? "; whole-map iterations then take every shard's lock" : "");
    } else {
      a.pattern = "mixed-contended";
      Say(a.summary, sizeof(a.summary), "mixed reads and writes from %llu threads%s", threads, why);
      Say(a.advice, sizeof(a.advice),
          "keep critical sections short; shard by key hash for per-key work, or use "
          "std::shared_mutex if reads grow to dominate (mapguard::guarded<Map> picks at run time)");
    }
  }
  if (u.rehashes >= kRehashesWorthReserve && u.size >= kSizeWorthReserve)
    Say(a.growth, sizeof(a.growth),
        "call reserve(%llu) before filling it: %llu rehashes relinked %llu elements",
        (unsigned long long)u.size, (unsigned long long)u.rehashes, (unsigned long long)u.moved);
  return a;
}

}  // namespace mapguard

#endif  // MAPGUARD_ADVICE_H
