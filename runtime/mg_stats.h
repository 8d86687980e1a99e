// print_stats=1: per-map access statistics at exit, with advice
// (mg_advice.h) on the lock strategy and on growth.
// Nothing here runs unless the option is on (one predictable branch per
// access otherwise).
#ifndef MAPGUARD_STATS_H
#define MAPGUARD_STATS_H

#include "mg_rt.h"
#include "mg_shadow.h"

namespace mapguard {

extern bool g_print_stats;

// Counts one access; `readers_before` is the reader count the begin saw.
MG_NOINLINE void CountAccess(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                             uint32_t readers_before);
// End of a write to a map with MG_SITE_HASHTABLE_LAYOUT, still inside the
// write region: notes a changed bucket count (a rehash) and the load factor.
MG_NOINLINE void NoteBucketCount(MapShadow *s, void *map);
// A report (printed or not) about the map.
void CountConflict(MapShadow *s);
// The map is being destroyed (inside its destruction region, after its begin
// checks), MG_SITE_HASHTABLE_LAYOUT: how its keys spread over its buckets,
// for print_stats and the key_spread probe.
MG_NOINLINE void MeasureKeySpread(MapShadow *s, void *map);
// The map is new or gone: later accesses at this address count for a new map.
void ForgetStats(MapShadow *s);
void PrintStats();

}  // namespace mapguard

#endif
