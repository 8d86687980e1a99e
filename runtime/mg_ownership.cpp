// Map ownership: the overlap check without atomic read-modify-writes for a
// map only one thread uses, and how a second thread takes such a map over
// without interrupting the owner (no signal, no waiting for the owner).
//
// ---- The protocol (the one place it is written down) ----
//
// MapShadow::owner:   0 (no owner yet) -> O (slot + 1 of the owning thread)
//                     -> kOwnerRevoking -> kOwnerShared (for good, until the
//                     map is destroyed and the field reset to 0).
// Region::mode:       kRegionOwned -> kRegionCounted | kRegionNested, changed
//                     by the owner itself, or by the revoker while the owner
//                     field says kOwnerRevoking.
//
// Who counts a region in the map's state word, and when:
//   * a region opened while the map is shared: its own thread, at begin;
//   * a region of the owner O open when a revoker R starts: R, in R3;
//   * a region O opens (or ends) while R works: O, after R is done (B3/E3).
//
// Owner O, begin on a map it owns:
//   B1  push the entry: mode = kRegionOwned, site, map (release), depth (release),
//       at an index reserved first: a signal handler that interrupts the
//       push pushes above it, so the entry R3 may read and mark is written
//       once, by O, and never rewritten (mg_region_stack.h, S4)
//   B2  compiler barrier
//   B3  load owner: == O -> done, the region is owned (no read-modify-write).
//       otherwise: wait until owner != kOwnerRevoking; if R counted the entry
//       (mode != kRegionOwned) it is already in the state word, else O marks
//       it counted and counts it itself.
// Owner O, end of an owned region:
//   E1  tombstone the entry (map = nullptr); it keeps its place on the stack
//   E2  compiler barrier
//   E3  load owner: == O -> done. otherwise: wait until owner !=
//       kOwnerRevoking; if R counted the entry (mode == kRegionCounted), give
//       the count back. Then pop.
// Revoker R (first access by a thread other than O):
//   R1  CAS owner O -> kOwnerRevoking (a loser waits until the map is shared);
//       R->revoking names the map meanwhile (for a fork child)
//   R2  membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
//   R3  for each entry of O's stack below O's depth (acquire) whose map
//       (acquire) is this map and whose mode is kRegionOwned: add its unit
//       (read, iteration) or take the writer field (write, destruction; if
//       O's own counted write holds it already the entry is kRegionNested),
//       then set its mode.
//   R4  owner = kOwnerShared (release).
//
// Why it is exact: R2 makes every running thread execute a full barrier, so
// (asymmetric Dekker) for each of O's B3/E3 loads either the load sees
// kOwnerRevoking, or R3 sees the store of B1/E1 that precedes it. Hence:
//   - an owned region that B3 let through is seen by R3 unless E1 removed
//     it first, in which case E3 saw "owned" only if R3 did not see it;
//   - whenever R3 may have counted an entry that O is adding or removing,
//     O's B3/E3 take the slow branch and settle after R4, reading the mode
//     R3 left (R4's release, O's acquire). Exactly one side counts each
//     region, and each count is given back exactly once.
//   - after R2, O performs at most one more B or E on this map before it
//     waits, so R3 never sees an entry of this map that O overwrites while R3
//     reads it (entries are pushed mode, site, map; R3 reads map with acquire).
// R never waits for O: O may be blocked in a system call, in a signal
// handler, stopped in a debugger; nothing is asked of it. O waits only for R,
// which waits for nothing (R3 is a bounded loop over O's recorded entries
// entries). A fork child finishes the revocations of revokers that do not
// exist there (OwnershipAfterForkInChild).
//
// Fork child (OwnershipAfterForkInChild; only the forking thread F exists):
// the other threads stopped wherever they were, possibly between two steps
// of a region: pushed but not yet counted in the state word (begin), count
// given back but not yet popped (end), a writer field taken or not, a map
// frozen by a report they were writing. Their stacks and the state words
// they touched cannot be trusted to agree, so nothing is subtracted:
//   F1  a revocation whose revoker is gone is finished for F (R3 over F's
//       stack, then owner = kOwnerShared);
//   F2  every map named on a gone thread's stack (or being revoked by one)
//       gets its state word rebuilt from F's stack alone: one kReaderOne or
//       kIterOne per counted read or iteration of F on it, F's slot + 1 in
//       the writer field for a counted write, not frozen;
//   F3  the gone threads' stacks are emptied;
//   F4  maps F itself is inside are unfrozen.
// F runs no begin or end during this (it is inside fork()), so F's own
// stack and counts agree, except when fork() is called from a signal
// handler that interrupted F between two steps of its own begin or end: then
// one count of F's may be off by one in the child. A gone thread's regions
// past the recorded ones are counted but unnamed: a map only they name keeps their
// counts.
//
// ---- Read-shared maps: readers that do not write the map's cache line ----
//
// A shared map's reads are counted in its state word: two locked
// read-modify-writes per read on one cache line, which moves between the
// cores of threads that only read. Once two reads of a shared map overlap
// (a read's count finds another reader counted, no writer), the map turns
// read-shared (state::kAnnounce): reads then only announce themselves on
// their own thread's region stack, and the next writer, which turns the map
// back into counted mode, scans the other threads' stacks for them.
//
// Region::mode:       kRegionCounted -> kRegionAnnounced (A1)
//                     -> kRegionCounted (A3 saw a writer, frozen or no kAnnounce)
//
// Reader T, read begin on a map it does not own (pushed as kRegionCounted):
//   A0  load state: kAnnounce set, no writer, not frozen -> A1; otherwise the
//       counted read (fetch_add kReaderOne). A counted read whose fetch_add
//       found another reader and no writer, frozen or kAnnounce sets kAnnounce.
//   A1  mode = kRegionAnnounced (the entry is below T's depth already)
//   A2  depth stored again with a seq_cst exchange (a locked instruction on
//       T's own cache line; cheaper than a fence on x86)
//   A3  seq_cst load of state: still kAnnounce, no writer, not frozen -> done, nothing
//       counted. Otherwise mode = kRegionCounted and the counted read (which
//       checks the writer as always).
// Reader T, end of an announced region:
//   A4  load state: frozen -> wait until it is not (the region stays put, so
//       the reporter finds T inside it)
//   A5  tombstone and pop the entry, as for any region
// Writer W, taking the writer field (WriteBeginSlow; the fast path's
// compare-and-swap from 0 fails while kAnnounce is set):
//   W1  seq_cst compare-and-swap: writer field = W, kAnnounce cleared
//   W2  seq_cst fence
//   W3  if W1 cleared kAnnounce: for every other live thread, a seq_cst load
//       of its depth, then its entries below it: one on this map in
//       kRegionAnnounced is a read in flight during the write, reported like
//       a counted reader.
//
// Why it is exact: A2, A3, W1 and W3's depth load are seq_cst operations, a
// Dekker pair in their single total order. Either A3 sees W1 (the reader
// counts itself and the counted check finds the writer, or the writer has
// left), or W3's depth load reads A2 or later and, A2 being a release, sees
// A1 too. A reader
// that announced after W1 is not possible (A3 would have seen W1); a writer
// that took the field before an announced reader's A3 finds it in W3. A
// region W3 sees was opened while W held the field: the two regions overlap
// in time, which is what a counted reader found by W's count check means
// too, so correctly synchronized code is never reported (a load cannot
// observe a store that happens after it). kAnnounce is set only while no
// writer holds the field (A0: the setter is counted, so no other writer can
// take the field), and every taker of the field from counted mode clears
// it. CountForRevocation takes the field for an owner's write while the map
// is not yet shared, when no thread can have announced a read of it (A1 is
// reached only from a shared map's begin). A4 is not atomic with a freeze:
// a reader that passed A4 just before W froze the map is gone by the time
// the report looks for it, and the report names it from the map's history
// without its live stack (as for a counted reader whose end came first).
// print_stats=1's "most concurrent readers" counts counted reads only (a map
// that turned read-shared has had at least two).
// A fork child rebuilds the state word of maps on gone threads' stacks from
// the forking thread's counted regions (F2), which drops kAnnounce: counted
// mode is always correct.
//
// ---- Maps built to be handed over: born shared ----
//
// R2 is a system call that interrupts every CPU running a thread of the
// process: about 10 us. A pipeline that builds each map on one thread and
// hands it to another (a producer and a consumer, a map returned from a
// worker) pays it once per map, ten times the map's own cost. Ownership is
// an optimization only (counted mode is always exact), so a map that is
// about to change hands is better never owned: its builder's accesses are
// counted from the start (a locked read-modify-write each) and nobody ever
// revokes it. Which maps will change hands is learned per construction
// site (SiteHandOffs): once kBornSharedAfter maps built at a site were
// revoked, at least twice as many as were kept, every later map built there
// starts with owner = kOwnerShared. A map is kept when its builder destroys
// it without handing it over, or when it is a hash table handed over with
// more than kBuiltUpElements elements (its builder used it enough that
// owning it paid for the membarrier). Maps built but not yet handed over
// are no evidence either way: a producer may build thousands before the
// consumer takes the first. Only a revocation gives a site an entry. The decision is sticky
// (a born-shared map is never revoked, so nothing would tell it is wrong
// again) and costs a site that decided wrongly only speed: its maps' regions
// are counted, as a shared map's are. Maps whose construction the runtime
// does not see have no site and are owned by their first user as before.
//
// Without membarrier (old kernels, seccomp filters), maps are never owned:
// every region is counted at begin, which is correct and costs one atomic
// read-modify-write per begin and per end.
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mg_access.h"
#include "mg_appender.h"
#include "mg_loaded.h"
#include "mg_report.h"
#include "mg_shadow.h"

namespace mapguard {

bool g_ownership = false;

namespace {

long Membarrier(int cmd) { return syscall(__NR_membarrier, cmd, 0, 0); }

// R3 for one entry of `o`'s stack.
void CountForRevocation(ThreadState *o, MapShadow *s, Region &r) {
  const mg_site *site = r.site.load(std::memory_order_relaxed);
  if (site->kind == MG_READ || site->kind == MG_ITERATE) {
    s->state.fetch_add(site->kind == MG_READ ? state::kReaderOne : state::kIterOne,
                       std::memory_order_acq_rel);
    r.mode.store(kRegionCounted, std::memory_order_relaxed);
    return;
  }
  const uint64_t o_id = o->slot + 1;
  uint64_t old = s->state.load(std::memory_order_relaxed);
  for (;;) {
    if (state::Writer(old) != 0) {
      // O's own outer write holds the field (no other thread touches the
      // state word of a map owned by O): this write is nested in it.
      r.mode.store(kRegionNested, std::memory_order_relaxed);
      return;
    }
    if (s->state.compare_exchange_weak(old, old | o_id, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      s->writer_site.store(site, std::memory_order_relaxed);
      s->writer_number.store(o->number + 1, std::memory_order_relaxed);
      r.mode.store(kRegionCounted, std::memory_order_relaxed);
      return;
    }
  }
}

// R3: every owned region of `o` on the map enters its state word.
void CountOwnedRegionsOf(ThreadState *o, MapShadow *s) {
  o->regions.ForEachLive(o->regions.DepthAcquire(), [o, s](Region &r, int) {
    void *m = r.map.load(std::memory_order_acquire);
    if (!m || g_shadow.Get(m) != s) return;
    if (r.mode.load(std::memory_order_relaxed) != kRegionOwned) return;
    CountForRevocation(o, s, r);
  });
}

// One construction site's record (see "born shared" above). Lossy by
// design: counts are plain loads and stores (a lost update only delays or
// hastens a speed decision), a site that finds no free entry among its
// kSiteProbes is not recorded (its maps stay owned), and entries are never
// given back (sites are the program's static data; one of an unloaded
// library is compared, never read).
struct SiteHandOffs {
  std::atomic<const mg_site *> site;
  std::atomic<uint32_t> revoked;  // maps built here taken over by a second thread
  std::atomic<uint32_t> kept;     // maps built here destroyed by their builder, never shared
  std::atomic<bool> born_shared;
  std::atomic<uint64_t> born_shared_maps;  // exact (print_stats)
};
// Revocations that paid R2, for print_stats.
std::atomic<uint64_t> g_revocations{0};
constexpr uint32_t kHandOffSites = 1024;  // a power of two
constexpr uint32_t kSiteProbes = 8;
constexpr uint32_t kBornSharedAfter = 64;
constexpr uint64_t kListedSites = 12;  // by print_stats
SiteHandOffs g_handoff_sites[kHandOffSites];

// The site's entry; with `claim`, taken if the site has none (only a
// revocation claims one: the table holds sites whose maps changed hands, so
// a construction or destruction at any other site stops at the first free
// entry, usually the first it looks at).
SiteHandOffs *HandOffsOf(const mg_site *site, bool claim) {
  if (!site) return nullptr;
  const uint64_t h = (reinterpret_cast<uintptr_t>(site) >> 3) * 0x9E3779B97F4A7C15ull;
  for (uint32_t i = 0; i < kSiteProbes; i++) {
    SiteHandOffs &e = g_handoff_sites[((h >> 40) + i) & (kHandOffSites - 1)];
    const mg_site *cur = e.site.load(std::memory_order_acquire);
    if (cur == site) return &e;
    if (cur) continue;
    if (!claim) return nullptr;
    if (e.site.compare_exchange_strong(cur, site, std::memory_order_acq_rel) || cur == site)
      return &e;
  }
  return nullptr;
}

MG_ALWAYS_INLINE void Bump(std::atomic<uint32_t> &counter) {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// A hash table handed over with more elements than this was used a good
// deal by its builder first (an insert is an access): owning it saved more
// than the membarrier cost (about 200 inline accesses against one call), so
// its revocation counts as a kept map, not as a hand-over.
constexpr uint64_t kBuiltUpElements = 256;

// The map at `map`, built at `created`, was revoked (R1 won, another thread
// owned it).
void NoteRevoked(MapShadow *s, const mg_site *created, const void *map) {
  if (!created) return;
  SiteHandOffs *e = HandOffsOf(created, /*claim=*/true);
  if (!e || e->born_shared.load(std::memory_order_relaxed)) return;
  // A hash table's construction noted its bucket count (never 0 then): the
  // site itself is not read, its library may be unloaded by now.
  if (s->buckets.load(std::memory_order_relaxed) != 0 && HashtableSize(map) > kBuiltUpElements) {
    Bump(e->kept);
    return;
  }
  Bump(e->revoked);
  const uint32_t revoked = e->revoked.load(std::memory_order_relaxed);
  if (revoked >= kBornSharedAfter && revoked >= 2 * uint64_t(e->kept.load(std::memory_order_relaxed)))
    e->born_shared.store(true, std::memory_order_relaxed);
}

}  // namespace

uint32_t OwnerOfNewMap(ThreadState *thr, const mg_site *created) {
  if (!g_ownership) return 0;
  if (SiteHandOffs *e = HandOffsOf(created, /*claim=*/false)) {
    if (e->born_shared.load(std::memory_order_relaxed)) {
      e->born_shared_maps.fetch_add(1, std::memory_order_relaxed);
      return kOwnerShared;
    }
  }
  return thr->slot + 1;
}

void NoteDestroyedByOwner(const mg_site *created) {
  if (!created || !g_ownership) return;
  SiteHandOffs *e = HandOffsOf(created, /*claim=*/false);
  if (e && !e->born_shared.load(std::memory_order_relaxed)) Bump(e->kept);
}

void PrintOwnershipStats(bool json, void (*emit)(const char *, size_t)) {
  const uint64_t revocations = g_revocations.load(std::memory_order_relaxed);
  uint64_t born = 0, sites = 0;
  for (const SiteHandOffs &e : g_handoff_sites)
    if (e.born_shared.load(std::memory_order_relaxed)) {
      born += e.born_shared_maps.load(std::memory_order_relaxed);
      sites++;
    }
  if (!revocations && !sites) return;
  LoadedRanges loaded;
  if (!loaded.Take()) return;
  static char line[4096];
  Appender out(line, sizeof(line));
  if (json)
    out("{\"mapguard_ownership\":{\"taken_over\":%llu,\"built_shared\":%llu,\"sites\":[",
        (unsigned long long)revocations, (unsigned long long)born);
  else
    out("\nmaps taken over from the thread that built them: %llu (one membarrier each); built "
        "shared from the start: %llu, at %llu construction site%s whose maps change hands%s\n",
        (unsigned long long)revocations, (unsigned long long)born, (unsigned long long)sites,
        sites == 1 ? "" : "s", sites ? ":" : "");
  bool first = true;
  uint64_t listed = 0;
  for (const SiteHandOffs &e : g_handoff_sites) {
    if (!e.born_shared.load(std::memory_order_relaxed)) continue;
    if (listed++ == kListedSites) {  // the line's room
      if (!json && sites > kListedSites)
        out("  and %llu more\n", (unsigned long long)(sites - kListedSites));
      break;
    }
    const mg_site *site = SiteIfLoaded(loaded, e.site.load(std::memory_order_acquire));
    const unsigned long long maps = e.born_shared_maps.load(std::memory_order_relaxed);
    if (json) {
      out("%s{\"file\":", first ? "" : ",");
      AppendJsonString(out, site->file);
      out(",\"line\":%u,\"column\":%u,\"maps\":%llu}", site->line, site->column, maps);
    } else {
      out("  %s:%u:%u (%llu maps)\n", site->file, site->line, site->column, maps);
    }
    first = false;
  }
  if (json) out("]}}\n");
  if (out.size() + 1 < sizeof(line)) emit(out.data(), out.size());
}

void InitOwnership() {
  // Registration is per process (and again in each fork child).
  long supported = Membarrier(MEMBARRIER_CMD_QUERY);
  g_ownership = supported > 0 && (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                Membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

void WaitRevocationOver(MapShadow *s) {
  ThreadState *me = t_thread;
  for (int spins = 0; s->owner.load(std::memory_order_acquire) == kOwnerRevoking; spins++) {
    // A signal handler that interrupted this very thread's revocation: R3
    // cannot finish until we return, so go on as if it had.
    if (me && me->revoking.load(std::memory_order_relaxed) == s) return;
    if (spins < 64) __builtin_ia32_pause();
    else sched_yield();  // not a cancellation point
  }
}

void RevokeOwner(ThreadState *thr, MapShadow *s, const void *map, uint32_t owner) {
  if (owner == kOwnerRevoking) {
    WaitRevocationOver(s);
    return;
  }
  thr->revoking.store(s, std::memory_order_relaxed);
  uint32_t expected = owner;
  if (!s->owner.compare_exchange_strong(expected, kOwnerRevoking, std::memory_order_acq_rel)) {  // R1
    thr->revoking.store(nullptr, std::memory_order_relaxed);
    if (expected == kOwnerRevoking) WaitRevocationOver(s);
    return;
  }
  ThreadState *o = ThreadBySlot(owner - 1);
  if (o && o != thr) {
    g_revocations.fetch_add(1, std::memory_order_relaxed);
    NoteRevoked(s, s->created_site.load(std::memory_order_relaxed), map);
    // R2. It cannot fail once registered; if it ever did, counting anyway is
    // the best left to do.
    Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    CountOwnedRegionsOf(o, s);  // R3
  }
  s->owner.store(kOwnerShared, std::memory_order_release);  // R4
  thr->revoking.store(nullptr, std::memory_order_relaxed);
}

bool SettleOwnedBegin(ThreadState *thr, MapShadow *s, int index) {
  WaitRevocationOver(s);
  Region *r = thr->regions.At(index);
  if (!r) return false;
  if (r->mode.load(std::memory_order_acquire) != kRegionOwned) return true;
  r->mode.store(kRegionCounted, std::memory_order_relaxed);
  return false;
}

void SettleOwnedEnd(ThreadState *thr, MapShadow *s, int index, uint32_t kind) {
  WaitRevocationOver(s);
  Region *r = thr->regions.At(index);
  if (r && r->mode.load(std::memory_order_acquire) == kRegionCounted) UncountRegion(thr, s, kind);
}

// F2: the state word of `s` as `me`'s counted regions make it.
void RebuildStateForSurvivor(ThreadState *me, MapShadow *s) {
  uint64_t st = 0;
  if (me) me->regions.ForEachLive(me->regions.Depth(), [&](Region &r, int) {
    void *m = r.map.load(std::memory_order_relaxed);
    if (g_shadow.Get(m) != s || r.mode.load(std::memory_order_relaxed) != kRegionCounted) return;
    uint32_t kind = r.site.load(std::memory_order_relaxed)->kind;
    if (kind == MG_READ) st += state::kReaderOne;
    else if (kind == MG_ITERATE) st += state::kIterOne;
    else st = (st & ~state::kWriterMask) | (me->slot + 1);
  });
  s->state.store(st, std::memory_order_relaxed);
}

void OwnershipAfterForkInChild(ThreadState *me) {
  InitOwnership();
  uint32_t limit = ThreadSlotLimit();
  for (uint32_t slot = 0; slot < limit; slot++) {
    ThreadState *t = ThreadStateAt(slot);
    if (t == me) continue;
    if (MapShadow *s = t->revoking.load(std::memory_order_relaxed)) {
      if (s->owner.load(std::memory_order_relaxed) == kOwnerRevoking) {  // F1
        if (me) CountOwnedRegionsOf(me, s);
        s->owner.store(kOwnerShared, std::memory_order_relaxed);
      }
      RebuildStateForSurvivor(me, s);  // F2
      t->revoking.store(nullptr, std::memory_order_relaxed);
    }
  }
  for (uint32_t slot = 0; slot < limit; slot++) {
    ThreadState *t = ThreadStateAt(slot);
    if (t == me) continue;
    t->regions.ForEachLive(t->regions.Depth(), [me](Region &r, int) {
      RebuildStateForSurvivor(me, g_shadow.Get(r.map.load(std::memory_order_relaxed)));  // F2
    });
    t->regions.Clear();  // F3
  }
  if (!me) return;
  me->regions.ForEachLive(me->regions.Depth(), [](Region &r, int) {  // F4
    g_shadow.Get(r.map.load(std::memory_order_relaxed))->state.fetch_and(~state::kFrozen,
                                                                        std::memory_order_relaxed);
  });
}

}  // namespace mapguard
