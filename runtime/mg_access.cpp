// The per-access hot path: begin and end of read, write and iteration regions.
//
// Each begin pushes the region on the thread's region stack. While only one
// thread has used a map, that thread owns it (MapShadow::owner) and the stack
// is the whole record: no atomic read-modify-write at all. Once a second
// thread comes, ownership is revoked (the owner counts its open regions into
// the state word from a signal handler) and from then on each begin does one
// atomic read-modify-write on the map's state word and each end the reverse.
// The common case (no other thread in a conflicting region, no nesting)
// returns after that, with no lock and no allocation. Everything else goes to
// the NOINLINE slow paths.
#include "mg_access.h"

#include <time.h>

#include <optional>

#include "mg_hb.h"
#include "mg_probes.h"
#include "mg_report.h"
#include "mg_stats.h"
#include "mg_shadow.h"

namespace mapguard {

namespace {

MG_ALWAYS_INLINE void PushRegion(ThreadState *thr, void *map, const mg_site *site, bool counted,
                                 bool traced) {
  int d = thr->depth.load(std::memory_order_relaxed);
  if (MG_LIKELY(d < kMaxRegions)) {
    thr->regions[d].map.store(map, std::memory_order_relaxed);
    thr->regions[d].site.store(site, std::memory_order_relaxed);
    thr->regions[d].traced = traced;
    thr->regions[d].counted.store(counted, std::memory_order_relaxed);
  }
  thr->depth.store(d + 1, std::memory_order_relaxed);
}

// Past kMaxRegions nothing is recorded, so such regions are always counted.
MG_ALWAYS_INLINE bool RegionCounted(ThreadState *thr, int index) {
  return index >= kMaxRegions || thr->regions[index].counted.load(std::memory_order_relaxed);
}

MG_ALWAYS_INLINE bool RegionTraced(ThreadState *thr, int index) {
  return index < kMaxRegions && thr->regions[index].traced;
}


// Index of the innermost region of `kind` on `map`, or -1 if there is none
// (an end the plugin emits on a path where the region never began). The
// region stays on the stack until RemoveRegion: while a report about the map
// is in progress, the thread must still be seen inside it.
MG_ALWAYS_INLINE int FindRegion(ThreadState *thr, void *map, uint32_t kind) {
  int d = thr->depth.load(std::memory_order_relaxed);
  if (MG_LIKELY(d > 0 && d <= kMaxRegions)) {
    Region &top = thr->regions[d - 1];
    if (MG_LIKELY(top.map.load(std::memory_order_relaxed) == map &&
                  top.site.load(std::memory_order_relaxed)->kind == kind))
      return d - 1;
  }
  return FindRegionSlow(thr, map, kind);
}

MG_ALWAYS_INLINE void RemoveRegion(ThreadState *thr, int index) {
  int d = thr->depth.load(std::memory_order_relaxed);
  if (MG_LIKELY(index == d - 1)) {
    thr->depth.store(d - 1, std::memory_order_relaxed);
    return;
  }
  RemoveRegionSlow(thr, index);
}

// Pops the region, then fires its end probe if its begin fired.
MG_ALWAYS_INLINE void CloseRegion(ThreadState *thr, int index, void *map, uint32_t kind) {
  bool traced = RegionTraced(thr, index);
  RemoveRegion(thr, index);
  if (MG_UNLIKELY(traced) && MG_PROBE_ACTIVE(region_end)) TraceRegionEnd(map, kind);
}

}  // namespace

// Regions of this thread on `map` whose kind is in `kinds` (a bit set of
// 1 << mg_access_kind), not counting the innermost `skip_top` entries; with
// `counted_only`, just those in the map's state word.
int CountOwnRegions(ThreadState *thr, void *map, unsigned kinds, int skip_top, bool counted_only) {
  int d = thr->depth.load(std::memory_order_relaxed);
  if (d > kMaxRegions) d = kMaxRegions;
  int n = 0;
  for (int i = 0; i < d - skip_top; i++) {
    if (thr->regions[i].map.load(std::memory_order_relaxed) != map) continue;
    if (counted_only && !thr->regions[i].counted.load(std::memory_order_relaxed)) continue;
    if (kinds & (1u << thr->regions[i].site.load(std::memory_order_relaxed)->kind)) n++;
  }
  return n;
}

MG_NOINLINE int FindRegionSlow(ThreadState *thr, void *map, uint32_t kind) {
  int d = thr->depth.load(std::memory_order_relaxed);
  // Past kMaxRegions entries were counted but not recorded: trust the end.
  if (d > kMaxRegions) return d - 1;
  // An inner region was left open (only if a callback longjmp'd out of a map
  // call); search below it.
  for (int i = d - 1; i >= 0; i--)
    if (thr->regions[i].map.load(std::memory_order_relaxed) == map &&
        thr->regions[i].site.load(std::memory_order_relaxed)->kind == kind)
      return i;
  return -1;
}

MG_NOINLINE void RemoveRegionSlow(ThreadState *thr, int index) {
  int d = thr->depth.load(std::memory_order_relaxed);
  for (int j = index; j + 1 < d && j + 1 < kMaxRegions; j++) {
    thr->regions[j].map.store(thr->regions[j + 1].map.load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
    thr->regions[j].site.store(thr->regions[j + 1].site.load(std::memory_order_relaxed),
                               std::memory_order_relaxed);
    thr->regions[j].traced = thr->regions[j + 1].traced;
    thr->regions[j].counted.store(thr->regions[j + 1].counted.load(std::memory_order_relaxed),
                                  std::memory_order_relaxed);
  }
  thr->depth.store(d - 1, std::memory_order_relaxed);
}

// A report about this map is in progress: stay inside the region (so the
// reporter's stack request sees this thread where it raced) until it is done.
MG_NOINLINE void WaitWhileFrozen(MapShadow *s) {
  while (s->state.load(std::memory_order_acquire) & state::kFrozen) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, nullptr);
  }
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
      if (state::Writer(old) == me) return false;
      ReportConflict(kind, thr, map, s, site, /*current_is_writer=*/false);
      return true;
    }
    if (Freeze(s, cur)) {
      ReportConflict(kind, thr, map, s, site, false);
      return true;
    }
  }
}

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
             uint32_t(CountOwnRegions(thr, map, 1u << MG_ITERATE, /*skip_top=*/1, true)))
      conflict = ConflictKind::kIterationWrite;
    else if (state::Readers(old) > uint32_t(CountOwnRegions(thr, map, 1u << MG_READ, 1, true)))
      conflict = ConflictKind::kReadWrite;
    if (conflict) {
      if (Freeze(s, old)) {
        ReportConflict(*conflict, thr, map, s, site, /*current_is_writer=*/true);
        return true;
      }
      old = s->state.load(std::memory_order_relaxed);
      continue;
    }
    if (writer == me) return false;  // nested write on our own map
    if (s->state.compare_exchange_weak(old, old | me, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      s->writer_site.store(site, std::memory_order_relaxed);
      return false;
    }
  }
}

MG_NOINLINE void WriteEndSlow(ThreadState *thr, MapShadow *s, void *map) {
  // Still inside an outer write region of our own on this map: keep the flag.
  if (CountOwnRegions(thr, map, (1u << MG_WRITE) | (1u << MG_DESTROY), 0, true) > 1) return;
  uint64_t old = s->state.fetch_and(~state::kWriterMask, std::memory_order_release);
  if (old & state::kFrozen) WaitWhileFrozen(s);
}

// ---- Ownership ----

namespace {

constexpr uint64_t UnitOf(uint32_t kind) {
  return kind == MG_READ ? state::kReaderOne : kind == MG_ITERATE ? state::kIterOne : 0;
}

// Counts one open region into the state word, as its begin would have.
void CountRegion(ThreadState *thr, MapShadow *s, const mg_site *site) {
  if (uint64_t unit = UnitOf(site->kind)) {
    s->state.fetch_add(unit, std::memory_order_acq_rel);
    return;
  }
  // A write (or destruction): take the writer field unless our own outer
  // write holds it already. No other thread writes the state during a
  // revocation, so this cannot fail for another writer.
  uint64_t old = s->state.load(std::memory_order_relaxed);
  while (state::Writer(old) == 0) {
    if (s->state.compare_exchange_weak(old, old | (thr->slot + 1), std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      s->writer_site.store(site, std::memory_order_relaxed);
      break;
    }
  }
}

}  // namespace

// Runs in this thread's signal handler, or in this thread itself once a
// revocation has finished: every uncounted region on `map` enters the state.
void ConvertOwnedRegions(ThreadState *thr, void *map) {
  MapShadow *s = g_shadow.Get(map);
  if (!s) return;
  int d = thr->depth.load(std::memory_order_relaxed);
  if (d > kMaxRegions) d = kMaxRegions;
  for (int i = 0; i < d; i++) {
    Region &r = thr->regions[i];
    if (r.map.load(std::memory_order_relaxed) != map ||
        r.counted.load(std::memory_order_relaxed))
      continue;
    CountRegion(thr, s, r.site.load(std::memory_order_relaxed));
    r.counted.store(true, std::memory_order_relaxed);
  }
}

namespace {

void SleepMicros(long us) {
  struct timespec ts = {0, us * 1000};
  nanosleep(&ts, nullptr);
}

// How long a thread waits on another's revocation before taking over: a
// revoker can vanish (fork() keeps only the forking thread).
int RevocationPatienceUs() { return 2 * g_flags.report_wait_ms * 1000 + 100000; }

// Waits while a revocation of `s` is under way; afterwards the map is shared.
void WaitRevoked(MapShadow *s) {
  for (int waited = 0; s->owner.load(std::memory_order_acquire) == kOwnerRevoking; waited += 20) {
    if (waited > RevocationPatienceUs()) {
      uint32_t revoking = kOwnerRevoking;
      s->owner.compare_exchange_strong(revoking, kOwnerShared, std::memory_order_acq_rel);
      return;
    }
    SleepMicros(20);
  }
}

}  // namespace

// Another thread is about to use a map that `owner` (slot + 1) has used
// alone so far. Ask the owner, by signal, to count its open regions on it;
// then the map is shared. Concurrent revokers wait for the first.
static MG_NOINLINE void RevokeOwner(ThreadState *thr, MapShadow *s, void *map, uint32_t owner) {
  uint32_t expected = owner;
  if (owner == kOwnerRevoking ||
      !s->owner.compare_exchange_strong(expected, kOwnerRevoking, std::memory_order_acq_rel)) {
    WaitRevoked(s);
    return;
  }
  ThreadState *o = ThreadBySlot(owner - 1);
  if (o && o != thr) {
    // One request at a time per target thread.
    bool claimed = false;
    for (int waited = 0; waited <= RevocationPatienceUs(); waited += 50) {
      int idle = 0;
      if (o->convert_state.compare_exchange_strong(idle, 3, std::memory_order_acq_rel)) {
        claimed = true;
        break;
      }
      SleepMicros(50);
    }
    if (claimed) {
      o->convert_map.store(map, std::memory_order_relaxed);
      o->convert_state.store(1, std::memory_order_release);  // the handler acts on 1 only
      bool asked = SignalThread(o);
      for (int waited = 0; asked && waited < g_flags.report_wait_ms * 1000; waited += 20) {
        if (o->convert_state.load(std::memory_order_acquire) == 2) break;
        SleepMicros(20);
      }
      // Done, or given up (the signal is blocked there): either way no
      // conversion may run after this; a late handler sees 0 and does nothing.
      o->convert_state.store(0, std::memory_order_release);
    }
  }
  s->owner.store(kOwnerShared, std::memory_order_release);
}

// The region just pushed (uncounted, as the map looked owned) lost its map
// to a revocation. Once the revocation is over (its signal, if any, has been
// handled: no handler can run for it afterwards), count the thread's other
// regions on the map that the handler did not. Returns true if the handler
// counted the new region already; otherwise it is marked counted and the
// caller counts it with its usual read-modify-write.
static MG_NOINLINE bool CountAfterRevocation(ThreadState *thr, MapShadow *s, void *map) {
  WaitRevoked(s);
  Region &top = thr->regions[thr->depth.load(std::memory_order_relaxed) - 1];
  if (top.counted.load(std::memory_order_relaxed)) {
    ConvertOwnedRegions(thr, map);
    return true;
  }
  top.counted.store(true, std::memory_order_relaxed);
  ConvertOwnedRegions(thr, map);
  return false;
}

}  // namespace mapguard

using namespace mapguard;

extern "C" {

}  // extern "C"

namespace {

enum class Opened {
  kOwned,           // the thread owns the map: the region stays uncounted
  kCountNow,        // shared: the caller counts it in the state word
  kAlreadyCounted,  // a revocation's handler counted it: only check for conflicts
};

// Opens the region on the thread's stack, owned or counted (see Opened).
MG_ALWAYS_INLINE Opened PushOwnedOrCounted(ThreadState *thr, MapShadow *s, void *map,
                                           const mg_site *site) {
  const bool traced = MG_PROBE_ACTIVE(region_begin) && TraceRegionBegin(thr, map, site);
  const uint32_t me = thr->slot + 1;
  uint32_t owner = s->owner.load(std::memory_order_relaxed);
  if (MG_UNLIKELY(owner != me)) {
    if (owner == 0 && s->owner.compare_exchange_strong(owner, me, std::memory_order_relaxed)) {
      owner = me;  // first user: it owns the map
    } else if (owner != kOwnerShared && owner != me) {
      RevokeOwner(thr, s, map, owner);
      owner = kOwnerShared;
    }
  }
  if (owner != me || MG_UNLIKELY(thr->depth.load(std::memory_order_relaxed) >= kMaxRegions)) {
    PushRegion(thr, map, site, /*counted=*/true, traced);
    return Opened::kCountNow;
  }
  PushRegion(thr, map, site, /*counted=*/false, traced);
  // Published on our stack; a revocation signalled from now on will count it.
  // If one started before, wait for it to end and count the region ourselves.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (MG_LIKELY(s->owner.load(std::memory_order_relaxed) == me)) return Opened::kOwned;
  return CountAfterRevocation(thr, s, map) ? Opened::kAlreadyCounted : Opened::kCountNow;
}

// Read and iteration regions share one shape: unless the thread owns the
// map, count the region in the state word (kReaderOne or kIterOne), then
// check for a writer. They never exclude each other, so begin and end are a
// single fetch_add / fetch_sub.
MG_ALWAYS_INLINE void BeginSharedRegion(void *map, const mg_site *site, uint64_t unit) {
  MapShadow *s = g_shadow.Get(map);
  if (MG_UNLIKELY(!s)) return;
  ThreadState *thr = CurrentThread();
  Opened opened = PushOwnedOrCounted(thr, s, map, site);
  if (unit == state::kReaderOne) {
    thr->last_read_map.store(map, std::memory_order_relaxed);
    thr->last_read_site.store(site, std::memory_order_relaxed);
  }
  if (MG_LIKELY(opened == Opened::kOwned)) {
    if (MG_UNLIKELY(g_print_stats)) CountAccess(thr, s, map, site, 0);
  } else {
    uint64_t old = opened == Opened::kCountNow
                       ? s->state.fetch_add(unit, std::memory_order_acquire)
                       : s->state.load(std::memory_order_acquire) - unit;
    if (MG_UNLIKELY(g_print_stats))
      CountAccess(thr, s, map, site, unit == state::kReaderOne ? state::Readers(old) : 0);
    if (MG_UNLIKELY(old & (state::kWriterMask | state::kFrozen)) &&
        ReadBeginSlow(thr, s, map, site, old))
      return;
  }
  if (g_detect_hb) HbOnRead(thr, s, map, site);
}

MG_ALWAYS_INLINE void EndSharedRegion(void *map, uint32_t kind, uint64_t unit) {
  if (MG_UNLIKELY(!map)) return;  // the region was not active on this path
  MapShadow *s = g_shadow.Get(map);
  if (MG_UNLIKELY(!s)) return;
  ThreadState *thr = CurrentThread();
  int region = FindRegion(thr, map, kind);
  if (MG_UNLIKELY(region < 0)) return;
  // An iteration read the map up to its end: a write not ordered after this
  // point races with the loop.
  if (kind == MG_ITERATE && g_detect_hb)
    HbOnRead(thr, s, map, thr->regions[region].site.load(std::memory_order_relaxed));
  if (MG_UNLIKELY(RegionCounted(thr, region))) {
    uint64_t old = s->state.fetch_sub(unit, std::memory_order_release);
    if (MG_UNLIKELY(old & state::kFrozen)) WaitWhileFrozen(s);
  }
  CloseRegion(thr, region, map, kind);
}

}  // namespace

extern "C" {

void __mapguard_read_begin(void *map, const mg_site *site) {
  BeginSharedRegion(map, site, state::kReaderOne);
}

void __mapguard_read_end(void *map, const mg_site *site) {
  EndSharedRegion(map, site->kind, state::kReaderOne);
}

void __mapguard_iter_begin(void *map, const mg_site *site) {
  BeginSharedRegion(map, site, state::kIterOne);
}

void __mapguard_iter_end(void *map, const mg_site *site) {
  (void)site;
  EndSharedRegion(map, MG_ITERATE, state::kIterOne);
}

void __mapguard_write_begin(void *map, const mg_site *site) {
  MapShadow *s = g_shadow.Get(map);
  if (MG_UNLIKELY(!s)) return;
  ThreadState *thr = CurrentThread();
  Opened opened = PushOwnedOrCounted(thr, s, map, site);
  if (MG_UNLIKELY(g_print_stats)) CountAccess(thr, s, map, site, 0);
  if (MG_UNLIKELY(opened != Opened::kOwned)) {
    uint64_t expected = 0;
    if (opened == Opened::kCountNow &&
        s->state.compare_exchange_strong(expected, thr->slot + 1, std::memory_order_acquire,
                                         std::memory_order_relaxed))
      s->writer_site.store(site, std::memory_order_relaxed);
    else if (WriteBeginSlow(thr, s, map, site))  // also: already counted by a revocation
      return;
  }
  if (g_detect_hb) HbOnWrite(thr, s, map, site);
}

void __mapguard_write_end(void *map, const mg_site *site) {
  if (MG_UNLIKELY(!map)) return;
  MapShadow *s = g_shadow.Get(map);
  if (MG_UNLIKELY(!s)) return;
  ThreadState *thr = CurrentThread();
  int region = FindRegion(thr, map, site->kind);
  if (MG_UNLIKELY(region < 0)) return;
  // Still the writer: the map's counts are ours to read.
  if ((MG_UNLIKELY(g_print_stats) || MG_PROBE_ACTIVE(rehash)) &&
      (site->flags & MG_SITE_HASHTABLE_LAYOUT))
    NoteBucketCount(s, map);
  if (MG_UNLIKELY(RegionCounted(thr, region))) {
    uint64_t expected = thr->slot + 1;
    if (MG_UNLIKELY(!s->state.compare_exchange_strong(expected, 0, std::memory_order_release,
                                                      std::memory_order_relaxed)))
      WriteEndSlow(thr, s, map);
  }
  CloseRegion(thr, region, map, site->kind);
}

void __mapguard_construct(void *map, const mg_site *site) {
  MapShadow *s = g_shadow.Get(map);
  if (MG_UNLIKELY(!s)) return;
  ThreadState *thr = CurrentThread();
  s->created_site.store(site, std::memory_order_relaxed);
  s->created_by.store(thr->number + 1, std::memory_order_relaxed);
  s->owner.store(thr->slot + 1, std::memory_order_relaxed);  // its builder owns a new map
  // The constructor's bucket count, so the first growth counts as a rehash.
  s->buckets.store((site->flags & MG_SITE_HASHTABLE_LAYOUT)
                       ? *reinterpret_cast<const uint64_t *>(static_cast<char *>(map) + 8) + 1
                       : 0,
                   std::memory_order_relaxed);
  if (MG_PROBE_ACTIVE(map_create)) TraceMapCreate(map, site);
  // A new map: nothing that happened at this address before concerns it.
  if (g_detect_hb) HbReset(s);
  if (g_print_stats) ForgetStats(s);
}

// Destruction is a write (destroying a map another thread uses is a race),
// after which the shadow is reset for whatever is built there next.
void __mapguard_destroy_begin(void *map, const mg_site *site) {
  __mapguard_write_begin(map, site);
}

void __mapguard_destroy_end(void *map, const mg_site *site) {
  if (MG_UNLIKELY(!map)) return;
  MapShadow *s = g_shadow.Get(map);
  if (MG_UNLIKELY(!s)) return;
  ThreadState *thr = CurrentThread();
  int region = FindRegion(thr, map, MG_DESTROY);
  if (region < 0) return;
  if (CountOwnRegions(thr, map, ~0u, 0, /*counted_only=*/false) == 1) {
    // The map is gone: whatever is built at this address next starts clean.
    uint64_t old = s->state.load(std::memory_order_acquire);
    if (old & state::kFrozen) WaitWhileFrozen(s);
    s->writer_site.store(nullptr, std::memory_order_relaxed);
    s->created_site.store(nullptr, std::memory_order_relaxed);
    s->created_by.store(0, std::memory_order_relaxed);
    s->buckets.store(0, std::memory_order_relaxed);
    if (g_detect_hb) HbReset(s);
    if (g_print_stats) ForgetStats(s);
    s->state.store(0, std::memory_order_release);
    s->owner.store(0, std::memory_order_release);
    CloseRegion(thr, region, map, MG_DESTROY);
    if (MG_PROBE_ACTIVE(map_destroy)) TraceMapDestroy(map);
  } else {
    if (RegionCounted(thr, region)) WriteEndSlow(thr, s, map);
    CloseRegion(thr, region, map, MG_DESTROY);
  }
}

}  // extern "C"
