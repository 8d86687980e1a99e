// The lock-strategy hint for one map's observed access pattern. Shared by the
// runtime's print_stats table and the BPF sidecar's access-pattern report, so
// both give the same advice for the same numbers. Header-only, no runtime
// dependencies.
#ifndef MAPGUARD_LOCK_HINT_H
#define MAPGUARD_LOCK_HINT_H

#include <stdint.h>

namespace mapguard {

// A short name for the pattern: "single-thread", "contended", "read-mostly",
// "write-heavy" or "mixed".
inline const char *AccessPattern(uint64_t reads, uint64_t writes, int threads,
                                 uint64_t conflicts) {
  uint64_t total = reads + writes;
  if (threads <= 1) return "single-thread";
  if (conflicts > 0) return "contended";
  if (writes * 10 <= total) return "read-mostly";
  if (writes * 10 >= total * 3) return "write-heavy";
  return "mixed";
}

// `reads` counts read and iteration regions; `conflicts` is how often two
// threads' accesses overlapped (0 where the caller cannot know).
inline const char *LockStrategyHint(uint64_t reads, uint64_t writes, int threads,
                                    uint64_t conflicts) {
  const char *p = AccessPattern(reads, writes, threads, conflicts);
  if (p[0] == 's') return "one thread: no lock needed";
  if (p[0] == 'c')
    return "contended: accesses from several threads overlapped; put every access under one "
           "lock (std::shared_mutex if reads dominate)";
  if (p[0] == 'r')
    return "read-mostly from several threads: a reader-writer lock (std::shared_mutex) or a "
           "copy-on-write snapshot";
  if (p[0] == 'w') return "write-heavy from several threads: shard the map by key (one lock per shard)";
  return "mixed reads and writes from several threads: one mutex, held for short critical "
         "sections";
}

}  // namespace mapguard

#endif  // MAPGUARD_LOCK_HINT_H
