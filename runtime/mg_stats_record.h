// The per-map statistics the runtime keeps while counting is on
// (print_stats=1, or a mapguard-sidecar attached), in the one layout both
// readers use: the runtime's print_stats (mg_stats.cpp) and the sidecar,
// which copies the records out of the live process (process_vm_readv, bpf/
// sidecar_records.cpp) instead of tracing every access. Header-only, no
// runtime dependencies; plain integers, which the runtime updates with
// __atomic builtins and readers read as they are (every field is naturally
// aligned, so a read is never torn; a snapshot of a live record may mix
// counts from slightly different moments, each exact on its own).
//
// Who writes what (the reason counting is cheap):
//  - a ThreadUse, one cache line, is claimed once by one thread (a CAS on
//    `thread`) and its counts are written by that thread only: a plain load
//    and store, no locked instruction, no line shared with another writer;
//  - the fields of the record itself change when the map's use changes (a
//    new user, a change of thread, a rehash), not per access.
#ifndef MAPGUARD_STATS_RECORD_H
#define MAPGUARD_STATS_RECORD_H

#include <stdint.h>

#include "mg_advice.h"

namespace mapguard {

// Bumped whenever the layout below changes; the sidecar refuses a runtime
// whose registry names another.
constexpr uint32_t kStatsRecordAbi = 1;

struct alignas(64) ThreadUse {
  uint32_t thread;  // thread number + 1; 0: free
  uint32_t used;    // read, wrote or iterated (not only constructed or destroyed)
  uint64_t reads, writes, iterations, destructions;
  uint64_t shared_writes;  // its writes once the map had two users
};
// Past this, threads are counted, not told apart.
constexpr int kThreadUses = 8;

struct RehashRecord {
  uint64_t old_buckets, new_buckets, size;
};
constexpr int kRehashLog = 16;  // the first rehashes of a map, in order

// How the keys of an unordered map spread over its buckets, measured once
// when it is destroyed (the last moment its nodes are known to be there).
struct KeySpread {
  uint64_t size, buckets, occupied, longest;
  uint64_t hot_buckets;  // the fullest buckets that together hold 90% of the keys
  uint64_t hot_keys;     // the keys in them
  double dispersion;     // chi-square / buckets: about 1 when hashing is uniform
};

struct MapRecord {
  ThreadUse uses[kThreadUses];
  // Threads past `uses` (atomic adds: they share these).
  uint64_t untold_reads, untold_writes, untold_iterations, untold_shared_writes;
  uint64_t untold_threads;    // 1 once a thread found no free ThreadUse
  uint64_t users;             // threads that read, wrote or iterated
  uint64_t switches;          // changes of the thread using it
  uint64_t last_user;         // thread number + 1
  uint64_t contended_locks;   // first accesses under a lock that waited
  uint64_t conflicts;         // reports (and quiet ones) about it
  uint64_t max_readers;
  // Growth (MG_SITE_HASHTABLE_LAYOUT), written by the writer inside its write
  // region (exclusive in a correct program).
  uint64_t has_buckets;
  uint64_t rehashes;  // bucket-count changes after the first write
  uint64_t moved;     // elements relinked by them
  uint64_t max_size;  // largest size seen at a rehash, a slow write end or the destruction
  uint64_t max_buckets;
  uint64_t max_load_milli;  // largest size / bucket_count seen, x1000
  RehashRecord log[kRehashLog];
  uint64_t spread_measured;
  KeySpread spread;
  // The mapguard-sidecar's kernel-side check watches this map (the control
  // word picks it, as of its latest access the runtime saw), and whether the
  // trace budget left some of its regions out (nonzero: yes).
  uint64_t watched, watch_skipped;
  // Addresses in the process: the map, its first counted access's mg_site
  // (type and name), its construction's mg_site (0 if not seen), the next
  // record (all records, newest first).
  uint64_t map, site, created, next;
};

// Where the sidecar finds the records, and the words it writes back: the
// exported symbol mapguard_sidecar_registry (mg_stats.cpp). The runtime
// writes every field but `control` and `final_ack`.
struct SidecarRegistry {
  uint64_t magic;  // kRegistryMagic once initialized
  uint32_t abi;    // kStatsRecordAbi
  uint32_t record_size;
  uint64_t head;     // the newest MapRecord
  uint64_t records;  // how many
  // Written by the sidecar (process_vm_writev), read by the runtime: which
  // maps the kernel-side check watches. Low 32 bits: 1 in N maps (0: none);
  // high 32 bits: at most this many watched regions per second in the whole
  // process (0: no limit). Starts from usdt_map_sample and usdt_trace_budget.
  uint64_t control;
  uint64_t final_seq;  // the runtime's exit hand-over, numbered
  uint64_t final_ack;  // the sidecar writes final_seq here once it has read the records
  // Nonzero: a sidecar tracks this process and acknowledges the exit
  // hand-over, so the runtime may wait for it. The sidecar writes it when it
  // starts tracking the process; usdt_handover=1 (which a launching sidecar
  // sets for its program and everything it starts) sets it from the start.
  // Other processes that map the same runtime see the semaphore up too (the
  // uprobes are per file) but must not wait at exit for nobody.
  uint64_t consumer;
  uint64_t watched_maps;  // maps whose record says watched
  uint64_t fork_generation;
};
constexpr uint64_t kRegistryMagic = 0x6d6170677561726dULL;  // "mapguarm"

inline uint64_t Relaxed(const uint64_t &v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); }
inline uint32_t Relaxed(const uint32_t &v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); }

// The facts the advice (mg_advice.h) takes, from one record: one function
// for print_stats and the sidecar, so both say the same about the same map.
inline MapUsage UsageOf(const MapRecord &m) {
  MapUsage u;
  u.reads = Relaxed(m.untold_reads);
  u.writes = Relaxed(m.untold_writes);
  u.iterations = Relaxed(m.untold_iterations);
  u.shared_writes = Relaxed(m.untold_shared_writes);
  u.threads = Relaxed(m.users);
  for (const ThreadUse &t : m.uses) {
    if (!Relaxed(t.thread)) continue;
    u.reads += Relaxed(t.reads);
    u.writes += Relaxed(t.writes);
    u.iterations += Relaxed(t.iterations);
    u.shared_writes += Relaxed(t.shared_writes);
    if (!Relaxed(t.used)) {
      u.lifecycle_threads++;
      continue;
    }
    if (Relaxed(t.writes)) u.writer_threads++;
    else u.nonwriter_iterations += Relaxed(t.iterations);
  }
  // Threads past the table: each may have written.
  if (Relaxed(m.untold_threads)) u.writer_threads = u.threads;
  u.switches = Relaxed(m.switches);
  u.contended_locks = Relaxed(m.contended_locks);
  u.conflicts = Relaxed(m.conflicts);
  u.size = Relaxed(m.has_buckets) ? Relaxed(m.max_size) : 0;
  u.rehashes = Relaxed(m.rehashes);
  u.moved = Relaxed(m.moved);
  return u;
}

}  // namespace mapguard

#endif  // MAPGUARD_STATS_RECORD_H
