// USDT probes (provider "mapguard") for the BPF sidecar in bpf/.
//
// Every probe has a semaphore that the kernel raises while a tracer is
// attached (uprobe ref_ctr_offset; libbpf's attach_usdt sets it). The hot
// path only tests the semaphore: untraced, a probe costs one load of a
// read-mostly global and a not-taken branch, and its arguments are never
// computed. Traced, everything happens in the NOINLINE Trace* functions.
//
// Ordering invariant the sidecar's overlap check relies on: a region's begin
// probe fires before the region is pushed on the thread's stack (and so
// before it can enter the map's state word, directly or by an ownership
// revocation), and its end probe after it was popped, so the kernel's view of
// every region contains the runtime's. Any overlap the runtime sees, the
// kernel sees too.
#ifndef MAPGUARD_PROBES_H
#define MAPGUARD_PROBES_H

#include "mg_rt.h"

namespace mapguard {
struct MapShadow;
}

extern "C" {
// Names fixed by <sys/sdt.h>: <provider>_<probe>_semaphore.
extern volatile unsigned short mapguard_region_begin_semaphore;
extern volatile unsigned short mapguard_region_end_semaphore;
extern volatile unsigned short mapguard_map_create_semaphore;
extern volatile unsigned short mapguard_map_destroy_semaphore;
extern volatile unsigned short mapguard_rehash_semaphore;
extern volatile unsigned short mapguard_lock_contended_semaphore;
extern volatile unsigned short mapguard_guarded_switch_semaphore;
extern volatile unsigned short mapguard_key_spread_semaphore;
extern volatile unsigned short mapguard_watched_begin_semaphore;
extern volatile unsigned short mapguard_watched_end_semaphore;
extern volatile unsigned short mapguard_stats_handover_semaphore;
}

#ifndef MAPGUARD_NO_PROBES
#define MG_PROBE_ACTIVE(name) MG_UNLIKELY(mapguard_##name##_semaphore != 0)
#else
// bench/run.py's baseline for "what do untraced probes cost": the same
// runtime with every probe check compiled out.
#define MG_PROBE_ACTIVE(name) false
#endif

namespace mapguard {

// Conflict kinds as the probes number them (the overlap kind, whichever
// detector found it): 0 writes, 1 read and write, 2 iteration and write.
// Flags of the conflict probe:
enum ConflictProbeFlags : uint32_t {
  kProbeHappensBefore = 1,  // found by detect=hb, the accesses need not overlap
  kProbeSuppressed = 2,     // matched a suppression: not printed
  kProbeDuplicate = 4,      // dedup: same pair of source locations as before
  kProbeHalting = 8,        // the process stops after this report
  kProbeWatched = 16,       // the sidecar's control word has the kernel watch this map
};

// Which begin probe a region's begin fired (Region::traced), so its end fires
// the matching end probe exactly when its begin fired one:
//  - region_begin/region_end: every region (read and iteration regions 1 in
//    usdt_read_sample), while a tracer is attached to them (the sidecar's
//    --full-trace test mode, bpftrace);
//  - watched_begin/watched_end: only the regions of maps the sidecar's
//    control word watches (MapIsWatched, mg_stats.h), within the trace
//    budget. The inlined fast path does not test their semaphores: a watched
//    map is never in a thread's count cache, so its accesses reach the
//    runtime while counting is on (the sidecar attaches both).
enum TraceKind : uint8_t { kTraceNone = 0, kTraceRegion = 1, kTraceWatched = 2 };
// Fires the begin probes wanted just before the region is pushed; returns
// which fired (a mask of TraceKind). The ends fire just after the region is
// popped.
MG_NOINLINE uint8_t TraceRegionBegin(ThreadState *thr, MapShadow *s, void *map,
                                     const mg_site *site);
MG_NOINLINE void TraceRegionEnd(void *map, uint32_t kind, uint8_t traced);
// Whether a begin probe may be wanted (the test before TraceRegionBegin).
MG_ALWAYS_INLINE bool BeginProbesActive() {
  return MG_PROBE_ACTIVE(region_begin) || MG_PROBE_ACTIVE(watched_begin);
}
MG_NOINLINE void TraceMapCreate(void *map, const mg_site *site);
MG_NOINLINE void TraceMapDestroy(void *map);
void TraceRehash(void *map, uint64_t old_buckets, uint64_t new_buckets, uint64_t size);
void TraceConflict(void *map, uint32_t kind, int tid, int other_tid, const mg_site *site,
                   const mg_site *other_site, uint32_t flags);
void TraceInit();
// A lock acquisition had to wait (the pattern facts of mg_advice.h).
void TraceLockContended();
// How a destroyed hash map's keys spread over its buckets (mg_stats.cpp).
void TraceKeySpread(void *map, uint64_t keys, uint64_t buckets, uint64_t occupied,
                    uint64_t longest, uint64_t dispersion_milli);
// mapguard::guarded switched strategy (interface.h).
void TraceGuardedSwitch(const void *guard, unsigned from, unsigned to);
// The exit hand-over of the statistics records (HandOverStats, mg_stats.h).
void TraceStatsHandover(const void *registry, uint64_t seq);

}  // namespace mapguard

#endif  // MAPGUARD_PROBES_H
