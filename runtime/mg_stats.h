// Per-map statistics: print_stats=1 prints them at exit with advice
// (mg_advice.h) on the lock strategy and on growth; mapguard-sidecar reads
// them out of the live process (mg_stats_record.h has the layout and who
// writes what). Counting is on while either wants it (Counting()); off, it
// costs one predictable branch per access.
//
// The counting protocol, in one place:
//  C1  Counting is on while the stats_handover semaphore is nonzero (the
//      kernel raises it per attached sidecar; print_stats=1 adds one itself).
//      It can rise or drop between any two accesses: an access counts if
//      counting was on when its begin asked.
//  C2  A thread's access to a map is counted exactly once: inline (its
//      count cache entry holds, CountsInline, asked before any side effect;
//      CountNow once no slow call can follow) or by the runtime
//      (CountAccess, from every slow begin), never both.
//  C3  A counter (ThreadUse) is written by its thread only, with one
//      instruction: a signal handler on that thread, counting too, cannot
//      split it. A cache entry is filled with its map set to "being filled"
//      first and to the map last; a handler that finds an entry being
//      filled counts in the runtime and leaves the entry alone. A counter is
//      read between two reads of the entry's map, so a handler that refills
//      the entry mid-access makes the access miss, never count elsewhere.
//  C4  A cache entry holds while its map's record, the control word, the
//      countdown and, for a write, "this thread is the last user and the map
//      had one user" are what they were when filled. A map the control word
//      watches is cached only when its begin found the trace budget spent
//      (its probes must fire otherwise, before the push).
//  C5  Exit hand-over: a process whose registry names a consumer, with the
//      semaphore up, fires stats_handover(registry, seq) and waits until
//      final_ack >= seq (the sidecar has read every record), the semaphore
//      drops (the sidecar left), or the wait's bound passes (2 s at exit,
//      0.3 s after a halting report). A fork child starts its records from
//      zero (StatsAfterForkInChild) and hands over on its own.
#ifndef MAPGUARD_STATS_H
#define MAPGUARD_STATS_H

#include "mg_probes.h"
#include "mg_rt.h"
#include "mg_shadow.h"
#include "mg_stats_record.h"

extern "C" mapguard::SidecarRegistry mapguard_sidecar_registry;

namespace mapguard {

extern bool g_print_stats;

struct MapStats : MapRecord {};

// Whether accesses are counted: print_stats=1 (which raises the semaphore
// itself at start-up, InitStats) or a sidecar attached to the hand-over
// probe. One load of the probes' cache line.
#ifndef MAPGUARD_NO_PROBES
MG_ALWAYS_INLINE bool Counting() { return MG_UNLIKELY(mapguard_stats_handover_semaphore != 0); }
#else
MG_ALWAYS_INLINE bool Counting() { return MG_UNLIKELY(g_print_stats); }
#endif

// Whether this thread's access to `map` counts inline, in the counter
// CountAccess cached for it (ThreadState::count_cache); if not, the access
// goes to the runtime, which counts it. An entry holds while the map's record, the
// sidecar's control word and, for a write, "one user so far" are what they
// were when it was filled, for a number of accesses (CountCacheEntry::left:
// every kCountRecheck-th access goes to the runtime, which notes a change of
// the thread using the map); a write counts inline only while this thread is
// the map's last user, so the changes of hands around writes, which the
// advice's hand-off test weighs, are all counted;
// a watched map is cached only while the trace budget is spent (its region
// probes fire in the runtime). `left` is decremented only from 2 or more:
// a handler that refills the entry between the load and the store gets a
// value of at least 1 stored over its own, never a wrap to 2^32 - 1 (the
// map would never be looked at again). Asked before any side effect;
// CountNow counts once the access can no longer go to the runtime (which
// would count it again).
MG_ALWAYS_INLINE bool CountsInline(ThreadState *thr, MapShadow *s, void *map, bool write) {
  CountCacheEntry &e = thr->count_cache[CountCacheIndex(map)];
  return MG_LIKELY(e.map == map && e.stats == s->stats.load(std::memory_order_relaxed) &&
                   e.control ==
                       __atomic_load_n(&mapguard_sidecar_registry.control, __ATOMIC_RELAXED) &&
                   (!write || (e.writes && __atomic_load_n(&e.stats->last_user, __ATOMIC_RELAXED) ==
                                               e.me)) &&
                   !(thr->waited_for & 1) && e.left > 1 && (e.left--, true));
}
// Only this thread writes its ThreadUse: no locked instruction. One
// instruction, though, so that a signal handler on this thread that counts
// the same map cannot fall between a load and a store.
MG_ALWAYS_INLINE void BumpCounter(uint64_t *c) {
#if defined(__x86_64__)
  asm volatile("incq %0" : "+m"(*c));
#else
  __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
#endif
}

// Counts one access; `readers_before` is the reader count the begin saw.
MG_NOINLINE void CountAccess(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                             uint32_t readers_before);
// End of a write to a map with MG_SITE_HASHTABLE_LAYOUT, still inside the
// write region: notes a changed bucket count (a rehash), the size and the
// load factor.
MG_NOINLINE void NoteBucketCount(MapShadow *s, void *map);
// Whether a write's end must go to NoteBucketCount: counting, a hash table,
// and its bucket count is not the one the last write left.
MG_ALWAYS_INLINE bool BucketCountChanged(MapShadow *s, void *map, const mg_site *site) {
  return (site->flags & MG_SITE_HASHTABLE_LAYOUT) &&
         s->buckets.load(std::memory_order_relaxed) !=
             HashtableBucketCount(map) + 1;
}
// A report (printed or not) about the map.
void CountConflict(MapShadow *s);
// The map is being destroyed (inside its destruction region, after its begin
// checks), MG_SITE_HASHTABLE_LAYOUT: how its keys spread over its buckets,
// for print_stats and the key_spread probe.
MG_NOINLINE void MeasureKeySpread(MapShadow *s, void *map);
// The map is new or gone: for print_stats, later accesses at this address
// count for a new map.
void ForgetStats(MapShadow *s);
// A map is built at this address (after ForgetStats): the per-address
// record's facts of who uses the map start again.
void NewMapStats(MapShadow *s);
void PrintStats();

// The sidecar's part (mg_stats_record.h, SidecarRegistry): whether the
// control word has the kernel watch `map`; whether the trace budget has room
// for one more watched region this second (if not, the thread notes the map
// in watch_budget_skipped, for CountAccess).
bool MapIsWatched(const void *map);
bool TakeWatchBudget(ThreadState *thr);

void InitStats();
void StatsAfterForkInChild();
// At exit: lets an attached sidecar read the records (waits at most
// max_wait_us for it).
void HandOverStats(int max_wait_us);

}  // namespace mapguard

#endif
