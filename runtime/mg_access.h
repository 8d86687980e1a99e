// Slow paths of the access hot path, shared with the report code.
#ifndef MAPGUARD_ACCESS_H
#define MAPGUARD_ACCESS_H

#include "mg_rt.h"
#include "mg_shadow.h"

namespace mapguard {

int CountOwnRegions(ThreadState *thr, void *map, unsigned kinds, int skip_top, bool counted_only);
int FindRegionSlow(ThreadState *thr, void *map, uint32_t kind);
void RemoveRegionSlow(ThreadState *thr, int index);
void WaitWhileFrozen(MapShadow *s);
bool ReadBeginSlow(ThreadState *thr, MapShadow *s, void *map, const mg_site *site, uint64_t old);
bool WriteBeginSlow(ThreadState *thr, MapShadow *s, void *map, const mg_site *site);
void WriteEndSlow(ThreadState *thr, MapShadow *s, void *map);

}  // namespace mapguard

#endif  // MAPGUARD_ACCESS_H
