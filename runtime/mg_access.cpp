// The per-access hot path: begin and end of read, write and iteration regions.
//
// Each begin pushes the region on the thread's region stack. While only one
// thread has used a map, that thread owns it (MapShadow::owner) and the stack
// is the whole record: no atomic read-modify-write at all. Once a second
// thread comes, ownership is revoked without the owner's help (the protocol
// is in mg_ownership.cpp) and from then on each begin does one atomic
// read-modify-write on the map's state word and each end the reverse. The
// common case (no other thread in a conflicting region, no nesting) returns
// after that, with no lock and no allocation. Everything else goes to the
// NOINLINE slow paths.
#include "mg_access.h"
#include "mg_fast_path.h"

#include <optional>

#include "mg_hb.h"
#include "mg_probes.h"
#include "mg_report.h"
#include "mg_stats.h"
#include "mg_shadow.h"

namespace mapguard {

namespace {

// Whether a tracer may keep state about the map that its construction or
// destruction should reset: every map while region probes are traced, else
// only a map a watched probe fired for (MapShadow::kernel_state; a map the
// kernel never watched has no state there, and a program that builds maps by
// the million must not trap for each).
MG_ALWAYS_INLINE bool KernelMayWatch(MapShadow *s) {
  return MG_PROBE_ACTIVE(region_begin) ||
         s->kernel_state.exchange(0, std::memory_order_relaxed) != 0;
}

MG_ALWAYS_INLINE void FireEndProbe(uint8_t traced, void *map, uint32_t kind) {
  if (MG_UNLIKELY(traced)) TraceRegionEnd(map, kind, traced);
}

// Removes a region that is not owned (counted or nested): its state-word
// share, if any, was given back by the caller.
MG_ALWAYS_INLINE void CloseRegion(ThreadState *thr, int index, void *map, uint32_t kind) {
  uint8_t traced = thr->regions.Traced(index);
  thr->regions.Tombstone(index);
  thr->regions.Pop(index);
  FireEndProbe(traced, map, kind);
}

}  // namespace

ThreadState *FindThreadInRegion(ThreadState *me, void *map, unsigned kinds,
                                const mg_site **site_out, int mode) {
  const uint32_t limit = ThreadSlotLimit();
  for (uint32_t slot = 0; slot < limit; slot++) {
    ThreadState *t = ThreadBySlot(slot);
    if (!t || t == me) continue;
    const int d = t->regions.DepthSeqCst();  // W3 (see A2)
    const mg_site *found = nullptr;
    t->regions.ForEachLive(d, [&](Region &r, int) {
      if (r.map.load(std::memory_order_acquire) != map) return;
      if (mode >= 0 && r.mode.load(std::memory_order_relaxed) != mode) return;
      const mg_site *site = r.site.load(std::memory_order_relaxed);
      // The entry may have been reused meanwhile: still this map, else skip.
      if (r.map.load(std::memory_order_acquire) != map) return;
      if (site && (kinds & (1u << site->kind))) found = site;  // the innermost wins
    });
    if (found) {
      *site_out = found;
      return t;
    }
  }
  return nullptr;
}

// A report about this map is in progress: stay inside the region (so the
// reporter's stack request sees this thread where it raced) until it is done.
MG_NOINLINE void WaitWhileFrozen(MapShadow *s) {
  while (s->state.load(std::memory_order_acquire) & state::kFrozen) SleepMicrosNoCancel(1000);
}

// Marks the map frozen if its state is still `seen`, so the thread we
// conflict with stays inside its region (and findable) during the report.
// Returns false if the state moved on; the caller re-examines it.
static bool Freeze(MapShadow *s, uint64_t seen) {
  return s->state.compare_exchange_strong(seen, seen | state::kFrozen, std::memory_order_acq_rel,
                                          std::memory_order_relaxed);
}

// Returns true if it reported (then the happens-before check is skipped:
// it would only report the same pair again).
MG_NOINLINE bool ReadBeginSlow(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                               uint64_t old) {
  const uint32_t me = thr->slot + 1;
  ConflictKind kind =
      site->kind == MG_ITERATE ? ConflictKind::kIterationWrite : ConflictKind::kReadWrite;
  for (;;) {
    uint64_t cur = s->state.load(std::memory_order_acquire);
    if (cur & state::kFrozen) {  // another report on this map is being written
      WaitWhileFrozen(s);
      continue;
    }
    uint32_t writer = state::Writer(cur);
    if (writer == 0 || writer == me) {
      // The writer we saw at our begin has left already: the two regions did
      // overlap, so report it, without the other thread's live stack.
      if (state::Writer(old) == me || state::Writer(old) == 0) return false;
      ReportConflict(kind, thr, map, s, site, /*current_is_writer=*/false);
      return true;
    }
    if (Freeze(s, cur)) {
      ReportConflict(kind, thr, map, s, site, false);
      return true;
    }
  }
}

MG_NOINLINE bool ScanAnnouncedReaders(ThreadState *thr, MapShadow *s, void *map,
                                      const mg_site *site);

// The top region is a write (or destruction) whose begin did not take the
// writer field with the fast compare-and-swap.
MG_NOINLINE bool WriteBeginSlow(ThreadState *thr, MapShadow *s, void *map, const mg_site *site) {
  const uint64_t me = thr->slot + 1;
  uint64_t old = s->state.load(std::memory_order_relaxed);
  for (;;) {
    if (old & state::kFrozen) {
      WaitWhileFrozen(s);
      old = s->state.load(std::memory_order_relaxed);
      continue;
    }
    uint32_t writer = state::Writer(old);
    // Readers and iterators of this thread's own (nested) regions are fine;
    // the region just pushed is the write itself.
    std::optional<ConflictKind> conflict;
    if (writer != 0 && writer != me)
      conflict = ConflictKind::kWrites;
    else if (state::Iterators(old) >
             uint32_t(thr->regions.Count(map, 1u << MG_ITERATE, /*skip_top=*/1, true)))
      conflict = ConflictKind::kIterationWrite;
    else if (state::Readers(old) > uint32_t(thr->regions.Count(map, 1u << MG_READ, 1, true)))
      conflict = ConflictKind::kReadWrite;
    if (conflict) {
      if (Freeze(s, old)) {
        ReportConflict(*conflict, thr, map, s, site, /*current_is_writer=*/true);
        return true;
      }
      old = s->state.load(std::memory_order_relaxed);
      continue;
    }
    if (writer == me) {
      // Nested in our own write on this map: the outer write holds the
      // writer field, and only its end may clear it.
      if (Region *top = thr->regions.At(thr->regions.Depth() - 1))
        top->mode.store(kRegionNested, std::memory_order_relaxed);
      return false;
    }
    // W1: take the writer field; a read-shared map turns counted again.
    if (s->state.compare_exchange_weak(old, (old | me) & ~state::kAnnounce,
                                       std::memory_order_seq_cst, std::memory_order_relaxed)) {
      s->writer_site.store(site, std::memory_order_relaxed);
      s->writer_number.store(thr->number + 1, std::memory_order_relaxed);
      if (MG_UNLIKELY(old & state::kAnnounce)) return ScanAnnouncedReaders(thr, s, map, site);
      return false;
    }
  }
}

// W2-W3 (mg_ownership.cpp): this thread just took the writer field of a map
// that was read-shared; a read announced on another thread's stack is in
// flight. Returns true if it reported.
MG_NOINLINE bool ScanAnnouncedReaders(ThreadState *thr, MapShadow *s, void *map,
                                      const mg_site *site) {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // W2
  const mg_site *read_site = nullptr;
  ThreadState *reader = FindThreadInRegion(thr, map, 1u << MG_READ, &read_site, kRegionAnnounced);
  if (!reader) return false;
  for (;;) {
    uint64_t cur = s->state.load(std::memory_order_relaxed);
    if (cur & state::kFrozen) {
      WaitWhileFrozen(s);
      continue;
    }
    if (Freeze(s, cur)) break;
  }
  ReportConflict(ConflictKind::kReadWrite, thr, map, s, site, /*current_is_writer=*/true, read_site,
                 reader->number);
  return true;
}

// Gives back what a counted region holds in the map's state word: a reader
// or iterator unit, or the writer field (only ever its own).
void UncountRegion(ThreadState *thr, MapShadow *s, uint32_t kind) {
  if (kind == MG_READ || kind == MG_ITERATE) {
    uint64_t unit = kind == MG_READ ? state::kReaderOne : state::kIterOne;
    uint64_t old = s->state.fetch_sub(unit, std::memory_order_release);
    if (MG_UNLIKELY(old & state::kFrozen)) WaitWhileFrozen(s);
    return;
  }
  const uint64_t me = thr->slot + 1;
  uint64_t old = s->state.load(std::memory_order_relaxed);
  while (state::Writer(old) == me &&
         !s->state.compare_exchange_weak(old, old & ~state::kWriterMask, std::memory_order_release,
                                         std::memory_order_relaxed)) {
  }
  if (old & state::kFrozen) WaitWhileFrozen(s);
}

}  // namespace mapguard

using namespace mapguard;

namespace {

// The stack pointer of the instrumented function calling the runtime's entry
// point: what a longjmp's target is compared with (CloseAbandonedRegions).
#define MG_CALLER_SP() \
  (reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) + 2 * sizeof(void *))

// Opens the region on the thread's stack, owned or counted (see Opened).
// Steps B1-B3 of the ownership protocol (mg_ownership.cpp).
MG_ALWAYS_INLINE Opened PushOwnedOrCounted(ThreadState *thr, MapShadow *s, void *map,
                                           const mg_site *site, uintptr_t caller_sp) {
  const uint8_t traced = BeginProbesActive() ? TraceRegionBegin(thr, s, map, site) : kTraceNone;
  const uint32_t me = thr->slot + 1;
  uint32_t owner = s->owner.load(std::memory_order_relaxed);
  // The first begin since the slot was reset (no owner yet; with ownership
  // off, every begin) marks its shadow page used: the map has history now.
  if (owner == 0) g_shadow.MarkUsed(map);
  if (MG_UNLIKELY(owner != me)) {
    if (owner == 0 && g_ownership &&
        s->owner.compare_exchange_strong(owner, me, std::memory_order_relaxed)) {
      owner = me;  // first user: it owns the map
    } else if (owner != kOwnerShared && owner != 0) {
      RevokeOwner(thr, s, map, owner);
      owner = kOwnerShared;
    }
  }
  // Owned regions are inline only: a revoker's R3 and the owner's B3/E3
  // need the entry, and deep regions are rare enough to count.
  if (owner != me || MG_UNLIKELY(thr->regions.Depth() >= RegionStack::kInline)) {
    thr->regions.Push(map, site, kRegionCounted, traced, caller_sp);
    return Opened::kCountNow;
  }
  const int index = thr->regions.Push(map, site, kRegionOwned, traced, caller_sp);  // B1
  std::atomic_signal_fence(std::memory_order_seq_cst);                               // B2
  if (MG_LIKELY(s->owner.load(std::memory_order_relaxed) == me)) return Opened::kOwned;  // B3
  return SettleOwnedBegin(thr, s, index) ? Opened::kAlreadyCounted : Opened::kCountNow;
}

// A0's other half: a counted read that found another read counted and no
// writer makes the map read-shared.
MG_ALWAYS_INLINE void MaybeTurnReadShared(MapShadow *s, uint64_t old) {
  if (MG_UNLIKELY(state::Readers(old) > 0) && !(old & kAnnounceMask))
    s->state.fetch_or(state::kAnnounce, std::memory_order_relaxed);
}

// Steps A4-A5: an announced read ends. The tombstone is a release, so a
// writer whose scan (W3, acquire) finds the entry gone also sees this
// read's happens-before record.
MG_ALWAYS_INLINE void EndAnnouncedRead(ThreadState *thr, MapShadow *s, void *map, int region) {
  if (MG_UNLIKELY(s->state.load(std::memory_order_acquire) & state::kFrozen))  // A4
    WaitWhileFrozen(s);
  uint8_t traced = thr->regions.Traced(region);
  thr->regions.Tombstone(region, std::memory_order_release);  // A5
  thr->regions.Pop(region);
  FireEndProbe(traced, map, MG_READ);
}

// Ends a region whatever its mode: steps E1-E3 of the protocol for an owned
// one; otherwise it gives its share of the state word back first.
MG_ALWAYS_INLINE void EndRegion(ThreadState *thr, MapShadow *s, void *map, int region,
                                uint32_t kind) {
  RegionMode mode = thr->regions.ModeOf(region);
  if (MG_LIKELY(mode == kRegionOwned)) {
    uint8_t traced = thr->regions.Traced(region);
    thr->regions.Tombstone(region);                       // E1
    std::atomic_signal_fence(std::memory_order_seq_cst);  // E2
    if (MG_UNLIKELY(s->owner.load(std::memory_order_relaxed) != thr->slot + 1))  // E3
      SettleOwnedEnd(thr, s, region, kind);
    thr->regions.Pop(region);
    FireEndProbe(traced, map, kind);
    return;
  }
  if (mode == kRegionAnnounced) {
    EndAnnouncedRead(thr, s, map, region);
    return;
  }
  if (mode == kRegionCounted) UncountRegion(thr, s, kind);
  CloseRegion(thr, region, map, kind);
}

// What follows the push (`opened`) of a read or iteration region. Both share
// one shape: unless the thread owns the map (or the read is announced on a
// read-shared map), count the region in the state word (kReaderOne or
// kIterOne), then check for a writer. They never exclude each other, so
// begin and end are a single fetch_add / fetch_sub.
MG_ALWAYS_INLINE void FinishSharedBegin(ThreadState *thr, MapShadow *s, void *map,
                                        const mg_site *site, uint64_t unit, Opened opened) {
  if (unit == state::kReaderOne) NoteLastRead(thr, map, site);
  // A read of a map another thread also uses (not owned: it may be this
  // thread's only because the region stack is full) can be announced.
  const bool shared_read = unit == state::kReaderOne && opened == Opened::kCountNow &&
                           s->owner.load(std::memory_order_relaxed) != thr->slot + 1;
  if (MG_LIKELY(opened == Opened::kOwned || opened == Opened::kAnnounced)) {
    if (Counting()) CountAccess(thr, s, map, site, 0);
  } else if (shared_read && AnnounceRead(thr, s)) {
    // Announced: nothing counted, no writer in flight (A3). print_stats's
    // "most concurrent readers" stays what counted reads saw (at least 2
    // once the map turned read-shared).
    if (Counting())
      CountAccess(thr, s, map, site, state::Readers(s->state.load(std::memory_order_relaxed)));
  } else {
    uint64_t old = opened == Opened::kCountNow
                       ? s->state.fetch_add(unit, std::memory_order_acquire)
                       : s->state.load(std::memory_order_acquire) - unit;
    if (shared_read) MaybeTurnReadShared(s, old);
    if (Counting())
      CountAccess(thr, s, map, site, unit == state::kReaderOne ? state::Readers(old) : 0);
    if (MG_UNLIKELY(old & (state::kWriterMask | state::kFrozen)) &&
        ReadBeginSlow(thr, s, map, site, old))
      return;
  }
  if (g_detect_hb) HbOnRead(thr, s, map, site);
}

MG_ALWAYS_INLINE void BeginSharedRegion(void *map, const mg_site *site, uint64_t unit,
                                        uintptr_t caller_sp) {
  MapShadow *s = g_shadow.Get(map);
  if (MG_UNLIKELY(!s)) return;
  ThreadState *thr = CurrentThread();
  FinishSharedBegin(thr, s, map, site, unit, PushOwnedOrCounted(thr, s, map, site, caller_sp));
}

// The end of a region of `kind` on `map`, whatever its mode. `write_site`:
// the site of a write's end (its bucket count may be wanted), else null.
// `iter_site`: an iteration's end's site (the begin's), else null.
MG_ALWAYS_INLINE void EndAnyRegion(ThreadState *thr, MapShadow *s, void *map, uint32_t kind,
                                   const mg_site *write_site, const mg_site *iter_site = nullptr) {
  int region = thr->regions.Find(map, kind);
  if (MG_UNLIKELY(region < 0)) return;
  if (write_site) {
    // Still the writer: the map's counts are ours to read.
    if ((Counting() || MG_PROBE_ACTIVE(rehash)) &&
        (write_site->flags & MG_SITE_HASHTABLE_LAYOUT))
      NoteBucketCount(s, map);
  } else if (kind == MG_ITERATE && g_detect_hb) {
    // An iteration read the map up to its end: a write not ordered after
    // this point races with the loop.
    const Region *r = thr->regions.At(region);  // null if unrecorded
    HbOnRead(thr, s, map, r ? r->site.load(std::memory_order_relaxed) : iter_site);
  }
  EndRegion(thr, s, map, region, kind);
}

MG_ALWAYS_INLINE void EndIteration(void *map, const mg_site *site) {
  if (MG_UNLIKELY(!map)) return;  // the region was not active on this path
  MapShadow *s = g_shadow.Get(map);
  if (MG_UNLIKELY(!s)) return;
  EndAnyRegion(CurrentThread(), s, map, MG_ITERATE, nullptr, site);
}

}  // namespace

namespace mapguard {

// A longjmp or siglongjmp out of a map call or a loop body, or the thread's
// exit, abandons regions: they end here, innermost first.
void CloseAbandonedRegions(ThreadState *thr, uintptr_t above_sp, int from_depth) {
  RegionStack &stack = thr->regions;
  for (;;) {
    const int d = stack.Depth();
    if (d <= from_depth) return;
    Region *r = stack.At(d - 1);
    if (!r) {  // unrecorded: we cannot tell where it began
      if (above_sp) return;
      stack.PopUnrecorded();
      continue;
    }
    void *map = r->map.load(std::memory_order_relaxed);
    if (!map) {  // a tombstone
      stack.Trim();
      continue;
    }
    if (above_sp && r->caller_sp >= above_sp) return;
    MapShadow *s = g_shadow.Get(map);
    const uint32_t kind = r->site.load(std::memory_order_relaxed)->kind;
    // An abandoned destruction leaves its record (see HbOnWriteSlow).
    if (kind == MG_DESTROY) NotePublished(thr);
    EndRegion(thr, s, map, d - 1, kind);
  }
}

MG_NOINLINE void SuspendNodeIterations(ThreadState *thr) {
  thr->regions.ForEachLive(thr->regions.Depth(), [thr](Region &r, int) {
    void *map = r.map.load(std::memory_order_relaxed);
    const mg_site *site = r.site.load(std::memory_order_relaxed);
    if (!map || site->kind != MG_ITERATE || !(site->flags & MG_SITE_NODE_BASED)) return;
    MapShadow *s = g_shadow.Get(map);
    uint8_t mode = kRegionOwned;
    // An owned region: a revoker may be counting it right now (kRegionOwned
    // -> kRegionCounted), hence the compare-and-swap; if it did, the count
    // is given back once the revocation is over.
    if (r.mode.compare_exchange_strong(mode, kRegionSuspended, std::memory_order_acq_rel)) {
      thr->suspended_iterations++;
      return;
    }
    if (mode != kRegionCounted) return;  // nested, or suspended already
    WaitRevocationOver(s);
    UncountRegion(thr, s, MG_ITERATE);
    r.mode.store(kRegionSuspended, std::memory_order_relaxed);
    thr->suspended_iterations++;
  });
}

MG_NOINLINE void ResumeNodeIterations(ThreadState *thr) {
  thr->regions.ForEachLive(thr->regions.Depth(), [thr](Region &r, int) {
    void *map = r.map.load(std::memory_order_relaxed);
    if (!map || r.mode.load(std::memory_order_relaxed) != kRegionSuspended) return;
    const mg_site *site = r.site.load(std::memory_order_relaxed);
    MapShadow *s = g_shadow.Get(map);
    // Back in the state word as a counted region (correct whether or not
    // the map is still owned by this thread), then checked like a begin.
    r.mode.store(kRegionCounted, std::memory_order_relaxed);
    uint64_t old = s->state.fetch_add(state::kIterOne, std::memory_order_acquire);
    bool reported = (old & (state::kWriterMask | state::kFrozen)) &&
                    ReadBeginSlow(thr, s, map, site, old);
    if (!reported && g_detect_hb) HbOnRead(thr, s, map, site);
  });
  thr->suspended_iterations = 0;
}

}  // namespace mapguard

extern "C" {

void __mapguard_iter_begin(void *map, const mg_site *site) {
  BeginSharedRegion(map, site, state::kIterOne, MG_CALLER_SP());
}

void __mapguard_iter_end(void *map, const mg_site *site) {
  EndIteration(map, site);
}

}  // extern "C"

namespace {

// What follows the push (`opened`) of a write or destruction region.
MG_ALWAYS_INLINE void FinishWriteBegin(ThreadState *thr, MapShadow *s, void *map,
                                       const mg_site *site, Opened opened) {
  if (Counting()) CountAccess(thr, s, map, site, 0);
  if (MG_UNLIKELY(opened != Opened::kOwned)) {
    uint64_t expected = 0;
    if (opened == Opened::kCountNow &&
        s->state.compare_exchange_strong(expected, thr->slot + 1, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
      s->writer_site.store(site, std::memory_order_relaxed);
      s->writer_number.store(thr->number + 1, std::memory_order_relaxed);
    } else if (WriteBeginSlow(thr, s, map, site))  // also: already counted by a revocation
      return;
  }
  if (g_detect_hb) HbOnWrite(thr, s, map, site);
  if (MG_UNLIKELY(Counting() || MG_PROBE_ACTIVE(key_spread)) && site->kind == MG_DESTROY &&
      (site->flags & MG_SITE_HASHTABLE_LAYOUT)) {
    // The size it had at the end (the inlined write ends note it only at a rehash).
    if (Counting()) NoteBucketCount(s, map);
    MeasureKeySpread(s, map);
  }
}

MG_ALWAYS_INLINE void WriteBegin(void *map, const mg_site *site, uintptr_t caller_sp) {
  MapShadow *s = g_shadow.Get(map);
  if (MG_UNLIKELY(!s)) return;
  ThreadState *thr = CurrentThread();
  FinishWriteBegin(thr, s, map, site, PushOwnedOrCounted(thr, s, map, site, caller_sp));
}

// ---- The slow entries of the owned fast path (mg_fast_path.h) ----
// The fast path runs in the entry points below, and inlined in instrumented
// code; what it cannot finish comes here. NOINLINE: the fast path must stay
// a leaf that saves no register.

// unit: kReaderOne for a read, 0 for a write.
MG_ALWAYS_INLINE void FinishReadOrWriteBegin(ThreadState *thr, MapShadow *s, void *map,
                                             const mg_site *site, uint64_t unit, Opened opened) {
  if (unit) FinishSharedBegin(thr, s, map, site, unit, opened);
  else FinishWriteBegin(thr, s, map, site, opened);
}

}  // namespace

namespace mapguard {

void ForgetMapHistory(MapShadow *s) {
  s->writer_site.store(nullptr, std::memory_order_relaxed);
  s->writer_number.store(0, std::memory_order_relaxed);
  s->created_site.store(nullptr, std::memory_order_relaxed);
  s->created_by.store(0, std::memory_order_relaxed);
  s->buckets.store(0, std::memory_order_relaxed);
  HbReset(s);  // whatever detect= says now: the slot must read as new
  ForgetStats(s);
}

bool ResetFreedShadow(MapShadow *s) {
  const uint64_t *words = reinterpret_cast<const uint64_t *>(s);
  uint64_t any = 0;
  for (size_t i = 0; i < sizeof(MapShadow) / sizeof(uint64_t); i++)
    any |= __atomic_load_n(&words[i], __ATOMIC_RELAXED);
  if (!any) return true;
  // A region open on freed memory (a thread using it after the free, a race
  // of the program's own), a report being written about it, or a revocation
  // under way: leave the slot to them rather than pull counts from under
  // them. The page keeps its mark, so a later free or construction resets it.
  const uint64_t st = s->state.load(std::memory_order_acquire);
  if ((st & ~state::kAnnounce) || s->owner.load(std::memory_order_relaxed) == kOwnerRevoking)
    return false;
  ForgetMapHistory(s);
  s->state.store(0, std::memory_order_relaxed);
  s->owner.store(0, std::memory_order_release);
  return true;
}

}  // namespace mapguard

extern "C" {

MG_NOINLINE long MG_FP(begin_slow)(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                                   uint64_t unit, uintptr_t caller_sp, int why, long token) {
  if (why == kBeginFull) {
    s = g_shadow.Get(map);
    if (MG_UNLIKELY(!s)) return kTokenRuntime;
    thr = CurrentThread();
  }
  switch (why) {
    case kBeginFull:
    case kBeginLookedUp:
      FinishReadOrWriteBegin(thr, s, map, site, unit,
                             PushOwnedOrCounted(thr, s, map, site, caller_sp));
      return kTokenRuntime;
    case kBeginAfterOwnedPush: {
      const Opened opened = SettleOwnedBegin(thr, s, int(token >> 1)) ? Opened::kAlreadyCounted
                                                                      : Opened::kCountNow;
      FinishReadOrWriteBegin(thr, s, map, site, unit, opened);
      return kTokenRuntime;  // counted now: the runtime's end finds it
    }
    case kBeginFinishOwned:
      FinishReadOrWriteBegin(thr, s, map, site, unit, Opened::kOwned);
      return token;
    case kBeginFinishCounted:
      FinishReadOrWriteBegin(thr, s, map, site, unit, Opened::kCountNow);
      return kTokenRuntime;
    case kBeginFinishAnnounced:
      FinishReadOrWriteBegin(thr, s, map, site, unit, Opened::kAnnounced);
      return token;
  }
  return kTokenRuntime;
}

MG_NOINLINE void MG_FP(count_slow)(ThreadState *thr, MapShadow *s, void *map, const mg_site *site) {
  CountAccess(thr, s, map, site, 0);
}

MG_NOINLINE void MG_FP(end_slow)(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                                 bool write, int why, int index) {
  if (why == kEndFull) {
    if (MG_UNLIKELY(!map)) return;  // the region was not active on this path
    s = g_shadow.Get(map);
    if (MG_UNLIKELY(!s)) return;
    thr = CurrentThread();
  }
  switch (why) {
    case kEndFull:
    case kEndLookedUp:
      EndAnyRegion(thr, s, map, site->kind, write ? site : nullptr);
      return;
    case kEndAfterOwnedTombstone:
      SettleOwnedEnd(thr, s, index, site->kind);
      thr->regions.Pop(index);
      return;
    case kEndTrim:
      thr->regions.Trim();
      return;
  }
}


void __mapguard_read_begin(void *map, const mg_site *site) {
  OwnedBeginFast(map, site, state::kReaderOne, MG_CALLER_SP());
}

void __mapguard_read_end(void *map, const mg_site *site) { OwnedEndFast(map, site, false); }

void __mapguard_write_begin(void *map, const mg_site *site) {
  OwnedBeginFast(map, site, 0, MG_CALLER_SP());
}

void __mapguard_write_end(void *map, const mg_site *site) { OwnedEndFast(map, site, true); }

void __mapguard_construct(void *map, const mg_site *site) {
  MapShadow *s = g_shadow.Get(map);
  if (MG_UNLIKELY(!s)) return;
  ThreadState *thr = CurrentThread();
  g_shadow.MarkUsed(map);
  // A new map: nothing that happened at this address before concerns it,
  // even if the runtime never saw the old one go (destroyed by code built
  // without the plugin, in memory not freed since). Regions still open on
  // the address belong to threads using freed memory; their counts stay.
  ForgetMapHistory(s);
  NewMapStats(s);
  s->created_site.store(site, std::memory_order_relaxed);
  s->created_by.store(thr->number + 1, std::memory_order_relaxed);
  // Its builder owns a new map, unless maps built here change hands.
  s->owner.store(OwnerOfNewMap(thr, site), std::memory_order_relaxed);
  // The constructor's bucket count, so the first growth counts as a rehash.
  s->buckets.store((site->flags & MG_SITE_HASHTABLE_LAYOUT)
                       ? HashtableBucketCount(map) + 1
                       : 0,
                   std::memory_order_relaxed);
  if (MG_PROBE_ACTIVE(map_create) && KernelMayWatch(s)) TraceMapCreate(map, site);
}

// Destruction is a write (destroying a map another thread uses is a race),
// after which the shadow is reset for whatever is built there next.
void __mapguard_destroy_begin(void *map, const mg_site *site) {
  WriteBegin(map, site, MG_CALLER_SP());
}

void __mapguard_destroy_end(void *map, const mg_site *site) {
  if (MG_UNLIKELY(!map)) return;
  MapShadow *s = g_shadow.Get(map);
  if (MG_UNLIKELY(!s)) return;
  ThreadState *thr = CurrentThread();
  int region = thr->regions.Find(map, MG_DESTROY);
  if (region < 0) return;
  bool unrecorded = false;
  if (thr->regions.Count(map, ~0u, 0, /*counted_only=*/false, &unrecorded) == 1 && !unrecorded) {
    // The map is gone: whatever is built at this address next starts clean.
    // Its share of the state word goes with the reset below. (With regions
    // the stack does not record, one of them may be this thread's still
    // open on the map: its count stays, and so does the history.)
    RegionMode mode = thr->regions.ModeOf(region);
    if (s->owner.load(std::memory_order_relaxed) == thr->slot + 1)
      NoteDestroyedByOwner(s->created_site.load(std::memory_order_relaxed));
    if (mode == kRegionOwned) {
      // Settle a revocation that may have counted it, like any owned end.
      thr->regions.Tombstone(region);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      if (s->owner.load(std::memory_order_relaxed) != thr->slot + 1) WaitRevocationOver(s);
    }
    uint64_t old = s->state.load(std::memory_order_acquire);
    if (old & state::kFrozen) WaitWhileFrozen(s);
    ForgetMapHistory(s);
    s->state.store(0, std::memory_order_release);
    s->owner.store(0, std::memory_order_release);
    CloseRegion(thr, region, map, MG_DESTROY);
    if (MG_PROBE_ACTIVE(map_destroy) && KernelMayWatch(s)) TraceMapDestroy(map);
  } else {
    NotePublished(thr);  // its record stays (see HbOnWriteSlow)
    EndRegion(thr, s, map, region, MG_DESTROY);
  }
}

}  // extern "C"

// Static-storage maps: the plugin hands their destructor's registration here
// instead of to __cxa_atexit, so their destruction at exit() is a write like
// any other (a detached thread still using the map is reported, instead of
// crashing in freed memory).
namespace {
struct AtExitMap {
  void (*dtor)(void *);
  void *map;
  const mg_site *site;
};
void DestroyAtExit(void *p) {
  AtExitMap rec = *static_cast<AtExitMap *>(p);
  ArenaFree(p, sizeof(AtExitMap));
  __mapguard_destroy_begin(rec.map, rec.site);
  rec.dtor(rec.map);
  __mapguard_destroy_end(rec.map, rec.site);
}
}  // namespace

extern "C" int __cxa_atexit(void (*)(void *), void *, void *);

extern "C" int __mapguard_atexit_map(void (*dtor)(void *), void *map, void *dso,
                                     const mg_site *site) {
  AtExitMap *rec = static_cast<AtExitMap *>(ArenaAlloc(sizeof(AtExitMap)));
  *rec = {dtor, map, site};
  return __cxa_atexit(DestroyAtExit, rec, dso);
}
