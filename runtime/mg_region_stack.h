// A thread's region stack: the map regions the thread is inside, innermost
// last. This class is its one owner: pushes, tombstones, pops, finds, counts
// and the walks that revocation, fork and reports make all go through it.
//
// ---- The invariant (the one place it is written down) ----
//  S1  Only the owning thread writes the stack, and its signal handlers, which
//      run to completion on top of whatever instruction they interrupted.
//      One exception: a revoker turns an entry's mode kRegionOwned into
//      kRegionCounted or kRegionNested while the map's owner field says
//      kOwnerRevoking (mg_ownership.cpp, R3). Other threads only read.
//  S2  Every entry at or above the depth is free: its map is null. Every
//      entry below it is live (map set) or a tombstone (map null: ended, not
//      popped yet). Only tombstones at the top are popped.
//  S3  An entry is complete before anyone can see it: mode, site, traced,
//      caller_sp, then map (release), then depth (release). A reader that
//      loads map with acquire and finds its map sees the rest of the entry.
//  S4  A push reserves its index first (reserve_ = index + 1) and a push
//      that finds a reservation above the depth (a signal handler that
//      interrupted a push) pushes above it; each push restores the
//      reservation it found after its depth store. So an entry is written
//      once, by the push that reserved it: a handler never overwrites it and
//      a revoker's R3 mark on it is never undone.
//  S5  Removal is two steps. Tombstone (map = null): the entry keeps its
//      index, so a handler that pushes meanwhile goes above it. Then pop:
//      the depth drops over every tombstone at the top. A handler may pop
//      the interrupted code's tombstone together with its own; the
//      interrupted pop's own depth store then covers only free entries
//      again, which S2 allows.
//  S6  The first kInline entries live here (the inlined fast path reads them
//      at fixed offsets); deeper ones in an overflow array, mapped by the
//      first push past kInline (mmap is async-signal-safe) and kept for the
//      slot's later threads. Entries past capacity() are counted in the
//      depth only: unrecorded. Such regions are always counted in the map's
//      state word (never owned or announced), and an end there takes the
//      top one, whichever it was (PopUnrecorded); counts stay exact because
//      the end gives back its own map's unit, but a report cannot name such
//      a region and a destruction beside one cannot tell whether it was the
//      map's last. A recorded entry ended below unrecorded ones stays a
//      tombstone until they end (Trim never drops a live unrecorded entry).
//
// Reads from other threads (reports, a revoker, a writer's W3 scan) are
// racy by design: they load map with acquire and re-check it after reading
// the rest (Entry may be reused meanwhile).
#ifndef MAPGUARD_REGION_STACK_H
#define MAPGUARD_REGION_STACK_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "mapguard/interface.h"

#ifndef MG_ALWAYS_INLINE
#define MG_ALWAYS_INLINE inline __attribute__((always_inline))
#define MG_LIKELY(x) __builtin_expect(!!(x), 1)
#define MG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#endif

namespace mapguard {

// How a region is accounted for; see the ownership protocol in mg_ownership.cpp.
enum RegionMode : uint8_t {
  kRegionOwned = 0,    // the map is owned by this thread: only this stack records it
  kRegionCounted = 1,  // in the map's state word (a unit, or the writer field)
  kRegionNested = 2,   // a write inside this thread's own counted write: the
                       // outer write holds the writer field, this one must not clear it
  kRegionSuspended = 3,  // an iteration of a node-based map whose thread released a
                         // lock in the loop body: out of the state word until the
                         // thread's next lock acquire (SuspendNodeIterations)
  kRegionAnnounced = 4,  // a read of a read-shared map (state::kAnnounce): on this
                         // stack only; a writer finds it by scanning (steps A/W)
};

// One active access region of a thread (S3 gives the order it is written in).
struct Region {
  std::atomic<void *> map;
  std::atomic<const mg_site *> site;
  uint8_t traced;  // which begin probe its begin fired: a TraceKind, 0 none (owner-only)
  // Written by the owning thread, and by a revoker while the map's owner field
  // says kOwnerRevoking (kRegionOwned -> kRegionCounted/kRegionNested only).
  std::atomic<uint8_t> mode;
  // The stack pointer of the frame that opened the region (the caller of the
  // runtime's begin entry point): a longjmp to a frame above it abandons it.
  uintptr_t caller_sp;
};

// Where the unit tests interleave "signal handlers" (tests/unit/
// region_stack_test.cpp): Hook::Step() runs between any two stores of a push
// or a pop. Production code uses NoHook, which compiles to nothing.
struct NoRegionStackHook {
  static MG_ALWAYS_INLINE void Step() {}
};

// Maps and unmaps the overflow array (mg_region_stack.cpp; mmap, not the heap).
Region *MapRegionOverflow(size_t entries);
void UnmapRegionOverflow(Region *entries, size_t count);
void DiscardRegionOverflow(Region *entries, size_t count);

template <class Hook = NoRegionStackHook>
class BasicRegionStack {
 public:
  static constexpr int kInline = 32;         // entries in the ThreadState itself
  static constexpr int kCapacity = 1 << 16;  // entries recorded at most (S6)

  // ---- The owner's operations ----

  int Depth() const { return depth_.load(std::memory_order_relaxed); }
  // Entries that are recorded now (S6): kInline until the overflow is mapped.
  int capacity() const {
    return overflow_.load(std::memory_order_relaxed) ? kCapacity : kInline;
  }
  // The entry at `index` (below the depth), or null if it is unrecorded.
  Region *At(int index) {
    if (MG_LIKELY(index < kInline)) return &inline_[index];
    Region *o = overflow_.load(std::memory_order_acquire);
    return o && index < kCapacity ? &o[index - kInline] : nullptr;
  }
  const Region *At(int index) const { return const_cast<BasicRegionStack *>(this)->At(index); }
  // The inline entry `index` (< kInline), for the fast path.
  Region &Inline(int index) { return inline_[index]; }

  // Pushes a region at depth `d`, the depth as the caller just loaded it
  // (S4 moves it above a reservation). Returns the index it took.
  MG_ALWAYS_INLINE int PushAt(int d, void *map, const mg_site *site, RegionMode mode, uint8_t traced,
                              uintptr_t caller_sp) {
    const int reserved = reserve_.load(std::memory_order_relaxed);
    if (MG_UNLIKELY(reserved > d)) d = reserved;  // inside an interrupted push
    Hook::Step();
    Region *r = MG_LIKELY(d < kInline) ? &inline_[d] : OverflowEntry(d);
    if (MG_UNLIKELY(!r)) {  // unrecorded (S6): counted in the depth only
      depth_.store(d + 1, std::memory_order_release);
      Hook::Step();
      return d;
    }
    Write(r, d, reserved, map, site, mode, traced, caller_sp);
    return d;
  }
  // The inlined fast path's push: the same, if the index is inline (it is
  // returned); else -1, having changed nothing (the caller goes to the
  // runtime).
  MG_ALWAYS_INLINE int TryPushInline(int d, void *map, const mg_site *site, RegionMode mode,
                                     uintptr_t caller_sp) {
    const int reserved = reserve_.load(std::memory_order_relaxed);
    if (MG_UNLIKELY(reserved > d)) {  // inside an interrupted push
      d = reserved;
      if (d >= kInline) return -1;
    }
    Write(&inline_[d], d, reserved, map, site, mode, false, caller_sp);
    return d;
  }
  int Push(void *map, const mg_site *site, RegionMode mode, uint8_t traced, uintptr_t caller_sp) {
    return PushAt(Depth(), map, site, mode, traced, caller_sp);
  }

  // The innermost region, if it is the one at `top` (the depth - 1, as just
  // loaded) and it is inline, on `map` at `site` in `mode`, not traced: the
  // fast path's end of its own begin. Else null.
  MG_ALWAYS_INLINE Region *InlineTopIs(int top, void *map, const mg_site *site, RegionMode mode) {
    if (MG_UNLIKELY(unsigned(top) >= unsigned(kInline))) return nullptr;
    Region &r = inline_[top];
    if (MG_UNLIKELY(r.map.load(std::memory_order_relaxed) != map ||
                    r.site.load(std::memory_order_relaxed) != site ||
                    r.mode.load(std::memory_order_relaxed) != mode || r.traced))
      return nullptr;
    return &r;
  }

  // The index of the innermost live region of `kind` on `map`, or -1 (an
  // end the plugin emits on a path where the region never began). Past the
  // recorded entries, the top one (S6).
  MG_ALWAYS_INLINE int Find(void *map, uint32_t kind) {
    const int d = Depth();
    if (MG_LIKELY(d > 0 && d <= kInline)) {
      Region &top = inline_[d - 1];
      if (MG_LIKELY(top.map.load(std::memory_order_relaxed) == map &&
                    top.site.load(std::memory_order_relaxed)->kind == kind))
        return d - 1;
    }
    return FindSlow(map, kind);
  }

  // Mode of entry `index`; an unrecorded one is counted (S6).
  RegionMode ModeOf(int index) {
    Region *r = At(index);
    return r ? RegionMode(r->mode.load(std::memory_order_relaxed)) : kRegionCounted;
  }
  uint8_t Traced(int index) {
    Region *r = At(index);
    return r ? r->traced : 0;
  }

  // S5, step one. `order`: release where the tombstone also publishes
  // something (an announced read's end, A5).
  MG_ALWAYS_INLINE void Tombstone(int index, std::memory_order order = std::memory_order_relaxed) {
    if (Region *r = At(index)) r->map.store(nullptr, order);
    Hook::Step();
  }

  // S5, step two, for the entry `removed` just tombstoned: one store when it
  // is the top one and the one below it is live, else a trim. An unrecorded
  // one (S6) is the top one.
  MG_ALWAYS_INLINE void Pop(int removed) {
    if (MG_LIKELY(removed < kInline && PopInlineIfTop(removed))) return;
    if (MG_UNLIKELY(removed >= capacity())) return PopUnrecorded();
    Trim();
  }
  // The fast path's pop of the inline top `top`, tombstoned.
  MG_ALWAYS_INLINE bool PopInlineTop(int top) {
    if (MG_LIKELY(top == 0 || inline_[top - 1].map.load(std::memory_order_relaxed))) {
      depth_.store(top, std::memory_order_release);
      Hook::Step();
      return true;
    }
    return false;  // a tombstone below: the caller trims (out of line)
  }

  // The token end's pop of the inline entry `index`, tombstoned: one store
  // when it is the top one and the one below it is live; else false (the
  // caller trims, out of line: a tombstone below, or live entries above).
  MG_ALWAYS_INLINE bool PopInlineIfTop(int index) {
    const Region *entry = &inline_[index];
    if (MG_LIKELY(Depth() == index + 1 &&
                  (index == 0 || entry[-1].map.load(std::memory_order_relaxed)))) {
      depth_.store(index, std::memory_order_release);
      Hook::Step();
      return true;
    }
    return false;
  }

  // Drops the tombstones at the top. An unrecorded top entry is live (S6):
  // it stays, and so do the tombstones below it until it ends.
  void Trim() {
    int d = Depth();
    if (d > capacity()) return;
    while (d > 0 && !At(d - 1)->map.load(std::memory_order_relaxed)) d--;
    depth_.store(d, std::memory_order_release);
    Hook::Step();
  }
  // The end of an unrecorded region (S6): the top entry, whichever it was.
  void PopUnrecorded() {
    depth_.store(Depth() - 1, std::memory_order_release);
    Hook::Step();
  }

  // Regions on `map` whose kind is in `kinds` (a bit set of 1 <<
  // mg_access_kind), not counting the innermost `skip_top` entries; with
  // `counted_only`, only those in the map's state word. `unrecorded`, if
  // given, says whether unrecorded entries (S6) may hold more.
  int Count(void *map, unsigned kinds, int skip_top, bool counted_only,
            bool *unrecorded = nullptr) {
    const int d = Depth() - skip_top;
    const int recorded = d < capacity() ? d : capacity();
    if (unrecorded) *unrecorded = d > recorded;
    int n = 0;
    for (int i = 0; i < recorded; i++) {
      const Region &r = *At(i);
      if (r.map.load(std::memory_order_relaxed) != map) continue;
      if (counted_only && r.mode.load(std::memory_order_relaxed) != kRegionCounted) continue;
      if (kinds & (1u << r.site.load(std::memory_order_relaxed)->kind)) n++;
    }
    // An unrecorded region is counted: with counted_only, each unrecorded
    // entry could be one of this map's (S6). Their number bounds it.
    if (counted_only && d > recorded) n += d - recorded;
    return n;
  }

  // Calls f(Region &, index) for each recorded entry that is live now, from
  // the outermost; `depth` is the depth the caller loaded (its order).
  template <class F>
  void ForEachLive(int depth, F &&f) {
    const int recorded = depth < capacity() ? depth : capacity();
    for (int i = 0; i < recorded; i++) {
      Region *r = At(i);
      if (r && r->map.load(std::memory_order_acquire)) f(*r, i);
    }
  }

  // Forgets every entry: a thread's start, or a thread a fork child does not
  // have (F3). Only when nobody can be pushing.
  void Clear() {
    const int recorded = Depth() < capacity() ? Depth() : capacity();
    for (int i = 0; i < recorded; i++) At(i)->map.store(nullptr, std::memory_order_relaxed);
    depth_.store(0, std::memory_order_relaxed);
    reserve_.store(0, std::memory_order_relaxed);
  }
  // At a thread's exit (the stack is empty): the overflow's pages go back
  // to the kernel; the mapping stays for the slot's next thread (a reader
  // that still looks finds zeros, free entries).
  void ReleaseMemory() {
    if (Region *o = overflow_.load(std::memory_order_relaxed))
      DiscardRegionOverflow(o, kCapacity - kInline);
  }

  // ---- For other threads (reports, revocation, W3) ----

  // The depth with seq_cst: W3 of the read-shared protocol (see A2).
  int DepthSeqCst() const { return depth_.load(std::memory_order_seq_cst); }
  int DepthAcquire() const { return depth_.load(std::memory_order_acquire); }
  // Whether the thread has regions it does not record now (S6).
  bool HasUnrecorded() const { return Depth() > capacity(); }

  // A2 of the read-shared protocol: the depth `d` (unchanged) stored again
  // as a seq_cst exchange, which a writer's W3 load reads or follows.
  MG_ALWAYS_INLINE void RepublishDepth(int d) { depth_.exchange(d, std::memory_order_seq_cst); }

 private:
  // S3 and S4: the entry `r` at index `d`, between its reservation and the
  // restore of the reservation found (`reserved`).
  MG_ALWAYS_INLINE void Write(Region *r, int d, int reserved, void *map, const mg_site *site,
                              RegionMode mode, uint8_t traced, uintptr_t caller_sp) {
    reserve_.store(d + 1, std::memory_order_relaxed);
    // Signal fences: the compiler keeps the entry's stores between the
    // reservation and its release (a handler is their only other reader).
    std::atomic_signal_fence(std::memory_order_seq_cst);
    Hook::Step();
    r->mode.store(mode, std::memory_order_relaxed);
    r->site.store(site, std::memory_order_relaxed);
    r->traced = traced;
    r->caller_sp = caller_sp;
    Hook::Step();
    r->map.store(map, std::memory_order_release);
    Hook::Step();
    depth_.store(d + 1, std::memory_order_release);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    Hook::Step();
    reserve_.store(reserved, std::memory_order_relaxed);
  }

  // The overflow entry `index` (>= kInline), mapping the array on first use.
  __attribute__((noinline)) Region *OverflowEntry(int index) {
    if (index >= kCapacity) return nullptr;
    Region *o = overflow_.load(std::memory_order_relaxed);
    if (MG_UNLIKELY(!o)) {
      if (overflow_failed_) return nullptr;
      o = MapRegionOverflow(kCapacity - kInline);
      Hook::Step();
      if (!o) {
        overflow_failed_ = true;  // unrecorded from here on, for good
        return nullptr;
      }
      // A signal handler that interrupted this mapping may have mapped one
      // already: keep the first (the handler's entries are popped by now).
      Region *expected = nullptr;
      if (!overflow_.compare_exchange_strong(expected, o, std::memory_order_release,
                                             std::memory_order_relaxed)) {
        UnmapRegionOverflow(o, kCapacity - kInline);
        o = expected;
      }
    }
    return &o[index - kInline];
  }

  MG_ALWAYS_INLINE int FindSlow(void *map, uint32_t kind) {
    const int d = Depth();
    if (d > capacity()) return d - 1;  // S6: the end takes the top one
    // An inner region is still open (regions of two maps ended out of
    // order, or a tombstone sits above): search below it.
    for (int i = d - 1; i >= 0; i--) {
      Region &r = *At(i);
      if (r.map.load(std::memory_order_relaxed) == map &&
          r.site.load(std::memory_order_relaxed)->kind == kind)
        return i;
    }
    return -1;
  }

  std::atomic<int> depth_;
  // One past the index a push in progress is writing, or 0 (S4).
  std::atomic<int> reserve_;
  Region inline_[kInline];
  std::atomic<Region *> overflow_;  // entries kInline .. kCapacity - 1, or null
  bool overflow_failed_;            // the mapping failed once: never again
};

using RegionStack = BasicRegionStack<>;

}  // namespace mapguard

#endif  // MAPGUARD_REGION_STACK_H
