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
// effect or at B3/E3/A3, is one call into the runtime's slow entries below
// (begin_slow, end_slow), the same code every other case runs, so the
// protocols themselves live in the runtime only. Where the plugin can pair a
// begin with its end (the begin dominates it), the begin returns a token
// naming the stack entry it pushed and the end takes it (RegionToken), so
// the end neither looks for its region nor checks the owner before E1.
//
// Inlined, this code reads the runtime's globals (t_thread, g_shadow,
// g_detect_hb, the count cache, three probe semaphores, the sidecar's
// control word) and the layouts of
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

namespace mapguard {

// What an inlined begin hands its end (the plugin pairs them when the begin
// dominates the end, pass/FastPathLink.cpp), so the end need not look for
// its region: kTokenRuntime, the runtime opened it (or nothing was opened)
// and the runtime's end finds it; else the inline index of the region it
// pushed, times two, plus one if it is an announced read (owned otherwise).
using RegionToken = long;
constexpr RegionToken kTokenRuntime = -1;
MG_ALWAYS_INLINE RegionToken OwnedToken(int index) { return RegionToken(index) << 1; }
MG_ALWAYS_INLINE RegionToken AnnouncedToken(int index) { return (RegionToken(index) << 1) | 1; }

// Why an inlined begin goes on in the runtime (the one slow call it makes).
enum BeginSlow : int {
  kBeginDone = 0,         // nothing left: the fast path did it all
  kBeginFull,             // no thread state yet, or the map's shadow not mapped
  kBeginLookedUp,         // not the owned case (a shared map, a full stack, a
                          // traced probe): the whole begin, lookups made
  kBeginAfterOwnedPush,   // B3 saw a revocation under way: settle, then the rest
  kBeginFinishOwned,      // pushed owned: statistics or happens-before have work
  kBeginFinishCounted,    // pushed counted, not announced (A0/A3): count it
  kBeginFinishAnnounced,  // announced: the happens-before check
};
// Why an inlined end goes on in the runtime.
enum EndSlow : int {
  kEndFull = 1,            // no lookups made (the runtime's end finds everything)
  kEndLookedUp,            // the whole end, with the lookups made
  kEndAfterOwnedTombstone, // E3 saw a revocation (the entry is tombstoned)
  kEndTrim,                // popped; a tombstone below: drop those too
};

}  // namespace mapguard

// The runtime's slow entries (mg_access.cpp), one per side, with the
// lookups the fast path made (`thr` or `s` may be null: kBeginFull and
// kEndFull look them up again). `unit`: state::kReaderOne for a read, 0 for
// a write. `caller_sp`: the stack pointer of the instrumented function at
// the map call (CloseAbandonedRegions compares it with a longjmp's target).
// `why`: a BeginSlow / EndSlow. `token`: what the fast path pushed (for the
// finish cases). begin_slow returns the token for the end. (Fewer
// arguments, the runtime looking everything up again, measured 12 more
// instructions per inlined find: the inlined code keeps more values alive.)
extern "C" {
long MG_FP(begin_slow)(mapguard::ThreadState *thr, mapguard::MapShadow *s, void *map,
                       const mg_site *site, uint64_t unit, uintptr_t caller_sp, int why,
                       long token);
// `index`: the region's inline index (kEndAfterOwnedTombstone, kEndTrim).
void MG_FP(end_slow)(mapguard::ThreadState *thr, mapguard::MapShadow *s, void *map,
                     const mg_site *site, bool write, int why, int index);
// Counts an access whose count cache entry changed under it (CountNow).
void MG_FP(count_slow)(mapguard::ThreadState *thr, mapguard::MapShadow *s, void *map,
                       const mg_site *site);
}

namespace mapguard {

// Counts an access CountsInline accepted: the cached counter, taken between
// two reads of the entry's map that both name this map (a signal handler on
// this thread may have refilled the entry for another map since; then the
// runtime counts it). Looked up again here rather than kept from
// CountsInline: a pointer live across the whole begin costs the begin
// registers even when nothing counts. The three reads are atomic (relaxed:
// plain moves) because a signal fence orders atomics only: clang moved a
// plain read of the counter below the second read of the map, and a handler
// that refilled the entry in between had the access counted for its map.
MG_ALWAYS_INLINE void CountNow(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                               bool write) {
  CountCacheEntry &e = thr->count_cache[CountCacheIndex(map)];
  if (MG_LIKELY(__atomic_load_n(&e.map, __ATOMIC_RELAXED) == map)) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    ThreadUse *use = __atomic_load_n(&e.use, __ATOMIC_RELAXED);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (MG_LIKELY(__atomic_load_n(&e.map, __ATOMIC_RELAXED) == map))
      return BumpCounter(write ? &use->writes : &use->reads);
  }
  MG_FP(count_slow)(thr, s, map, site);
}

}  // namespace mapguard

namespace mapguard {

// A write's end goes to the runtime when the rehash probe is traced, or
// while counting when the map's bucket count changed (NoteBucketCount).
MG_ALWAYS_INLINE bool WriteEndWantsRuntime(MapShadow *s, void *map, const mg_site *site) {
  return MG_UNLIKELY(MG_PROBE_ACTIVE(rehash)) ||
         (Counting() && BucketCountChanged(s, map, site));
}

// A read of a map several threads use (ownership revoked), nothing traced
// or counted for statistics, room on the region stack: the begin the runtime
// would make (push as counted, A0-A3 in AnnounceRead, the happens-before
// check), inline, for the common case of a read-shared map. A map that is
// not read-shared (A0) or a writer that came (A3) goes on in the runtime
// with the region pushed as counted, as there.
MG_ALWAYS_INLINE RegionToken AnnouncedReadBeginFast(ThreadState *thr, MapShadow *s, void *map,
                                                    const mg_site *site, int d, uintptr_t caller_sp) {
  const int index = thr->regions.TryPushInline(d, map, site, kRegionCounted, caller_sp);
  if (MG_UNLIKELY(index < 0))
    return MG_FP(begin_slow)(thr, s, map, site, state::kReaderOne, caller_sp, kBeginLookedUp,
                             kTokenRuntime);
  if (MG_UNLIKELY(!AnnounceRead(thr, s)))
    return MG_FP(begin_slow)(thr, s, map, site, state::kReaderOne, caller_sp, kBeginFinishCounted,
                             kTokenRuntime);
  NoteLastRead(thr, map, site);
  // The runtime's check leaves the region announced where it is.
  if (g_detect_hb && !HbReadIsCurrent(thr, s, CurrentEpoch(thr)))
    return MG_FP(begin_slow)(thr, s, map, site, state::kReaderOne, caller_sp, kBeginFinishAnnounced,
                             AnnouncedToken(index));
  if (Counting()) CountNow(thr, s, map, site, false);
  return AnnouncedToken(index);
}

// A map this thread owns, nothing traced, room on the region stack: B1-B3
// and the inline happens-before check. `unit`: kReaderOne for a read, 0 for
// a write. Every other case is one call into the runtime's begin_slow.
MG_ALWAYS_INLINE RegionToken OwnedBeginFast(void *map, const mg_site *site, uint64_t unit,
                                            uintptr_t caller_sp) {
  ThreadState *thr = t_thread;
  MapShadow *s = g_shadow.GetIfMapped(map);
  if (MG_UNLIKELY(!thr) || MG_UNLIKELY(!s))
    return MG_FP(begin_slow)(thr, s, map, site, unit, caller_sp, kBeginFull, kTokenRuntime);
  const uint32_t me = thr->slot + 1;
  const int d = thr->regions.Depth();
  if (MG_UNLIKELY(d >= RegionStack::kInline || MG_PROBE_ACTIVE(region_begin)))
    return MG_FP(begin_slow)(thr, s, map, site, unit, caller_sp, kBeginLookedUp, kTokenRuntime);
  // Counting (print_stats, the sidecar): the access counts inline if this
  // thread's count cache has the map, else the runtime counts it (and fires
  // a watched map's probe before the push). Decided before any side effect;
  // counted only where no slow call follows.
  if (Counting() && !CountsInline(thr, s, map, unit == 0))
    return MG_FP(begin_slow)(thr, s, map, site, unit, caller_sp, kBeginLookedUp, kTokenRuntime);
  const uint32_t owner = s->owner.load(std::memory_order_relaxed);
  if (MG_UNLIKELY(owner != me)) {
    if (unit && owner == kOwnerShared)
      return AnnouncedReadBeginFast(thr, s, map, site, d, caller_sp);
    return MG_FP(begin_slow)(thr, s, map, site, unit, caller_sp, kBeginLookedUp, kTokenRuntime);
  }
  const int index = thr->regions.TryPushInline(d, map, site, kRegionOwned, caller_sp);  // B1
  if (MG_UNLIKELY(index < 0))
    return MG_FP(begin_slow)(thr, s, map, site, unit, caller_sp, kBeginLookedUp, kTokenRuntime);
  std::atomic_signal_fence(std::memory_order_seq_cst);              // B2
  if (MG_UNLIKELY(s->owner.load(std::memory_order_relaxed) != me))  // B3
    return MG_FP(begin_slow)(thr, s, map, site, unit, caller_sp, kBeginAfterOwnedPush,
                             OwnedToken(index));
  if (unit) NoteLastRead(thr, map, site);
  // The runtime's happens-before check leaves the region owned where it is.
  if (g_detect_hb) {
    const uint64_t epoch = CurrentEpoch(thr);
    if (unit ? !HbReadIsCurrent(thr, s, epoch) : !HbWriteIsCurrent(s, epoch))
      return MG_FP(begin_slow)(thr, s, map, site, unit, caller_sp, kBeginFinishOwned,
                               OwnedToken(index));
  }
  if (Counting()) CountNow(thr, s, map, site, unit == 0);
  return OwnedToken(index);
}

// The end of a region whose begin's token is not known here (the plugin
// could not pair them): the innermost region must be this very begin's
// (same map and site), owned and not traced, or an announced read on top;
// for a write, no statistics or rehash probe wants the map's bucket count:
// E1-E3 (A4-A5) and the pop. Every other case is one call into end_slow.
MG_ALWAYS_INLINE void OwnedEndFast(void *map, const mg_site *site, bool write) {
  // Inlined, the map call's own memory accesses must stay inside the region:
  // nothing before this point may sink below E1 (at the begin, B2 keeps them
  // below the push).
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (MG_UNLIKELY(!map)) return;  // the region was not active on this path
  ThreadState *thr = t_thread;
  MapShadow *s = g_shadow.GetIfMapped(map);
  if (MG_UNLIKELY(!thr) || MG_UNLIKELY(!s))
    return MG_FP(end_slow)(thr, s, map, site, write, kEndFull, -1);
  // A map this thread does not own (any more): its regions are not owned.
  const uint32_t owner = s->owner.load(std::memory_order_relaxed);
  const int top = thr->regions.Depth() - 1;
  if (MG_UNLIKELY(owner != thr->slot + 1)) {
    Region *r = write || owner != kOwnerShared
                    ? nullptr
                    : thr->regions.InlineTopIs(top, map, site, kRegionAnnounced);
    if (MG_UNLIKELY(!r || (s->state.load(std::memory_order_acquire) & state::kFrozen)))  // A4
      return MG_FP(end_slow)(thr, s, map, site, write, kEndLookedUp, -1);
    // A5. A release: a writer whose scan finds the entry gone also sees
    // this read's happens-before record.
    r->map.store(nullptr, std::memory_order_release);
    if (MG_UNLIKELY(!thr->regions.PopInlineIfTop(top)))
      MG_FP(end_slow)(thr, s, map, site, write, kEndTrim, top);
    return;
  }
  Region *r = thr->regions.InlineTopIs(top, map, site, kRegionOwned);
  if (MG_UNLIKELY(!r || (write && WriteEndWantsRuntime(s, map, site))))
    return MG_FP(end_slow)(thr, s, map, site, write, kEndLookedUp, -1);
  r->map.store(nullptr, std::memory_order_relaxed);     // E1
  std::atomic_signal_fence(std::memory_order_seq_cst);  // E2
  if (MG_UNLIKELY(s->owner.load(std::memory_order_relaxed) != thr->slot + 1))  // E3
    return MG_FP(end_slow)(thr, s, map, site, write, kEndAfterOwnedTombstone, top);
  if (MG_UNLIKELY(!thr->regions.PopInlineIfTop(top)))
    MG_FP(end_slow)(thr, s, map, site, write, kEndTrim, top);
}

// The end of a region whose begin handed it `token` (see RegionToken): the
// end above without looking for the region. The token names the inline
// entry the begin pushed; it is this region's until this end (S5 of
// mg_region_stack.h: only a tombstone is popped, and an entry below the
// depth is never rewritten), and it is on top unless regions ended out of
// order (the pop then leaves it to the trim). The owner check before E1
// sends a revoked map's region to the runtime's end (which keeps it
// findable for a report); E3 catches a revocation that comes after it.
MG_ALWAYS_INLINE void TokenEndFast(void *map, const mg_site *site, bool write, RegionToken token) {
  std::atomic_signal_fence(std::memory_order_seq_cst);  // as in OwnedEndFast
  // A token at all: the begin found both (the thread is registered, and
  // shadow regions are never unmapped).
  ThreadState *thr = t_thread;
  MapShadow *s = g_shadow.GetIfMapped(map);
  if (MG_UNLIKELY(token < 0)) return MG_FP(end_slow)(thr, s, map, site, write, kEndFull, -1);
  const int index = int(token >> 1);
  if (token & 1) {  // an announced read
    if (MG_UNLIKELY(s->state.load(std::memory_order_acquire) & state::kFrozen))  // A4
      return MG_FP(end_slow)(thr, s, map, site, write, kEndLookedUp, index);
    thr->regions.Inline(index).map.store(nullptr, std::memory_order_release);  // A5
  } else {
    // Revoked since the begin (a second thread came, most often the one
    // this region races with): the runtime's end gives the count back and
    // waits out a report before the entry goes, so the report finds it.
    if (MG_UNLIKELY(s->owner.load(std::memory_order_relaxed) != thr->slot + 1) ||
        (write && WriteEndWantsRuntime(s, map, site)))
      return MG_FP(end_slow)(thr, s, map, site, write, kEndLookedUp, index);
    thr->regions.Inline(index).map.store(nullptr, std::memory_order_relaxed);  // E1
    std::atomic_signal_fence(std::memory_order_seq_cst);                       // E2
    if (MG_UNLIKELY(s->owner.load(std::memory_order_relaxed) != thr->slot + 1))  // E3
      return MG_FP(end_slow)(thr, s, map, site, write, kEndAfterOwnedTombstone, index);
  }
  if (MG_UNLIKELY(!thr->regions.PopInlineIfTop(index)))
    MG_FP(end_slow)(thr, s, map, site, write, kEndTrim, index);
}

}  // namespace mapguard

#endif  // MAPGUARD_FAST_PATH_H
