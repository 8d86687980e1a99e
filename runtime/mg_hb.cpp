#include "mg_hb.h"

#include <new>

#include "mg_loaded.h"
#include "mg_report.h"
#include "mg_stack.h"

namespace mapguard {

DirectTable<SyncSlot> g_sync_table;

void (*g_read_set_step_hook)(ReadSetStep);

namespace {

// Last clock of each slot's previous owner: a new thread in the slot starts
// above it, so epochs of the old thread stay distinguishable.
uint32_t g_slot_last_clock[kMaxThreads];

constexpr uintptr_t kOffsetMask = 7;  // a link's tag: the byte in the granule

SyncVar *SyncOf(uintptr_t link) { return reinterpret_cast<SyncVar *>(link & ~uintptr_t(63)); }

// The SyncVar of the object at exactly `addr`, made on first use if `create`.
SyncVar *GetSync(const void *addr, bool create) {
  SyncSlot *s = create ? g_sync_table.Get(addr) : g_sync_table.Find(addr);
  if (!s) return nullptr;
  const uintptr_t offset = reinterpret_cast<uintptr_t>(addr) & kOffsetMask;
  std::atomic<uintptr_t> *link = &s->first;
  uintptr_t l = link->load(std::memory_order_acquire);
  SyncVar *fresh = nullptr;
  for (;;) {
    for (; l; l = link->load(std::memory_order_acquire)) {
      if ((l & kOffsetMask) == offset) {
        if (fresh) ArenaFree(fresh, sizeof(SyncVar));
        return SyncOf(l);
      }
      link = &SyncOf(l)->next;
    }
    if (!create) return nullptr;
    if (!fresh) {
      g_sync_table.MarkUsed(addr);
      fresh = static_cast<SyncVar *>(ArenaAlloc(sizeof(SyncVar)));
      new (fresh) SyncVar();
    }
    // Appended at the end; a thread that appended first is walked past (l).
    if (link->compare_exchange_strong(l, reinterpret_cast<uintptr_t>(fresh) | offset,
                                      std::memory_order_acq_rel))
      return fresh;
  }
}

// Under sv->lock.
void EmptyClock(SyncVar *sv) {
  // The storage stays: a late release reported by OpenMP (ReleaseSerialized
  // without the lock under detect=overlap) may still join into it.
  sv->vc.Clear();  // empty: the next release marks the page used again
  sv->covered_by.store(0, std::memory_order_relaxed);
}

// ---- Pins (PinSync, mg_hb.h) ----
// Outstanding pins, in a table of their own: they are rare (a thread inside
// a barrier-style wait) and short (one call), and SyncVar's cache line has
// no room. g_pinned counts them; it is 0 in almost every program at almost
// every moment, so a free, a release and a held lock's release or acquire
// pay one load to learn that no pin exists. While one does, those take the
// SyncVar's lock even when the caller holds the object as a lock
// (held_exclusively): the last pin's let-go may empty the clock of a freed
// object, and a lock built later at the same address must not be updated
// beside it. The pin is counted before the call that lets another party
// free the object, and the allocator orders that free before any reuse of
// the address, so whoever touches the reused object sees g_pinned != 0
// until the pinning thread has let go (its decrement comes after it is
// done with the clock). Lock order: a SyncVar's lock, then g_pins_mu.
struct PinEntry {
  SyncVar *sv;
  uint32_t count;  // threads between PinSync and AcquirePinned
  bool deferred;   // the object was freed meanwhile: the last one empties the clock
};
constexpr uint32_t kMaxPinned = 256;
SpinLock g_pins_mu;
PinEntry g_pin_table[kMaxPinned];
uint32_t g_pin_entries;  // under g_pins_mu
std::atomic<uint32_t> g_pinned{0};
// A token for a SyncVar the table had no room for: acquired from, not
// pinned (as before pins existed).
constexpr uintptr_t kNotPinned = 1;

bool AnyPins() { return g_pinned.load(std::memory_order_seq_cst) != 0; }

PinEntry *FindPin(SyncVar *sv) {  // under g_pins_mu
  for (uint32_t i = 0; i < g_pin_entries; i++)
    if (g_pin_table[i].sv == sv) return &g_pin_table[i];
  return nullptr;
}

// Under sv->lock: whether a pin keeps sv's clock from being emptied now;
// if so, the last pin empties it.
bool DeferReset(SyncVar *sv) {
  if (!AnyPins()) return false;
  g_pins_mu.Lock();
  PinEntry *p = FindPin(sv);
  if (p) p->deferred = true;
  g_pins_mu.Unlock();
  return p != nullptr;
}

// Under sv->lock, on a release into the object at `addr`: a reset the last
// pin was to do is cancelled (this is the next object's release: the clock
// keeps both), and the page counts as used again (the free counted the
// slot as empty).
void CancelDeferredReset(SyncVar *sv, const void *addr) {
  if (!AnyPins()) return;
  g_pins_mu.Lock();
  PinEntry *p = FindPin(sv);
  bool was = p && p->deferred;
  if (p) p->deferred = false;
  g_pins_mu.Unlock();
  if (was) g_sync_table.MarkUsed(addr);
}

void ResetSyncVar(SyncVar *sv) {
  sv->lock.Lock();
  if (!DeferReset(sv)) EmptyClock(sv);
  sv->lock.Unlock();
}

// An access of this very thread (not of an earlier owner of its slot).
bool IsMine(uint64_t epoch, ThreadState *thr) {
  return EpochSlot(epoch) == thr->slot && EpochClock(epoch) >= thr->own_start;
}

bool HappensBefore(uint64_t epoch, ThreadState *thr) {
  if (epoch == 0 || IsMine(epoch, thr)) return true;
  if (EpochSlot(epoch) == thr->slot) return EpochClock(epoch) <= thr->inherited_own;
  return EpochClock(epoch) <= thr->vc.Get(EpochSlot(epoch));
}


// Frees a read set and the smaller ones it replaced (see AddReader).
void FreeReadSet(uint64_t r) {
  if (!IsReadSet(r)) return;
  for (ReadSet *rs = AsReadSet(r); rs;) {
    ReadSet *older = rs->replaced;
    ArenaFree(rs, ReadSet::Bytes(rs->capacity));
    rs = older;
  }
}

// Who is accessing, for a later report. With history_stacks, also the stack,
// by frame-pointer walk: the plugin compiles user code with frame pointers,
// and this runs once per thread, map and epoch, so it must stay cheap.
AccessInfo Describe(ThreadState *thr, const mg_site *site) {
  AccessInfo info{site, thr->number, 0, thr->shared_locks_held > 0};
  if (g_flags.history_stacks) {
    StackTrace st;
    CaptureStackFast(thr, &st, ThreadState::kHistoryFrames);
    info.stack_id = StackDepotPutHistory(thr, st);
  }
  return info;
}

// A zeroed, empty read set with room for at least `entries`, and for as
// many more as its arena block holds.
ReadSet *AllocReadSet(uint32_t entries) {
  ReadSet *rs = static_cast<ReadSet *>(ArenaAlloc(ReadSet::Bytes(entries)));
  rs->capacity = ReadSet::CapacityFor(ReadSet::Bytes(entries));
  return rs;
}

// J and G of the read-set protocol (mg_hb.h), under hb_lock: records
// `epoch`'s read in its slot's entry, adding one (growing the set if full).
void AddReader(ReadSet **set, uint64_t epoch, const AccessInfo &info) {
  ReadSet *rs = *set;
  uint32_t n = rs->count.load(std::memory_order_relaxed);
  int i = rs->Find(EpochSlot(epoch), n);
  if (i >= 0) {
    rs->At(uint32_t(i)).Store(info);
    rs->At(uint32_t(i)).epoch.store(epoch, std::memory_order_release);
    return;
  }
  if (n == rs->capacity) {
    ReadSet *bigger = AllocReadSet(rs->capacity + 1);
    bigger->replaced = rs;
    rs->retired.store(1, std::memory_order_seq_cst);
    if (MG_UNLIKELY(g_read_set_step_hook)) g_read_set_step_hook(ReadSetStep::kGrowRetired);
    for (uint32_t j = 0; j < n; j++) {
      ReadSet::Entry &from = rs->At(j), &to = bigger->At(j);
      to.epoch.store(from.epoch.load(std::memory_order_seq_cst), std::memory_order_relaxed);
      to.Store(from.Load());
      bigger->Slots()[j].store(rs->Slots()[j].load(std::memory_order_relaxed),
                               std::memory_order_relaxed);
    }
    bigger->count.store(n, std::memory_order_relaxed);
    *set = rs = bigger;
  }
  rs->Slots()[n].store(EpochSlot(epoch), std::memory_order_relaxed);
  rs->At(n).Store(info);
  rs->At(n).epoch.store(epoch, std::memory_order_relaxed);
  rs->count.store(n + 1, std::memory_order_release);
}

// A read set for a second reader: the one the last write emptied, if any.
ReadSet *NewReadSet(MapShadow *s) {
  ReadSet *rs = s->spare_reads;
  s->spare_reads = nullptr;
  if (rs) {
    rs->retired.store(0, std::memory_order_relaxed);
    return rs;
  }
  return AllocReadSet(3);  // one line of header, three entries: 256 bytes
}

// R of the read-set protocol: this thread's entry in the map's read set
// holds an earlier epoch of its own; it becomes `me` without hb_lock. False
// if the read needs the locked path (no such entry, or G retired the set).
bool RefreshOwnRead(ThreadState *thr, MapShadow *s, const mg_site *site, uint64_t me) {
  uint64_t r = s->hb_read.load(std::memory_order_acquire);
  if (!IsReadSet(r)) return false;
  ReadSet *rs = AsReadSet(r);
  int i = rs->Find(thr->slot, rs->count.load(std::memory_order_acquire));
  if (i < 0) return false;
  ReadSet::Entry &e = rs->At(uint32_t(i));
  uint64_t old = e.epoch.load(std::memory_order_relaxed);
  if (old == me) return true;  // L found it after all
  if (!IsMine(old, thr)) return false;
  if (MG_UNLIKELY(g_read_set_step_hook)) g_read_set_step_hook(ReadSetStep::kRefreshFound);
  e.Store(Describe(thr, site));
  e.epoch.exchange(me, std::memory_order_seq_cst);
  NotePublished(thr);
  if (MG_UNLIKELY(g_read_set_step_hook)) g_read_set_step_hook(ReadSetStep::kRefreshExchanged);
  if (MG_LIKELY(!rs->retired.load(std::memory_order_seq_cst))) return true;
  if (MG_UNLIKELY(g_read_set_step_hook)) g_read_set_step_hook(ReadSetStep::kRefreshRedone);
  return false;
}

ConflictKind KindOf(const mg_site *earlier, const mg_site *later) {
  earlier = SiteIfLoaded(earlier);  // recorded: maybe by a library unloaded since
  bool write_pair = (earlier->kind == MG_WRITE || earlier->kind == MG_DESTROY) &&
                    (later->kind == MG_WRITE || later->kind == MG_DESTROY);
  if (write_pair) return ConflictKind::kUnsyncWrites;
  if (earlier->kind == MG_ITERATE || later->kind == MG_ITERATE)
    return ConflictKind::kUnsyncIterationWrite;
  return ConflictKind::kUnsyncReadWrite;
}

}  // namespace

// A clock about to stop being empty: its slot is in use again (mg_shadow.h).
// A new SyncVar was marked when made; one a free emptied since is marked here.
MG_ALWAYS_INLINE void MarkIfEmpty(SyncVar *sv, const void *addr) {
  if (MG_UNLIKELY(sv->vc.Size() == 0)) g_sync_table.MarkUsed(addr);
}

namespace {
// The release itself, with sv->lock held or the object held as a lock.
void ReleaseInto(ThreadState *thr, SyncVar *sv, const void *addr) {
  MarkIfEmpty(sv, addr);
  CancelDeferredReset(sv, addr);
  sv->vc.Join(thr->vc);
  NotePublished(thr);
  if (sv->covered_by.load(std::memory_order_relaxed) != thr->number + 1)
    sv->covered_by.store(0, std::memory_order_relaxed);
}
}  // namespace

void Release(ThreadState *thr, const void *addr, bool held_exclusively) {
  SyncVar *sv = GetSync(addr, true);
  if (!sv) return;
  const bool lock = !held_exclusively || AnyPins();  // see PinEntry
  if (lock) sv->lock.Lock();
  ReleaseInto(thr, sv, addr);
  if (lock) sv->lock.Unlock();
  TickClock(thr);
}

void AcquireSerialized(ThreadState *thr, const void *addr) {
  SyncVar *sv = GetSync(addr, true);
  if (!sv) return;
  sv->lock.Lock();
  AcquireSyncVar(thr, sv, /*held_exclusively=*/true);
}

void ReleaseSerialized(ThreadState *thr, const void *addr) {
  SyncVar *sv = GetSync(addr, true);
  if (!sv) return;
  ReleaseInto(thr, sv, addr);
  TickClock(thr);
  sv->lock.Unlock();
}

void ResetSync(const void *addr) {
  if (SyncVar *sv = GetSync(addr, false)) ResetSyncVar(sv);
}

namespace {
// Calls fn(sv) for each SyncVar of the granule of `s`.
template <typename Fn>
void ForEachSyncOf(SyncSlot *s, Fn &&fn) {
  for (uintptr_t l = s->first.load(std::memory_order_acquire); l;
       l = SyncOf(l)->next.load(std::memory_order_acquire))
    fn(SyncOf(l));
}
}  // namespace

void ResetSyncsInRange(uintptr_t begin, uintptr_t end) {
  if (!g_sync_table.MaybeUsed(begin, end)) return;
  g_sync_table.ForEachUsed(begin, end, [](SyncSlot *s) {
    ForEachSyncOf(s, ResetSyncVar);
    return true;  // every clock empty (or a pin's let-go empties it: PinEntry)
  });
}

bool AnySyncsInRange(uintptr_t begin, uintptr_t end) {
  // A sync page covers 4 KiB and its mark stays until a free covers all of
  // it, so the slots themselves are looked at: realloc copies a block only
  // if a clock in it holds something.
  if (!g_sync_table.MaybeUsed(begin, end)) return false;
  bool used = false;
  g_sync_table.ForEachUsed(begin, end, [&](SyncSlot *s) {
    ForEachSyncOf(s, [&](SyncVar *sv) { used |= sv->vc.Size() != 0; });
    return false;  // a look only: leave the page marked
  });
  return used;
}

void ReleaseClock(const VectorClock &clock, const void *addr) {
  SyncVar *sv = GetSync(addr, true);
  if (!sv) return;
  sv->lock.Lock();
  MarkIfEmpty(sv, addr);
  CancelDeferredReset(sv, addr);
  sv->vc.Join(clock);
  sv->covered_by.store(0, std::memory_order_relaxed);
  sv->lock.Unlock();
}

void TickClock(ThreadState *thr) {
  uint32_t c = thr->vc.Get(thr->slot);
  if (MG_UNLIKELY(c >= 0xfffffff0u)) {
    if (!thr->clock_exhausted) {
      thr->clock_exhausted = true;
      static const char kMsg[] =
          "mapguard: warning: a thread's happens-before clock is exhausted (2^32 releases); "
          "happens-before checking is off from here on, overlapping accesses are still reported\n";
      WriteAll(kMsg, sizeof(kMsg) - 1);
      g_detect_hb = false;
    }
    return;
  }
  thr->vc.Set(thr->slot, c + 1);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  thr->clock_published = false;
  SyncOwnEpoch(thr);
}

void HbAfterForkInChild(ThreadState *me) {
  // Pins belong to threads inside a wait, and none of them is in the child:
  // their acquires will not come. The clocks they kept stay (an edge too
  // many at worst).
  g_pins_mu.ResetAfterFork();
  g_pin_entries = 0;
  g_pinned.store(0, std::memory_order_relaxed);
  uint32_t limit = ThreadSlotLimit();
  for (uint32_t slot = 0; slot < limit; slot++) {
    if (slot == me->slot) continue;
    uint32_t c = ThreadStateAt(slot)->vc.Get(slot);
    if (g_slot_last_clock[slot] > c) c = g_slot_last_clock[slot];
    if (c > me->vc.Get(slot)) me->vc.Set(slot, c);
    g_slot_last_clock[slot] = c;  // a new thread in the slot starts above it
  }
  TickClock(me);
}

void Acquire(ThreadState *thr, const void *addr, bool held_exclusively) {
  if (SyncVar *sv = GetSync(addr, false))
    AcquireSyncVar(thr, sv, held_exclusively && !AnyPins());  // see PinEntry
}

void *PinSync(ThreadState *thr, const void *addr) {
  if (!thr) return nullptr;
  SyncVar *sv = GetSync(addr, true);
  if (!sv) return nullptr;
  g_pins_mu.Lock();
  PinEntry *p = FindPin(sv);
  if (!p && g_pin_entries < kMaxPinned) {
    p = &g_pin_table[g_pin_entries++];
    *p = PinEntry{sv, 0, false};
  }
  if (p) {
    p->count++;
    g_pinned.fetch_add(1, std::memory_order_seq_cst);
  }
  g_pins_mu.Unlock();
  const uintptr_t token = reinterpret_cast<uintptr_t>(sv) | (p ? 0 : kNotPinned);
  return reinterpret_cast<void *>(token);
}

void AcquirePinned(ThreadState *thr, void *pin, bool acquire) {
  if (!pin) return;
  const uintptr_t token = reinterpret_cast<uintptr_t>(pin);
  SyncVar *sv = reinterpret_cast<SyncVar *>(token & ~kNotPinned);
  sv->lock.Lock();
  if (acquire) AcquireSyncVar(thr, sv, /*held_exclusively=*/true);
  if (!(token & kNotPinned)) {
    g_pins_mu.Lock();
    PinEntry *p = FindPin(sv);
    bool empty = false;
    if (p && --p->count == 0) {
      empty = p->deferred;
      *p = g_pin_table[--g_pin_entries];
    }
    g_pins_mu.Unlock();
    if (empty) EmptyClock(sv);
    // After the clock is done with: see PinEntry.
    g_pinned.fetch_sub(1, std::memory_order_seq_cst);
  }
  sv->lock.Unlock();
}

void ReleaseClockInto(const VectorClock &clock, SyncVar *sv) {
  sv->lock.Lock();
  sv->vc.Join(clock);
  sv->covered_by.store(0, std::memory_order_relaxed);
  sv->lock.Unlock();
}

void AcquireSyncVar(ThreadState *thr, SyncVar *sv, bool held_exclusively) {
  if (!held_exclusively) sv->lock.Lock();
  const uint32_t me = thr->number + 1;
  if (sv->covered_by.load(std::memory_order_relaxed) != me) {
    // The entry for our own slot below own_start is knowledge of the slot's
    // earlier owner; our own clock there must not be overwritten, so that
    // knowledge is kept in inherited_own instead.
    uint32_t theirs = sv->vc.Get(thr->slot);
    if (theirs < thr->own_start && theirs > thr->inherited_own) thr->inherited_own = theirs;
    thr->vc.Join(sv->vc);
    sv->covered_by.store(me, std::memory_order_relaxed);
  }
  if (!held_exclusively) sv->lock.Unlock();
  SyncOwnEpoch(thr);
}

void InitThreadClock(ThreadState *thr, const VectorClock *parent) {
  if (parent)
    thr->vc.CopyFrom(*parent);
  else
    thr->vc.Reset();
  thr->inherited_own = thr->vc.Get(thr->slot);
  uint32_t start = g_slot_last_clock[thr->slot];
  if (thr->inherited_own > start) start = thr->inherited_own;
  thr->own_start = start + 1;
  thr->clock_published = false;  // own_start itself has not left the thread
  thr->vc.Set(thr->slot, thr->own_start);
  SyncOwnEpoch(thr);
}

// The last value of the slot's clock that left the thread: the current one,
// or the one before it when the last tick (every tick follows a publication,
// or starts the thread above the slot's previous last clock) went nowhere.
void RetireThreadClock(ThreadState *thr) {
  const uint32_t c = thr->vc.Get(thr->slot);
  g_slot_last_clock[thr->slot] = thr->clock_published ? c : c - 1;
}

uint32_t SlotLastClock(uint32_t slot) { return g_slot_last_clock[slot]; }

void HbReset(MapShadow *s) {
  s->hb_lock.Lock();
  FreeReadSet(s->hb_read.load(std::memory_order_relaxed));
  if (s->spare_reads) FreeReadSet(reinterpret_cast<uint64_t>(s->spare_reads) | kReadSetTag);
  s->spare_reads = nullptr;
  s->hb_read.store(0, std::memory_order_relaxed);
  s->hb_write.store(0, std::memory_order_relaxed);
  s->hb_lock.Unlock();
}

MG_NOINLINE void HbOnReadSlow(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                              uint64_t me) {
  // A map several threads read, and this one did before, in an earlier
  // epoch: the common case after an unrelated release ticked the clock.
  if (RefreshOwnRead(thr, s, site, me)) return;
  s->hb_lock.Lock();
  uint64_t w = s->hb_write.load(std::memory_order_relaxed);
  if (w && !HappensBefore(w, thr)) {
    AccessInfo earlier = s->write_info;
    s->hb_lock.Unlock();
    ReportUnsynchronized(KindOf(earlier.site, site), thr, map, s, site, earlier);
    // Still here: the program goes on (halt_on_error=0, a suppression, a
    // duplicate). The read is recorded as usual, so the next one in this
    // epoch takes the fast path instead of rebuilding the same report.
    s->hb_lock.Lock();
  }
  uint64_t r = s->hb_read.load(std::memory_order_relaxed);
  // Several readers share the map (a read set), and this thread already
  // read it in this epoch: nothing new to record. (Keeping the first read's
  // description is as good as the latest: no synchronization separates them,
  // so a later write is unordered with both.) This skips the stack capture,
  // which dominated reads of a map shared by several threads.
  if (IsReadSet(r) && ReadSetHas(r, me)) {
    s->hb_lock.Unlock();
    return;
  }
  AccessInfo info = Describe(thr, site);
  if (r == 0 || (!IsReadSet(r) && HappensBefore(r, thr))) {
    s->hb_read.store(me, std::memory_order_relaxed);
    s->read_info = info;
  } else if (!IsReadSet(r)) {
    // A second reader not ordered with the first: keep both.
    ReadSet *rs = NewReadSet(s);
    AddReader(&rs, r, s->read_info);
    AddReader(&rs, me, info);
    s->hb_read.store(reinterpret_cast<uint64_t>(rs) | kReadSetTag, std::memory_order_release);
  } else {
    ReadSet *rs = AsReadSet(r);
    AddReader(&rs, me, info);
    // Stored only if it grew: readers keep the map's line shared.
    if (rs != AsReadSet(r))
      s->hb_read.store(reinterpret_cast<uint64_t>(rs) | kReadSetTag, std::memory_order_release);
  }
  NotePublished(thr);  // `me` is recorded
  s->hb_lock.Unlock();
}

// Runs inside the thread's write region. In a correct program no other
// thread is then inside a region on this map. One that goes on after a
// report (halt_on_error=0, a suppression) has readers and writers in their
// regions at once, so a map with a read set is changed under hb_lock: the
// set is emptied and kept (never freed while a reader may look at it). A map
// without one (one thread's map, ordered readers) needs no lock: at worst a
// racing reader's brand-new set is dropped here and leaks, in such a
// program only.
// `locked`: whether this thread holds hb_lock, taken iff hb_read held a set.
MG_ALWAYS_INLINE uint64_t LoadReadsForWrite(MapShadow *s, bool *locked) {
  uint64_t r = s->hb_read.load(std::memory_order_acquire);
  *locked = IsReadSet(r);
  if (*locked) {
    s->hb_lock.Lock();
    r = s->hb_read.load(std::memory_order_relaxed);
  }
  return r;
}

MG_NOINLINE void HbOnWriteSlow(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                               uint64_t me) {
  bool locked;
  uint64_t r = LoadReadsForWrite(s, &locked);
  uint64_t w = s->hb_write.load(std::memory_order_relaxed);
  // The first earlier access not ordered before this write, if any.
  bool unordered = false;
  AccessInfo earlier;
  if (w && !HappensBefore(w, thr)) {
    unordered = true;
    earlier = s->write_info;
  } else if (r && !IsReadSet(r)) {
    if (!HappensBefore(r, thr)) {
      unordered = true;
      earlier = s->read_info;
    }
  } else if (r) {
    ReadSet *rs = AsReadSet(r);
    uint32_t n = rs->count.load(std::memory_order_relaxed);
    for (uint32_t i = 0; i < n && !unordered; i++)
      if (!HappensBefore(rs->At(i).epoch.load(std::memory_order_relaxed), thr)) {
        unordered = true;
        earlier = rs->At(i).Load();
      }
  }
  if (unordered) {
    if (locked) s->hb_lock.Unlock();
    ReportUnsynchronized(KindOf(earlier.site, site), thr, map, s, site, earlier);
    // The program goes on: record this write as usual (see HbOnReadSlow).
    r = LoadReadsForWrite(s, &locked);
  }
  AccessInfo info = Describe(thr, site);
  s->hb_read.store(0, std::memory_order_relaxed);
  if (IsReadSet(r)) {
    // Emptied, and kept for the next read set (see AddReader). The map has
    // no spare here: a new read set always takes it, under hb_lock.
    ReadSet *rs = AsReadSet(r);
    rs->count.store(0, std::memory_order_release);
    s->spare_reads = rs;
  }
  s->hb_write.store(me, std::memory_order_relaxed);
  s->write_info = info;
  // A destruction's record is wiped by its end (destroy_end resets the map),
  // unless the map lives on (a nested destruction region, or one a longjmp
  // abandons), which publishes it then: a thread whose last act is
  // destroying its local maps after the release that ends its work keeps
  // that release its last published clock.
  if (site->kind != MG_DESTROY) NotePublished(thr);
  if (locked) s->hb_lock.Unlock();
}

}  // namespace mapguard
