// MapShadow: what mapguard knows about one map object, and where it lives.
//
// The shadow of a map is found by address, not by hashing: a two-level
// direct-mapped table (DirectTable) gives every 8-byte granule of the address
// space one 128-byte MapShadow slot. Level one covers the 47-bit user address
// space in 4 MiB regions; a region's level-two array is mapped
// (MAP_NORESERVE) the first time a map lives there, so only pages holding
// live shadows cost memory. Nothing is ever unlinked: destroying a map resets
// its slot in place, so a later map at the same address starts clean and
// memory stays bounded by the address range maps occupy, however many maps
// come and go. Synchronization objects have a table of the same kind with
// 8-byte slots (SyncSlot, mg_hb.h): an atomic costs no map-sized slot.
//
// Memory the program frees resets the slots in it too (mg_free.cpp), whoever
// destroyed what lived there: a map destroyed by code built without the
// plugin, a freed atomic's clock. To find the few slots in use in a freed
// block without reading all of them, each region keeps a bitmap with one bit
// per 4 KiB page of slots (for MapShadow, 32 slots, 256 bytes of program
// memory). The invariant, owned by DirectTable: a slot holds map history (an
// owner, a state, an epoch, a creation, statistics), or a sync slot a
// non-empty clock, only if its page's bit is set. (write_info and read_info
// may keep stale words; they are read only when hb_write or hb_read says
// there was an access.) Every path that first writes a slot after a reset
// marks the page before the write (MarkUsed): a begin that is not the
// owner's (the fast path's only other case, a read-shared map, went through
// it first), a construction, a release into an empty sync clock. Only the
// reset of a whole page clears the bit.
#ifndef MAPGUARD_SHADOW_H
#define MAPGUARD_SHADOW_H

#include "mg_arena.h"
#include "mg_rt.h"

namespace mapguard {

// The state word packs everything a begin/end must check into one atomic, so
// each begin and end is a single read-modify-write:
//   bits  0..19  writer: slot + 1 of the thread in a write region, 0 if none
//   bits 20..39  readers: read regions in flight
//   bits 40..59  iterators: iteration regions in flight
//   bit  62      announce: the map is read-shared; read regions are announced
//                on their thread's own region stack instead of counted here,
//                and the next writer scans for them (mg_ownership.cpp, A/W steps)
//   bit  63      frozen: a report about this map is being written; threads
//                leaving a region on it wait so their stack can be taken.
namespace state {
constexpr uint64_t kWriterMask = (1ull << 20) - 1;
constexpr int kReaderShift = 20;
constexpr uint64_t kReaderOne = 1ull << kReaderShift;
constexpr uint64_t kReaderMask = kWriterMask << kReaderShift;
constexpr int kIterShift = 40;
constexpr uint64_t kIterOne = 1ull << kIterShift;
constexpr uint64_t kIterMask = kWriterMask << kIterShift;
constexpr uint64_t kAnnounce = 1ull << 62;
constexpr uint64_t kFrozen = 1ull << 63;
MG_ALWAYS_INLINE uint32_t Writer(uint64_t s) { return uint32_t(s & kWriterMask); }
MG_ALWAYS_INLINE uint32_t Readers(uint64_t s) { return uint32_t((s & kReaderMask) >> kReaderShift); }
MG_ALWAYS_INLINE uint32_t Iterators(uint64_t s) { return uint32_t((s & kIterMask) >> kIterShift); }
}  // namespace state
static_assert(kMaxThreads < state::kWriterMask, "writer ids must fit the writer field");
constexpr uint32_t kOwnerShared = 0xffffffffu;    // used by several threads
constexpr uint32_t kOwnerRevoking = 0xfffffffeu;  // a revocation is under way

// Who made an access, for the report about a later one.
struct AccessInfo {
  const mg_site *site;
  uint32_t thread_number;
  uint32_t stack_id : 31;           // StackDepot id, 0 if not recorded
  uint32_t under_shared_lock : 1;   // its thread held a reader lock (report hint)
};

struct SyncVar;
struct ReadSet;

struct MapShadow {
  // ---- overlap detection (Go parity): the hot path ----
  std::atomic<uint64_t> state;
  std::atomic<const mg_site *> writer_site;   // the write in flight
  std::atomic<const mg_site *> created_site;  // constructor call, if seen
  std::atomic<uint32_t> created_by;           // thread number + 1, 0 unknown
  // ---- happens-before (detect=hb), FastTrack style; guarded by hb_lock ----
  SpinLock hb_lock;
  std::atomic<uint64_t> hb_write;  // epoch of the last write, 0 if none
  // Epoch of the last read if the reads since the last write are ordered;
  // otherwise a ReadSet* tagged with bit 63 (concurrent readers).
  std::atomic<uint64_t> hb_read;
  AccessInfo write_info;
  AccessInfo read_info;
  uint64_t reserved_sync;  // was the sync objects' link: they have a table of their own
  // ---- print_stats=1 only ----
  std::atomic<struct MapStats *> stats;
  // ---- print_stats=1 or a traced rehash probe: the bucket count the last
  // write left, plus one; 0 while unknown (MG_SITE_HASHTABLE_LAYOUT maps only) ----
  std::atomic<uint64_t> buckets;
  // ---- ownership: the overlap check without atomic read-modify-writes ----
  // slot + 1 of the one thread that has used the map so far; its regions are
  // kept only on its own region stack, not in `state`. The first access by
  // another thread revokes ownership (RevokeOwner): the revoker counts the
  // owner's open regions into `state` (R3), then the map is shared for good
  // (until it is destroyed). 0: no owner yet. A map built at a site whose
  // maps change hands starts shared (OwnerOfNewMap).
  std::atomic<uint32_t> owner;
  // Thread number + 1 of the writer that stored writer_site: a report can
  // still name the write after that thread left its region.
  std::atomic<uint32_t> writer_number;
  // The read set a write emptied (with the smaller sets it grew from), kept
  // for the map's next read set instead of being freed: a reader that looks
  // at a set without hb_lock (ReadSetHas) may be racing with that write in a
  // program that goes on after a report, and must still find a ReadSet
  // there. Guarded by hb_lock; freed by HbReset.
  ReadSet *spare_reads;
  // A tracer's region probe fired for this map since it was built: the
  // kernel keeps state about it, which its destruction (or the next
  // construction here) must reset (map_destroy / map_create probes). Maps
  // it never watched cost no trap when built or destroyed.
  std::atomic<uint32_t> kernel_state;
  uint32_t reserved;
};
static_assert(sizeof(MapShadow) == 128, "two cache lines per MapShadow");

// A direct-mapped table of one Slot per 8-byte granule of the user address
// space, in 4 MiB regions mapped on first use, with one used-bit per 4 KiB
// page of slots (the invariant above, stated for Slot; SyncSlot,
// mg_hb.h, keeps the same one for non-empty clocks).
template <typename Slot>
class DirectTable {
 public:
  static constexpr int Log2(size_t n) { return n <= 1 ? 0 : 1 + Log2(n / 2); }
  static constexpr int kRegionBits = 22;  // 4 MiB of program memory per region
  static constexpr int kGranuleBits = 3;  // one shadow per 8 bytes
  static constexpr int kAddressBits = 47;
  static constexpr uintptr_t kRegions = uintptr_t(1) << (kAddressBits - kRegionBits);
  static constexpr uintptr_t kSlotsPerRegion = uintptr_t(1) << (kRegionBits - kGranuleBits);

  // The shadow of the map at `addr`; nullptr only for addresses outside the
  // user address space (never a real map).
  MG_ALWAYS_INLINE Slot *Get(const void *addr) {
    uintptr_t a = reinterpret_cast<uintptr_t>(addr);
    if (MG_UNLIKELY(a >> kAddressBits)) return nullptr;
    Slot *region = regions_[a >> kRegionBits].load(std::memory_order_acquire);
    if (MG_UNLIKELY(!region)) region = MapRegion(a >> kRegionBits);
    return &region[(a & ((uintptr_t(1) << kRegionBits) - 1)) >> kGranuleBits];
  }
  // Shadow if one was ever mapped for `addr`, without mapping one.
  Slot *Find(const void *addr);
  // The same, inline, for the fast path: nullptr if `addr`'s region has no
  // shadow mapped yet (or `addr` is outside the user address space).
  MG_ALWAYS_INLINE Slot *GetIfMapped(const void *addr) {
    uintptr_t a = reinterpret_cast<uintptr_t>(addr);
    if (MG_UNLIKELY(a >> kAddressBits)) return nullptr;
    Slot *region = regions_[a >> kRegionBits].load(std::memory_order_acquire);
    if (MG_UNLIKELY(!region)) return nullptr;
    return &region[(a & ((uintptr_t(1) << kRegionBits) - 1)) >> kGranuleBits];
  }
  size_t RegionsMapped() const { return regions_mapped_.load(std::memory_order_relaxed); }
  // Whether any region overlapping [begin, end) has shadow.
  MG_ALWAYS_INLINE bool AnyMapped(uintptr_t begin, uintptr_t end) const {
    const uintptr_t limit = uintptr_t(1) << kAddressBits;
    if (begin >= limit) return false;
    if (end > limit) end = limit;
    for (uintptr_t r = begin >> kRegionBits; r <= (end - 1) >> kRegionBits; r++)
      if (regions_[r].load(std::memory_order_relaxed)) return true;
    return false;
  }

  // One used-bit per 4 KiB page of slots: for a MapShadow, 32 slots, 256
  // bytes of program memory.
  static constexpr int kPageBits = kGranuleBits + Log2(4096 / sizeof(Slot));
  static constexpr uintptr_t kPagesPerRegion = uintptr_t(1) << (kRegionBits - kPageBits);
  static constexpr size_t kRegionShadowBytes = kSlotsPerRegion * sizeof(Slot);
  // Before the first write to the shadow of `addr` after a reset (the
  // invariant above). `addr`'s region is mapped (the caller has its shadow).
  MG_ALWAYS_INLINE void MarkUsed(const void *addr) {
    uintptr_t a = reinterpret_cast<uintptr_t>(addr);
    Slot *region = regions_[a >> kRegionBits].load(std::memory_order_acquire);
    uintptr_t page = (a & ((uintptr_t(1) << kRegionBits) - 1)) >> kPageBits;
    std::atomic<uint64_t> &word = UsedBits(region)[page >> 6];
    const uint64_t bit = uint64_t(1) << (page & 63);
    if (MG_UNLIKELY(!(word.load(std::memory_order_relaxed) & bit)))
      word.fetch_or(bit, std::memory_order_relaxed);
  }
  // False if no page overlapping [begin, end) is marked used; true if one
  // is, or when unsure (a range over 64 pages of slots, 16 KiB of map memory,
  // or across regions): what a free
  // of a small block looks at before anything else.
  MG_ALWAYS_INLINE bool MaybeUsed(uintptr_t begin, uintptr_t end) const {
    if (MG_UNLIKELY(end - begin > (uintptr_t(64) << kPageBits) || end <= begin ||
                    (end >> kAddressBits) != 0 || (begin >> kRegionBits) != ((end - 1) >> kRegionBits)))
      return end > begin;
    Slot *region = regions_[begin >> kRegionBits].load(std::memory_order_acquire);
    if (!region) return false;
    const uintptr_t mask = (uintptr_t(1) << kRegionBits) - 1;
    const uintptr_t first = (begin & mask) >> kPageBits, last = ((end - 1) & mask) >> kPageBits;
    const std::atomic<uint64_t> *bits = UsedBits(region);
    const uint64_t lo = ~uint64_t(0) << (first & 63), hi = ~uint64_t(0) >> (63 - (last & 63));
    if ((first >> 6) == (last >> 6))
      return bits[first >> 6].load(std::memory_order_relaxed) & lo & hi;
    return (bits[first >> 6].load(std::memory_order_relaxed) & lo) |
           (bits[last >> 6].load(std::memory_order_relaxed) & hi);
  }
  // Calls `reset(slot)` for every slot of a granule inside [begin, end) whose
  // page is marked used; reset returns whether the slot is all zeros now. A
  // page inside the range whose slots all are loses its mark.
  template <typename Reset>
  void ForEachUsed(uintptr_t begin, uintptr_t end, Reset &&reset);

 private:
  static std::atomic<uint64_t> *UsedBits(Slot *region) {
    return reinterpret_cast<std::atomic<uint64_t> *>(reinterpret_cast<char *>(region) +
                                                     kRegionShadowBytes);
  }
  static const std::atomic<uint64_t> *UsedBits(const Slot *region) {
    return UsedBits(const_cast<Slot *>(region));
  }
  MG_NOINLINE Slot *MapRegion(uintptr_t index);
  // Zero-initialized, so it lives in .bss: 256 MiB of address space whose
  // pages the kernel supplies only where a region is actually mapped. Being
  // static, it is usable before any constructor runs.
  std::atomic<Slot *> regions_[kRegions];
  std::atomic<size_t> regions_mapped_{0};
};
// mmap/munmap of a region's slots (mg_shadow.cpp): dies if there is no memory.
void *MapShadowMemory(size_t bytes);
void UnmapShadowMemory(void *p, size_t bytes);

using ShadowTable = DirectTable<MapShadow>;
extern ShadowTable g_shadow;

template <typename Slot>
template <typename Reset>
void DirectTable<Slot>::ForEachUsed(uintptr_t begin, uintptr_t end, Reset &&reset) {
  constexpr uintptr_t kGranule = uintptr_t(1) << kGranuleBits;
  constexpr uintptr_t kPage = uintptr_t(1) << kPageBits;
  constexpr uintptr_t kRegionMask = (uintptr_t(1) << kRegionBits) - 1;
  begin = (begin + kGranule - 1) & ~(kGranule - 1);  // granules wholly inside
  end &= ~(kGranule - 1);
  const uintptr_t limit = uintptr_t(1) << kAddressBits;
  if (end > limit) end = limit;
  while (begin < end) {
    const uintptr_t region_end = (begin | kRegionMask) + 1;
    const uintptr_t stop = end < region_end ? end : region_end;
    Slot *region = regions_[begin >> kRegionBits].load(std::memory_order_acquire);
    if (!region) {
      begin = stop;
      continue;
    }
    std::atomic<uint64_t> *bits = UsedBits(region);
    for (uintptr_t a = begin; a < stop;) {
      const uintptr_t page = (a & kRegionMask) >> kPageBits;
      std::atomic<uint64_t> &word = bits[page >> 6];
      const uint64_t w = word.load(std::memory_order_relaxed);
      if (!w) {  // 64 unused pages: skip them at once
        a = ((a >> (kPageBits + 6)) + 1) << (kPageBits + 6);
        continue;
      }
      const uintptr_t page_begin = a & ~(kPage - 1), page_end = page_begin + kPage;
      const uintptr_t to = stop < page_end ? stop : page_end;
      const uint64_t bit = uint64_t(1) << (page & 63);
      if (w & bit) {
        bool all_clean = true;
        for (uintptr_t g = a; g < to; g += kGranule)
          all_clean &= reset(&region[(g & kRegionMask) >> kGranuleBits]);
        if (all_clean && a == page_begin && to == page_end)
          word.fetch_and(~bit, std::memory_order_relaxed);
      }
      a = to;
    }
    begin = stop;
  }
}

// Cold: mapping a region's slots on first use.
template <typename Slot>
MG_NOINLINE Slot *DirectTable<Slot>::MapRegion(uintptr_t index) {
  // The slots, then the used-page bitmap.
  const size_t bytes = kRegionShadowBytes + kPagesPerRegion / 8;
  Slot *fresh = static_cast<Slot *>(MapShadowMemory(bytes));
  Slot *expected = nullptr;
  // Two threads may map the same region at once; the loser unmaps its copy.
  if (!regions_[index].compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) {
    UnmapShadowMemory(fresh, bytes);
    return expected;
  }
  regions_mapped_.fetch_add(1, std::memory_order_relaxed);
  return fresh;
}

template <typename Slot>
Slot *DirectTable<Slot>::Find(const void *addr) {
  return GetIfMapped(addr);
}

}  // namespace mapguard

#endif  // MAPGUARD_SHADOW_H
