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

#include <string.h>

#include "mg_rt.h"
#include "mg_shadow.h"

namespace mapguard {

// A synchronization object's clock. One cache line, 64-byte aligned (the
// arena aligns it): the lock and the first kInlineSlots entries of the clock
// share it, so a release or acquire on an object not touched lately (a
// shared_ptr's control block among thousands) misses once, not twice.
//
// Keyed by the object's exact address: the SyncVars of one 8-byte granule
// (two std::atomic<int> side by side, a flag next to a counter) hang off its
// slot in the sync table (SyncSlot, g_sync_table) in a list, each link
// tagged with the byte offset in the granule of the SyncVar it points to.
// The sync table is a table of its own, 8 bytes per granule, not the maps'
// 128-byte shadow: a program with a million shared_ptr control blocks
// touches a byte of table per byte of them, not sixteen. Links are appended
// with a compare-and-swap and never removed: freeing the object's memory
// empties its clock (ResetSyncsInRange) and keeps the SyncVar, because a thread
// may still be between an atomic read-modify-write on the object and the
// acquire that follows it when the thread that won the object frees it (a
// shared_ptr's last two owners); an empty clock carries nothing, so the slot
// counts as new. A free postpones even that while a thread holds a pin on
// the object (PinSync).
struct SyncVar {
  static constexpr uint32_t kInlineSlots = 8;
  SpinLock lock;
  // Number + 1 of a thread whose clock includes this clock, 0 if none is
  // known: that thread's next acquire has nothing to learn and skips the
  // join (a mutex its last holder locks again). Set by an acquire (the join
  // makes it true); kept by a release of that same thread (this clock then
  // becomes a copy of its clock, which only grows); reset by any other
  // change of the clock. Guarded as vc is. A number is never reused, so a
  // thread in the slot of one that exited is not taken for it.
  std::atomic<uint32_t> covered_by{0};
  VectorClock vc{inline_clock, kInlineSlots};
  uint32_t inline_clock[kInlineSlots] = {};
  // The next SyncVar of this granule, tagged with its offset; 0 at the end.
  std::atomic<uintptr_t> next{0};
};
static_assert(sizeof(SyncVar) == 64, "a SyncVar is one cache line");

// The synchronization objects of one 8-byte granule: the first SyncVar's
// address, tagged with its offset in the granule; 0 if none. The table's
// used-page bit is set while a clock in the page may be non-empty (the
// invariant of mg_shadow.h): a release into an empty clock marks it.
struct SyncSlot {
  std::atomic<uintptr_t> first;
};
extern DirectTable<SyncSlot> g_sync_table;

// The current thread's release/acquire on synchronization object `addr`.
// `held_exclusively`: the caller holds `addr` as a lock no other thread can
// hold at the same time (a mutex, a spin lock, a write-locked rwlock), so
// every release and acquire on it is already serialized by the lock itself
// and the SyncVar needs no lock of its own.
void Release(ThreadState *thr, const void *addr, bool held_exclusively = false);
// For a lock whose runtime reports the next owner's acquire possibly before
// the previous owner's release was reported (OpenMP's OMPT callbacks run
// after the lock changed hands): the object's SyncVar lock is held from the
// acquire to the release, so the two reports are serialized as the lock is.
void AcquireSerialized(ThreadState *thr, const void *addr);
void ReleaseSerialized(ThreadState *thr, const void *addr);
// The object at `addr` is gone (its memory will be reused): forget its clock.
void ResetSync(const void *addr);
// The same for every synchronization object in [begin, end) (memory given
// back: mg_free.cpp).
void ResetSyncsInRange(uintptr_t begin, uintptr_t end);
// Whether a synchronization object in [begin, end) has a non-empty clock (a
// look only, without the objects' locks).
bool AnySyncsInRange(uintptr_t begin, uintptr_t end);
// Whether any region of the sync table overlapping [begin, end) is mapped.
MG_ALWAYS_INLINE bool SyncTableMapped(uintptr_t begin, uintptr_t end) {
  return g_sync_table.AnyMapped(begin, end);
}
// Joins `clock` (an earlier moment of this thread: a release fence) into the
// object's clock, without a tick: what a relaxed write after a release fence
// publishes.
void ReleaseClock(const VectorClock &clock, const void *addr);
void Acquire(ThreadState *thr, const void *addr, bool held_exclusively = false);
// A barrier-style wait: every party releases into `addr` on arrival and
// acquires from it on return, and the last party out may free the object
// (absl::Barrier::Block deletes it; pthread_barrier_wait's serial thread may
// destroy and free it). Another party can be out of the library and not yet
// past its acquire when that happens, and the free empties the clock: the
// edge the barrier made would be lost (a false report). So each party pins
// the object's clock before the call (PinSync) and acquires from it and
// lets go after (AcquirePinned; `acquire` false only lets go: the wait
// failed, or threw). A free of a pinned clock empties it when the last pin
// goes, unless a release came in between, from the next object at that
// address: then the clock keeps both, an edge too many at worst. Pins live
// in a table of their own (mg_hb.cpp). The token is opaque; null (no hb)
// is accepted.
void *PinSync(ThreadState *thr, const void *addr);
void AcquirePinned(ThreadState *thr, void *pin, bool acquire);
// The same two on a SyncVar that lives in a record of its own, not at an
// object's address (a thread's exit record, mg_thread.cpp).
void ReleaseClockInto(const VectorClock &clock, SyncVar *sv);
void AcquireSyncVar(ThreadState *thr, SyncVar *sv, bool held_exclusively = false);

// The calling thread, if its synchronization creates happens-before now
// (detect=hb, and not inside the runtime's own locking); else null.
inline ThreadState *HbThread() {
  if (!g_detect_hb) return nullptr;
  ThreadState *thr = CurrentThread();
  return thr->ignore_sync ? nullptr : thr;
}

// The thread's own clock entry just left it (copied into a sync clock, a
// recorded access, another thread's clock). Called after the copy: a signal
// handler that ticks in between makes this claim a value that never left,
// which is safe (the slot's next owner only starts higher). A value that
// never left (the tick after a thread's last release) is behind no epoch
// anyone holds, so the slot's next owner may reuse it (mg_thread.cpp).
MG_ALWAYS_INLINE void NotePublished(ThreadState *thr) {
  std::atomic_signal_fence(std::memory_order_seq_cst);  // after the copy
  thr->clock_published = true;
}

// Sets up a new thread's clock: what its creator knew (`parent`, may be
// null for the main thread), then a fresh epoch of its own in `slot`.
void InitThreadClock(ThreadState *thr, const VectorClock *parent);
// Remembers the slot's last published clock so the next thread in it
// continues above it.
void RetireThreadClock(ThreadState *thr);
// The last clock the slot's finished owners published (0: never used).
uint32_t SlotLastClock(uint32_t slot);
// Starts the thread's next epoch (after a release). A clock that would wrap
// (2^32 epochs in one thread) turns happens-before checking off, with a
// warning, rather than let old epochs look new.
void TickClock(ThreadState *thr);
// In a fork child: everything every thread of the parent did happened before
// what the one thread left does next.
void HbAfterForkInChild(ThreadState *me);

// Readers since the last write that are not ordered with each other
// (MapShadow::hb_read, tagged): one entry per thread slot, its latest read.
//
// Layout: a header line (count, capacity, the slot of each entry) that
// changes only when a reader joins, and then one cache line per entry, which
// only that entry's thread writes once it is in. A reader of a map shared
// read-only therefore reads shared lines and writes only its own.
//
// The read-set protocol. Changed under the map's hb_lock: a reader joins
// (J), the set grows (G), a write empties it (W). Without the lock, a reader
// looks for its own epoch (L) and a reader refreshes its own entry (R):
//   J  slot[n], entry n, then count = n + 1 (release).
//   G  old->retired = 1 (seq_cst), then copy each entry: epoch (seq_cst
//      load), then info; the bigger set replaces the old one in hb_read.
//   W  count = 0 (release); the set is kept (MapShadow::spare_reads) and
//      reused by the next J: a set is never freed while its map lives, so a
//      racing reader (a program that goes on after a report) always finds a
//      ReadSet, never freed memory.
//   L  count (acquire), find the slot, compare the entry's epoch.
//   R  the entry holds an earlier epoch of this very thread (the last write
//      was checked when it was recorded, and no write since: W would have
//      emptied the set): store the info, exchange the epoch (seq_cst), then
//      load retired (seq_cst). If retired is set, G may have copied the
//      entry before the exchange, so R is done again under the lock, in
//      the current set. If it is clear, the exchange precedes G's retired
//      store in the seq_cst order, and so G's copying load, which therefore
//      sees the new epoch.
// J, G and W are serialized by hb_lock; R and L touch only their thread's
// own entry (and read the header), so several threads refresh at once.
// HbReset (the map's construction or destruction) frees the set under
// hb_lock. A reader still in R then is racing with the destruction, a race
// reported already; in a program that goes on, its stores land in the freed
// block. They can garble whatever reuses the block (the arena hands blocks
// out again whole, never split), but not the arena itself: a free block's
// list link is in the header line, which R does not write.
struct ReadSet {
  std::atomic<uint32_t> count;
  uint32_t capacity;
  std::atomic<uint32_t> retired;  // G copied it into a bigger set
  uint32_t unused;
  ReadSet *replaced;  // the smaller set this one grew from, freed with it
  struct alignas(64) Entry {
    std::atomic<uint64_t> epoch;
    // The read's AccessInfo, in two words a refreshing thread stores while
    // G or a report under the lock may copy it.
    std::atomic<const mg_site *> site;
    std::atomic<uint64_t> who;
    void Store(const AccessInfo &info) {
      uint64_t w;
      memcpy(&w, reinterpret_cast<const char *>(&info) + sizeof(info.site), sizeof(w));
      site.store(info.site, std::memory_order_relaxed);
      who.store(w, std::memory_order_relaxed);
    }
    AccessInfo Load() const {
      AccessInfo info;
      info.site = site.load(std::memory_order_relaxed);
      uint64_t w = who.load(std::memory_order_relaxed);
      memcpy(reinterpret_cast<char *>(&info) + sizeof(info.site), &w, sizeof(w));
      return info;
    }
  };
  static_assert(sizeof(AccessInfo) == sizeof(const mg_site *) + sizeof(uint64_t),
                "an AccessInfo is stored as a site and one word");
  static constexpr size_t kLine = 64;
  static size_t EntriesOffset(uint32_t capacity) {
    return (sizeof(ReadSet) + capacity * sizeof(uint32_t) + kLine - 1) & ~(kLine - 1);
  }
  static size_t Bytes(uint32_t capacity) { return EntriesOffset(capacity) + capacity * sizeof(Entry); }
  // Entries in an allocation of at least `bytes`, rounded up to the arena's
  // power-of-two block (no room wasted).
  static uint32_t CapacityFor(size_t bytes) {
    size_t block = 64;
    while (block < bytes) block *= 2;
    uint32_t cap = uint32_t(block / sizeof(Entry));
    while (Bytes(cap) > block) cap--;
    return cap;
  }
  std::atomic<uint32_t> *Slots() { return reinterpret_cast<std::atomic<uint32_t> *>(this + 1); }
  const std::atomic<uint32_t> *Slots() const {
    return reinterpret_cast<const std::atomic<uint32_t> *>(this + 1);
  }
  Entry &At(uint32_t i) {
    return reinterpret_cast<Entry *>(reinterpret_cast<char *>(this) + EntriesOffset(capacity))[i];
  }
  const Entry &At(uint32_t i) const { return const_cast<ReadSet *>(this)->At(i); }
  // The entry of thread slot `slot` among the first `n`, or -1.
  MG_ALWAYS_INLINE int Find(uint32_t slot, uint32_t n) const {
    const std::atomic<uint32_t> *slots = Slots();
    for (uint32_t i = 0; i < n; i++)
      if (slots[i].load(std::memory_order_relaxed) == slot) return int(i);
    return -1;
  }
};
static_assert(sizeof(ReadSet) == 24, "the slots follow the header");

// hb_read holds an epoch (below 2^52) or a ReadSet* tagged with bit 63.
constexpr uint64_t kReadSetTag = uint64_t(1) << 63;
MG_ALWAYS_INLINE bool IsReadSet(uint64_t r) { return r & kReadSetTag; }
MG_ALWAYS_INLINE ReadSet *AsReadSet(uint64_t r) {
  return reinterpret_cast<ReadSet *>(r & ~kReadSetTag);
}
// L: this thread's read in epoch `me` is in the set already.
MG_ALWAYS_INLINE bool ReadSetHas(uint64_t r, uint64_t me) {
  const ReadSet *rs = AsReadSet(r);
  int i = rs->Find(EpochSlot(me), rs->count.load(std::memory_order_acquire));
  return i >= 0 && rs->At(uint32_t(i)).epoch.load(std::memory_order_relaxed) == me;
}

// Steps of the read-set protocol where the stress test (tests/unit) injects
// random delays; null outside it.
enum class ReadSetStep { kRefreshFound, kRefreshExchanged, kGrowRetired, kRefreshRedone };
extern void (*g_read_set_step_hook)(ReadSetStep);

MG_ALWAYS_INLINE uint64_t CurrentEpoch(ThreadState *thr) { return thr->epoch; }
// After every change of the thread's own clock entry (TickClock,
// InitThreadClock; Acquire's join never raises it, but re-reads it anyway).
MG_ALWAYS_INLINE void SyncOwnEpoch(ThreadState *thr) {
  thr->epoch = MakeEpoch(thr->slot, thr->vc.Get(thr->slot));
}

// The per-map checks, called from the region begin/end hot path when
// g_detect_hb. Report an unsynchronized pair, or record this access. The
// common case, nothing new since this thread's last access to the map in
// the same epoch, is decided inline; the rest is out of line.
MG_NOINLINE void HbOnReadSlow(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                              uint64_t me);
MG_NOINLINE void HbOnWriteSlow(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                               uint64_t me);

// True if this read needs nothing checked or recorded (the common case).
MG_ALWAYS_INLINE bool HbReadIsCurrent(ThreadState *thr, MapShadow *s, uint64_t me) {
  // Same epoch as this thread's last read: nothing new to check or record.
  uint64_t r = s->hb_read.load(std::memory_order_acquire);
  if (MG_LIKELY(r == me)) return true;
  // Reading what this thread wrote in this epoch: any thread ordered after
  // the write is ordered after this read too, so there is nothing to record.
  if (r == 0 && s->hb_write.load(std::memory_order_relaxed) == me) return true;
  // Several threads read the map and this one already did in this epoch:
  // what HbOnReadSlow would find under the lock, found without it, so
  // readers of a map shared read-only do not take turns on its lock.
  return IsReadSet(r) && ReadSetHas(r, me);
}

MG_ALWAYS_INLINE void HbOnRead(ThreadState *thr, MapShadow *s, void *map, const mg_site *site) {
  const uint64_t me = CurrentEpoch(thr);
  if (!HbReadIsCurrent(thr, s, me)) HbOnReadSlow(thr, s, map, site, me);
}

// True if this write needs nothing checked (the recorded write stands for
// it). Runs only inside the thread's write region (see HbOnWriteSlow).
MG_ALWAYS_INLINE bool HbWriteIsCurrent(MapShadow *s, uint64_t me) {
  uint64_t w = s->hb_write.load(std::memory_order_relaxed);
  uint64_t r = s->hb_read.load(std::memory_order_relaxed);
  if (MG_LIKELY(w == me && (r == 0 || r == me))) {
    // Same epoch as this thread's last write, and no other thread read since:
    // the recorded write stands for this one too.
    if (r) s->hb_read.store(0, std::memory_order_relaxed);
    return true;
  }
  return false;
}

MG_ALWAYS_INLINE void HbOnWrite(ThreadState *thr, MapShadow *s, void *map, const mg_site *site) {
  const uint64_t me = CurrentEpoch(thr);
  if (!HbWriteIsCurrent(s, me)) HbOnWriteSlow(thr, s, map, site, me);
}

// The map is gone (destroyed) or new (constructed): forget its history.
void HbReset(MapShadow *s);

}  // namespace mapguard

#endif
