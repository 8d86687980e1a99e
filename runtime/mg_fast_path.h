// The owned fast path of the four hot entry points (read and write, begin
// and end), written once and compiled twice:
//  - into the runtime's own __mapguard_read_begin & co. (mg_access.cpp),
//    which instrumented code calls at -O0 and with fast-path=off;
//  - into LLVM bitcode (mg_fast_path.cpp -> mapguard_fast_path.bc), which
//    the plugin links into every module it instruments at -O1 and above, so
//    the common case runs inline in the user's function with no call at all.
//
// The fast path does steps B1-B3 / E1-E3 of the ownership protocol
// (mg_ownership.cpp) and the same-epoch happens-before check for a map this
// thread owns. Anything else, found before any side effect or at B3/E3, is
// one call into the runtime's slow entries below, the same code every other
// case runs, so the protocol itself lives in the runtime only.
//
// Inlined, this code reads the runtime's globals (t_thread, g_shadow,
// g_detect_hb, g_print_stats, two probe semaphores) and the layouts of
// ThreadState, Region and MapShadow. The slow entries' names carry
// MG_FAST_PATH_ABI, a hash of the headers those come from (runtime/
// CMakeLists.txt): an object whose inlined fast path was built from other
// headers than the runtime it is linked with fails to link, naming an
// undefined __mapguard_fp_<hash>_* symbol, instead of misreading memory.
#ifndef MAPGUARD_FAST_PATH_H
#define MAPGUARD_FAST_PATH_H

#include "mg_hb.h"
#include "mg_probes.h"
#include "mg_rt.h"
#include "mg_shadow.h"
#include "mg_stats.h"

#ifndef MG_FAST_PATH_ABI
#error "MG_FAST_PATH_ABI must be defined (runtime/CMakeLists.txt computes it)"
#endif
#define MG_FP_CONCAT2(a, b, c) a##b##c
#define MG_FP_CONCAT(a, b, c) MG_FP_CONCAT2(a, b, c)
// __mapguard_fp_<abi>_name
#define MG_FP(name) MG_FP_CONCAT(__mapguard_fp_, MG_FAST_PATH_ABI, _##name)

namespace mapguard {

enum class Opened {
  kOwned,           // the thread owns the map: the region stays out of the state word
  kCountNow,        // shared: the caller counts it in the state word
  kAlreadyCounted,  // a revoker counted it (or it is nested): only check for conflicts
};

// Publishes the region for a revoker and for reports: mode, site, then map
// (release), then depth (release), so whoever reads `map` with acquire and
// finds it sees the rest (see mg_ownership.cpp).
// `d`: the thread's depth, as just loaded.
MG_ALWAYS_INLINE void PushRegionAt(ThreadState *thr, int d, void *map, const mg_site *site,
                                   RegionMode mode, bool traced, uintptr_t caller_sp) {
  if (MG_LIKELY(d < kMaxRegions)) {
    Region &r = thr->regions[d];
    r.mode.store(mode, std::memory_order_relaxed);
    r.site.store(site, std::memory_order_relaxed);
    r.traced = traced;
    r.caller_sp = caller_sp;
    r.map.store(map, std::memory_order_release);
  }
  thr->depth.store(d + 1, std::memory_order_release);
}

// This thread's latest read, for the check-then-insert hint of a report
// about its next write.
MG_ALWAYS_INLINE void NoteLastRead(ThreadState *thr, void *map, const mg_site *site) {
  thr->last_read_map.store(map, std::memory_order_relaxed);
  thr->last_read_site.store(site, std::memory_order_relaxed);
  thr->last_read_lock_state = thr->lock_state;
}

}  // namespace mapguard

// The runtime's slow entries (mg_access.cpp). `unit`: state::kReaderOne for
// a read, 0 for a write. `caller_sp`: the stack pointer of the instrumented
// function at the map call (CloseAbandonedRegions compares it with a
// longjmp's target).
extern "C" {
// The map's shadow region is not mapped yet, or the thread is new.
void MG_FP(begin_full)(void *map, const mg_site *site, uint64_t unit, uintptr_t caller_sp);
// Not the owned case (a shared map, a full stack, a traced probe): the whole
// begin, with the lookups the fast path made.
void MG_FP(begin_looked_up)(mapguard::ThreadState *thr, mapguard::MapShadow *s, void *map,
                            const mg_site *site, uint64_t unit, uintptr_t caller_sp);
// B3 saw a revocation under way: settle, then the rest of the begin.
void MG_FP(begin_after_owned_push)(mapguard::ThreadState *thr, mapguard::MapShadow *s, void *map,
                                   const mg_site *site, uint64_t unit);
// The owned region is pushed; statistics or happens-before have work to do.
void MG_FP(finish_begin)(mapguard::ThreadState *thr, mapguard::MapShadow *s, void *map,
                         const mg_site *site, uint64_t unit, mapguard::Opened opened);
void MG_FP(end_full)(void *map, const mg_site *site, bool write);
// Not this begin's owned region on top: the whole end, with the lookups made.
void MG_FP(end_looked_up)(mapguard::ThreadState *thr, mapguard::MapShadow *s, void *map,
                          const mg_site *site, bool write);
// E3 saw a revocation under way (the entry is tombstoned already).
void MG_FP(end_after_owned_tombstone)(mapguard::ThreadState *thr, mapguard::MapShadow *s,
                                      int region, uint32_t kind);
// The entry below the popped one is a tombstone: drop those too.
void MG_FP(end_trim)(mapguard::ThreadState *thr);
}

namespace mapguard {

// A map this thread owns, nothing traced, room on the region stack: B1-B3
// and the inline happens-before check, and return. `unit`: kReaderOne for a
// read, 0 for a write.
MG_ALWAYS_INLINE void OwnedBeginFast(void *map, const mg_site *site, uint64_t unit,
                                     uintptr_t caller_sp) {
  MapShadow *s = g_shadow.GetIfMapped(map);
  ThreadState *thr = t_thread;
  if (MG_UNLIKELY(!s || !thr)) return MG_FP(begin_full)(map, site, unit, caller_sp);
  const uint32_t me = thr->slot + 1;
  const int d = thr->depth.load(std::memory_order_relaxed);
  if (MG_UNLIKELY(s->owner.load(std::memory_order_relaxed) != me || d >= kMaxRegions ||
                  MG_PROBE_ACTIVE(region_begin)))
    return MG_FP(begin_looked_up)(thr, s, map, site, unit, caller_sp);
  PushRegionAt(thr, d, map, site, kRegionOwned, false, caller_sp);  // B1
  std::atomic_signal_fence(std::memory_order_seq_cst);         // B2
  if (MG_UNLIKELY(s->owner.load(std::memory_order_relaxed) != me))  // B3
    return MG_FP(begin_after_owned_push)(thr, s, map, site, unit);
  if (unit) NoteLastRead(thr, map, site);
  if (MG_UNLIKELY(g_print_stats))
    return MG_FP(finish_begin)(thr, s, map, site, unit, Opened::kOwned);
  if (g_detect_hb) {
    const uint64_t epoch = CurrentEpoch(thr);
    if (unit ? !HbReadIsCurrent(thr, s, epoch) : !HbWriteIsCurrent(s, epoch))
      return MG_FP(finish_begin)(thr, s, map, site, unit, Opened::kOwned);
  }
}

// The innermost region is this very begin's (same map and site), owned and
// not traced; for a write, no statistics or rehash probe wants the map's
// bucket count: E1-E3 and the pop.
MG_ALWAYS_INLINE void OwnedEndFast(void *map, const mg_site *site, bool write) {
  // Inlined, the map call's own memory accesses must stay inside the region:
  // nothing before this point may sink below E1 (at the begin, B2 keeps them
  // below the push).
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (MG_UNLIKELY(!map)) return;  // the region was not active on this path
  MapShadow *s = g_shadow.GetIfMapped(map);
  ThreadState *thr = t_thread;
  if (MG_UNLIKELY(!s || !thr)) return MG_FP(end_full)(map, site, write);
  // A map this thread does not own (any more): its regions are not owned.
  if (MG_UNLIKELY(s->owner.load(std::memory_order_relaxed) != thr->slot + 1))
    return MG_FP(end_looked_up)(thr, s, map, site, write);
  const int top = thr->depth.load(std::memory_order_relaxed) - 1;
  if (MG_UNLIKELY(top < 0 || top >= kMaxRegions))
    return MG_FP(end_looked_up)(thr, s, map, site, write);
  Region &r = thr->regions[top];
  if (MG_UNLIKELY(r.map.load(std::memory_order_relaxed) != map ||
                  r.site.load(std::memory_order_relaxed) != site ||
                  r.mode.load(std::memory_order_relaxed) != kRegionOwned || r.traced ||
                  (write && (g_print_stats || MG_PROBE_ACTIVE(rehash)))))
    return MG_FP(end_looked_up)(thr, s, map, site, write);
  r.map.store(nullptr, std::memory_order_relaxed);      // E1
  std::atomic_signal_fence(std::memory_order_seq_cst);  // E2
  if (MG_UNLIKELY(s->owner.load(std::memory_order_relaxed) != thr->slot + 1))  // E3
    return MG_FP(end_after_owned_tombstone)(thr, s, top, site->kind);
  if (MG_LIKELY(top == 0 || thr->regions[top - 1].map.load(std::memory_order_relaxed))) {
    thr->depth.store(top, std::memory_order_release);
    return;
  }
  MG_FP(end_trim)(thr);
}

}  // namespace mapguard

#endif  // MAPGUARD_FAST_PATH_H
