// Happens-before tracking (detect=hb): vector clocks per thread, a clock per
// synchronization object, and FastTrack-style last-access epochs per map.
//
// A pair of accesses to one map from different threads, at least one a
// write, is a race unless one happens before the other: a release (unlock,
// store-release, thread exit, ...) on some object by the first thread,
// followed by an acquire (lock, load-acquire, join, ...) of the same object
// by the second. Timing plays no part, so such a race is reported on every
// run, even when the accesses are seconds apart.
#ifndef MAPGUARD_HB_H
#define MAPGUARD_HB_H

#include "mg_rt.h"
#include "mg_shadow.h"

namespace mapguard {

struct SyncVar {
  SpinLock lock;
  VectorClock vc;
};

// The current thread's release/acquire on synchronization object `addr`.
// `held_exclusively`: the caller holds `addr` as a lock no other thread can
// hold at the same time (a mutex, a spin lock, a write-locked rwlock), so
// every release and acquire on it is already serialized by the lock itself
// and the SyncVar needs no lock of its own.
void Release(ThreadState *thr, const void *addr, bool held_exclusively = false);
void Acquire(ThreadState *thr, const void *addr, bool held_exclusively = false);

// Sets up a new thread's clock: what its creator knew (`parent`, may be
// null for the main thread), then a fresh epoch of its own in `slot`.
void InitThreadClock(ThreadState *thr, const VectorClock *parent);
// Remembers the slot's last clock so the next thread in it continues from it.
void RetireThreadClock(ThreadState *thr);

// The per-map checks, called from the region begin/end hot path when
// g_detect_hb. Report an unsynchronized pair, or record this access.
void HbOnRead(ThreadState *thr, MapShadow *s, void *map, const mg_site *site);
void HbOnWrite(ThreadState *thr, MapShadow *s, void *map, const mg_site *site);
// The map is gone (destroyed) or new (constructed): forget its history.
void HbReset(MapShadow *s);

MG_ALWAYS_INLINE uint64_t CurrentEpoch(ThreadState *thr) {
  return MakeEpoch(thr->slot, thr->vc.Get(thr->slot));
}

}  // namespace mapguard

#endif
