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
// thread owns, and steps A0-A5 for a read of a read-shared map (a map
// several threads read, AnnounceRead). Anything else, found before any side
// effect or at B3/E3/A3, is one call into the runtime's slow entries below,
// the same code every other case runs, so the protocols themselves live in
// the runtime only.
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
  kAnnounced,       // a read announced on a read-shared map (A1-A3 done): nothing to count
};

// This thread's latest read, for the check-then-insert hint of a report
// about its next write.
MG_ALWAYS_INLINE void NoteLastRead(ThreadState *thr, void *map, const mg_site *site) {
  thr->last_read_map.store(map, std::memory_order_relaxed);
  thr->last_read_site.store(site, std::memory_order_relaxed);
  thr->last_read_lock_state = thr->lock_state;
}

constexpr uint64_t kAnnounceMask = state::kAnnounce | state::kWriterMask | state::kFrozen;

// Steps A1-A3 (mg_ownership.cpp) for the read region just pushed as counted
// on a map this thread does not own: true if the map is read-shared and the
// region is announced on this thread's stack only; false if the caller must
// count it.
MG_ALWAYS_INLINE bool AnnounceRead(ThreadState *thr, MapShadow *s) {
  if ((s->state.load(std::memory_order_relaxed) & kAnnounceMask) != state::kAnnounce) return false;
  int top = thr->regions.Depth() - 1;
  if (MG_UNLIKELY(top >= RegionStack::kInline)) return false;
  std::atomic<uint8_t> &mode = thr->regions.Inline(top).mode;
  mode.store(kRegionAnnounced, std::memory_order_relaxed);  // A1
  // A2: on x86 a locked instruction on this thread's own line, cheaper
  // than a fence.
  thr->regions.RepublishDepth(top + 1);
  // A3; also acquire: a writer that has left published its happens-before record.
  if (MG_LIKELY((s->state.load(std::memory_order_seq_cst) & kAnnounceMask) == state::kAnnounce))
    return true;
  mode.store(kRegionCounted, std::memory_order_relaxed);
  return false;
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

// Pops the tombstoned innermost region `top`; tombstones below it (regions
// a signal handler ended out of order) are the runtime's to trim.
MG_ALWAYS_INLINE void PopTombstoned(ThreadState *thr, int top) {
  if (MG_UNLIKELY(!thr->regions.PopInlineTop(top))) MG_FP(end_trim)(thr);
}

// A read of a map several threads use (ownership revoked), nothing traced
// or counted for statistics, room on the region stack: the begin the runtime
// would make (push as counted, A0-A3 in AnnounceRead, the happens-before
// check), inline, for the common case of a read-shared map. A map that is
// not read-shared (A0) or a writer that came (A3) goes on in the runtime
// with the region pushed as counted, as there.
MG_ALWAYS_INLINE void AnnouncedReadBeginFast(ThreadState *thr, MapShadow *s, void *map,
                                             const mg_site *site, int d, uintptr_t caller_sp) {
  if (MG_UNLIKELY(!thr->regions.TryPushInline(d, map, site, kRegionCounted, caller_sp)))
    return MG_FP(begin_looked_up)(thr, s, map, site, state::kReaderOne, caller_sp);
  if (MG_UNLIKELY(!AnnounceRead(thr, s)))
    return MG_FP(finish_begin)(thr, s, map, site, state::kReaderOne, Opened::kCountNow);
  NoteLastRead(thr, map, site);
  if (g_detect_hb && !HbReadIsCurrent(thr, s, CurrentEpoch(thr)))
    return MG_FP(finish_begin)(thr, s, map, site, state::kReaderOne, Opened::kAnnounced);
}

// The end of an announced read that is on top of the stack, not traced:
// A4 (a frozen map goes to the runtime, which waits) and A5, as
// EndAnnouncedRead in mg_access.cpp; anything else, the runtime's end.
MG_ALWAYS_INLINE void AnnouncedReadEndFast(ThreadState *thr, MapShadow *s, void *map,
                                           const mg_site *site) {
  const int top = thr->regions.Depth() - 1;
  Region *r = thr->regions.InlineTopIs(top, map, site, kRegionAnnounced);
  if (MG_UNLIKELY(!r || (s->state.load(std::memory_order_acquire) & state::kFrozen)))  // A4
    return MG_FP(end_looked_up)(thr, s, map, site, false);
  // A5. A release: a writer whose scan finds the entry gone also sees this
  // read's happens-before record.
  r->map.store(nullptr, std::memory_order_release);
  PopTombstoned(thr, top);
}

// A map this thread owns, nothing traced, room on the region stack: B1-B3
// and the inline happens-before check, and return. `unit`: kReaderOne for a
// read, 0 for a write.
MG_ALWAYS_INLINE void OwnedBeginFast(void *map, const mg_site *site, uint64_t unit,
                                     uintptr_t caller_sp) {
  MapShadow *s = g_shadow.GetIfMapped(map);
  ThreadState *thr = t_thread;
  if (MG_UNLIKELY(!s || !thr)) return MG_FP(begin_full)(map, site, unit, caller_sp);
  const uint32_t me = thr->slot + 1;
  const int d = thr->regions.Depth();
  if (MG_UNLIKELY(d >= RegionStack::kInline || MG_PROBE_ACTIVE(region_begin)))
    return MG_FP(begin_looked_up)(thr, s, map, site, unit, caller_sp);
  const uint32_t owner = s->owner.load(std::memory_order_relaxed);
  if (MG_UNLIKELY(owner != me)) {
    if (unit && owner == kOwnerShared && !g_print_stats)
      return AnnouncedReadBeginFast(thr, s, map, site, d, caller_sp);
    return MG_FP(begin_looked_up)(thr, s, map, site, unit, caller_sp);
  }
  if (MG_UNLIKELY(!thr->regions.TryPushInline(d, map, site, kRegionOwned, caller_sp)))  // B1
    return MG_FP(begin_looked_up)(thr, s, map, site, unit, caller_sp);
  std::atomic_signal_fence(std::memory_order_seq_cst);  // B2
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
  const uint32_t owner = s->owner.load(std::memory_order_relaxed);
  if (MG_UNLIKELY(owner != thr->slot + 1)) {
    if (!write && owner == kOwnerShared) return AnnouncedReadEndFast(thr, s, map, site);
    return MG_FP(end_looked_up)(thr, s, map, site, write);
  }
  const int top = thr->regions.Depth() - 1;
  Region *r = thr->regions.InlineTopIs(top, map, site, kRegionOwned);
  if (MG_UNLIKELY(!r || (write && (g_print_stats || MG_PROBE_ACTIVE(rehash)))))
    return MG_FP(end_looked_up)(thr, s, map, site, write);
  r->map.store(nullptr, std::memory_order_relaxed);     // E1
  std::atomic_signal_fence(std::memory_order_seq_cst);  // E2
  if (MG_UNLIKELY(s->owner.load(std::memory_order_relaxed) != thr->slot + 1))  // E3
    return MG_FP(end_after_owned_tombstone)(thr, s, top, site->kind);
  PopTombstoned(thr, top);
}

}  // namespace mapguard

#endif  // MAPGUARD_FAST_PATH_H
