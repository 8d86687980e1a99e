#include "mg_stats.h"

#include "mg_access.h"
#include "mg_appender.h"
#include "mg_inline_copies.h"
#include "mg_loaded.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "mg_advice.h"
#include "mapguard/interface.h"
#include "mg_arena.h"
#include "mg_probes.h"
#include "mg_report.h"

extern "C" {
// Exported (mapguard_rt.map): the sidecar looks it up in the runtime's
// dynamic symbol table. Its own cache line: the runtime writes `head` and
// `records` when a map is first counted, the sidecar writes `control`.
__attribute__((aligned(64), used, visibility("default")))
mapguard::SidecarRegistry mapguard_sidecar_registry;
}

namespace mapguard {

bool g_print_stats;

namespace {

SidecarRegistry &Registry() { return mapguard_sidecar_registry; }

template <class T>
T Load(const T &a) { return __atomic_load_n(&a, __ATOMIC_RELAXED); }
template <class T>
void Store(T &a, T v) { __atomic_store_n(&a, v, __ATOMIC_RELAXED); }
template <class T>
T FetchAdd(T &a, T v) { return __atomic_fetch_add(&a, v, __ATOMIC_RELAXED); }
template <class T>
T Exchange(T &a, T v) { return __atomic_exchange_n(&a, v, __ATOMIC_RELAXED); }
// Only this thread writes `a` (its own ThreadUse): no locked instruction
// (BumpCounter: one, so a signal handler cannot split it).
MG_ALWAYS_INLINE void Bump(uint64_t &a) { BumpCounter(&a); }

template <class T>
void RaiseTo(T &a, T v) {
  T seen = Load(a);
  while (v > seen && !__atomic_compare_exchange_n(&a, &seen, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

MapStats *StatsFor(MapShadow *s, void *map, const mg_site *site) {
  MapStats *st = s->stats.load(std::memory_order_acquire);
  if (st) return st;
  MapStats *fresh = static_cast<MapStats *>(ArenaAlloc(sizeof(MapStats)));
  fresh->map = reinterpret_cast<uintptr_t>(map);
  fresh->site = reinterpret_cast<uintptr_t>(site);
  fresh->created = reinterpret_cast<uintptr_t>(s->created_site.load(std::memory_order_relaxed));
  fresh->has_buckets = (site->flags & MG_SITE_HASHTABLE_LAYOUT) != 0;
  if (!s->stats.compare_exchange_strong(st, fresh, std::memory_order_acq_rel)) {
    ArenaFree(fresh, sizeof(MapStats));
    return st;
  }
  // Published with a release: a reader that finds the record from `head`
  // sees it whole.
  uint64_t head = __atomic_load_n(&Registry().head, __ATOMIC_RELAXED);
  do {
    fresh->next = head;
  } while (!__atomic_compare_exchange_n(&Registry().head, &head, reinterpret_cast<uintptr_t>(fresh),
                                        true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
  FetchAdd(Registry().records, uint64_t(1));
  return fresh;
}

MapStats *First() {
  return reinterpret_cast<MapStats *>(__atomic_load_n(&Registry().head, __ATOMIC_ACQUIRE));
}
MapStats *Next(const MapStats *m) { return reinterpret_cast<MapStats *>(m->next); }
const mg_site *SiteOf(uint64_t a) { return reinterpret_cast<const mg_site *>(a); }


ThreadUse *UseOf(MapStats *st, uint32_t me) {
  for (ThreadUse &u : st->uses) {
    uint32_t t = Load(u.thread);
    if (t == me) return &u;
    if (t == 0 && __atomic_compare_exchange_n(&u.thread, &t, me, false, __ATOMIC_RELAXED,
                                              __ATOMIC_RELAXED))
      return &u;
    if (t == me) return &u;
  }
  return nullptr;
}

uint64_t Total(const MapStats *m) {
  MapUsage u = UsageOf(*m);
  return u.reads + u.writes + u.iterations;
}

uint64_t Threads(const MapStats *m) { return Load(m->users); }

uint64_t UntoldAccesses(const MapStats *m) {
  return Load(m->untold_reads) + Load(m->untold_writes) + Load(m->untold_iterations);
}

}  // namespace

// The control word's map rate and budget (SidecarRegistry::control).
bool MapIsWatched(const void *map) {
  const uint32_t rate = uint32_t(Load(Registry().control));
  if (rate == 0) return false;
  if (rate == 1) return true;
  // The address's bits above the allocator's alignment, mixed: maps side by
  // side in an array spread over the classes.
  // 1 in `rate`: the top 32 bits scaled to [0, rate) (a multiply, not a
  // division), the first of those classes.
  uint64_t h = (reinterpret_cast<uintptr_t>(map) >> 4) * 0x9e3779b97f4a7c15ULL;
  return ((h >> 32) * rate) >> 32 == 0;
}

bool TakeWatchBudget(ThreadState *thr) {
  const uint32_t budget = uint32_t(Load(Registry().control) >> 32);
  if (budget == 0) return true;
  // One window per second of CLOCK_MONOTONIC_COARSE (a vDSO read, no
  // syscall), shared by the process's threads. A thread that found the
  // window spent stops asking until the next one: the shared counter's line
  // is not written by every access of every thread.
  static uint64_t window, used;
  timespec now;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  const uint64_t second = uint64_t(now.tv_sec) + 1;
  if (thr->watch_spent_window == second) return false;
  uint64_t w = Load(window);
  if (w != second && __atomic_compare_exchange_n(&window, &w, second, false, __ATOMIC_RELAXED,
                                                 __ATOMIC_RELAXED))
    Store(used, uint64_t(0));
  if (FetchAdd(used, uint64_t(1)) < budget) return true;
  thr->watch_spent_window = second;
  return false;
}

MG_NOINLINE void CountAccess(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                             uint32_t readers_before) {
  MapStats *st = StatsFor(s, map, site);
  if (MG_UNLIKELY(!Load(st->site))) Store(st->site, uint64_t(reinterpret_cast<uintptr_t>(site)));
  const uint32_t me = thr->number + 1;
  ThreadUse *use = UseOf(st, me);
  if (site->kind == MG_DESTROY) {
    // Tearing a map down is not using it: main destroying a worker's map
    // does not make the map shared.
    if (use) Bump(use->destructions);
    return;
  }
  uint64_t users;
  if (use && !Load(use->used)) {
    Store(use->used, 1u);
    users = FetchAdd(st->users, uint64_t(1)) + 1;
  } else if (!use && !Exchange(st->untold_threads, uint64_t(1))) {
    users = FetchAdd(st->users, uint64_t(1)) + 1;  // "and more"
  } else {
    users = Load(st->users);
  }
  switch (site->kind) {
    case MG_READ:
      if (use) Bump(use->reads);
      else FetchAdd(st->untold_reads, uint64_t(1));
      break;
    case MG_ITERATE:
      if (use) Bump(use->iterations);
      else FetchAdd(st->untold_iterations, uint64_t(1));
      break;
    default:
      if (use) Bump(use->writes);
      else FetchAdd(st->untold_writes, uint64_t(1));
      if (users >= 2) {
        if (use) Bump(use->shared_writes);
        else FetchAdd(st->untold_shared_writes, uint64_t(1));
      }
      break;
  }
  // Read before exchanged: threads that read a map side by side would
  // otherwise write its line on every access.
  if (Load(st->last_user) != me) {
    uint64_t last = Exchange(st->last_user, uint64_t(me));
    if (last && last != me) FetchAdd(st->switches, uint64_t(1));
  }
  // The first access under a lock this thread had to wait for: the lock
  // most likely guards this map.
  if (thr->waited_for & 1) {
    if (thr->waited_lock) FetchAdd(st->contended_locks, uint64_t(1));
    thr->waited_for &= uint8_t(~1u);
  }
  const uint64_t readers = readers_before + (site->kind == MG_READ ? 1u : 0u);
  if (readers > Load(st->max_readers)) RaiseTo(st->max_readers, readers);
  // The next accesses of this thread to this map count inline (CountInline)
  // unless the kernel watches the map (its probes fire in the runtime) or,
  // for writes, the map has two users (a write then counts as shared).
  const uint64_t control = Load(Registry().control);
  uint32_t left = kCountRecheck;
  // `watched` follows the control word as of the map's latest access that
  // came here (a new control word sends every map's next access here: the
  // count cache entries name the old one).
  const uint64_t watched = MapIsWatched(map) ? 1 : 0;
  if (Load(st->watched) != watched && Exchange(st->watched, watched) != watched)
    FetchAdd(Registry().watched_maps, watched ? uint64_t(1) : ~uint64_t(0));
  if (watched) {
    // A watched map's accesses come here, so that their probes fire, except
    // for a while once this access found the trace budget spent
    // (TraceRegionBegin said so): then they count inline, and the map is
    // watched in part. Any other untraced access (an unsampled read, a new
    // control word) keeps the map out of the cache.
    if (thr->watch_budget_skipped != map) return;
    thr->watch_budget_skipped = nullptr;
    if (!Load(st->watch_skipped)) Store(st->watch_skipped, uint64_t(1));
    left = kWatchSpentAccesses;
  }
  if (use && site->kind != MG_ITERATE) {
    // A signal handler on this thread may look the entry up between these
    // stores (in whatever order the compiler put them): it finds the entry
    // being filled, which names no map, and leaves it to the fill it
    // interrupted. Were it to fill the entry itself, the interrupted fill's
    // remaining stores would mix into it, and a second handler could find
    // its own map with the other map's counter (C3).
    // The entry's words are written with atomic (relaxed) stores: a signal
    // fence orders atomics only, and CountNow reads them as such.
    CountCacheEntry &e = thr->count_cache[CountCacheIndex(map)];
    if (__atomic_load_n(&e.map, __ATOMIC_RELAXED) == kCountCacheFilling) return;
    __atomic_store_n(&e.map, kCountCacheFilling, __ATOMIC_RELAXED);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    __atomic_store_n(&e.stats, st, __ATOMIC_RELAXED);
    __atomic_store_n(&e.use, use, __ATOMIC_RELAXED);
    __atomic_store_n(&e.control, control, __ATOMIC_RELAXED);
    __atomic_store_n(&e.left, left, __ATOMIC_RELAXED);
    __atomic_store_n(&e.writes, users < 2, __ATOMIC_RELAXED);
    __atomic_store_n(&e.me, me, __ATOMIC_RELAXED);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    __atomic_store_n(&e.map, map, __ATOMIC_RELAXED);
  }
}

void CountConflict(MapShadow *s) {
  if (MapStats *st = s->stats.load(std::memory_order_acquire)) FetchAdd(st->conflicts, uint64_t(1));
}

void InitStats() {
  SidecarRegistry &r = Registry();
  r.abi = kStatsRecordAbi;
  r.record_size = sizeof(MapRecord);
  Store(r.control, uint64_t(uint32_t(g_flags.usdt_map_sample)) |
                       (uint64_t(uint32_t(g_flags.usdt_trace_budget)) << 32));
  if (g_flags.usdt_handover) Store(r.consumer, uint64_t(1));
  __atomic_store_n(&r.magic, kRegistryMagic, __ATOMIC_RELEASE);
#ifndef MAPGUARD_NO_PROBES
  // print_stats counts as one consumer of the records: the fast path then
  // tests one word for "count" (Counting()), as it does for the sidecar.
  if (g_print_stats) __atomic_fetch_add(&mapguard_stats_handover_semaphore, 1, __ATOMIC_RELAXED);
#endif
}

// Only the forking thread exists in the child: its records start from zero
// (its parent's counts are its parent's), and their thread slots are free.
void StatsAfterForkInChild() {
  if (!Load(Registry().records)) return;
  for (MapStats *m = First(); m; m = Next(m)) {
    const uint64_t map = m->map, site = m->site, created = m->created, next = m->next,
                   has_buckets = m->has_buckets;
    memset(static_cast<MapRecord *>(m), 0, sizeof(MapRecord));
    m->map = map;
    m->site = site;
    m->created = created;
    m->next = next;
    m->has_buckets = has_buckets;
  }
  Store(Registry().watched_maps, uint64_t(0));
  FetchAdd(Registry().fork_generation, uint64_t(1));
  if (ThreadState *thr = t_thread) memset(thr->count_cache, 0, sizeof(thr->count_cache));
}

// The process is about to end: a sidecar that reads the records (and said
// so in `consumer`) gets to read them before they are gone. The stats_handover probe fires (the sidecar's
// BPF program hands it to the daemon) and the runtime waits until the daemon
// writes the hand-over's number into final_ack, the sidecar detaches, or
// two seconds pass (a sidecar that hangs must not hold the program).
void HandOverStats(int max_wait_us) {
#ifndef MAPGUARD_NO_PROBES
  const unsigned own = g_print_stats ? 1 : 0;
  SidecarRegistry &r = Registry();
  if (mapguard_stats_handover_semaphore <= own || !Load(r.consumer)) return;
  const uint64_t seq = FetchAdd(r.final_seq, uint64_t(1)) + 1;
  TraceStatsHandover(&r, seq);
  for (int waited_us = 0; waited_us < max_wait_us; waited_us += 100) {
    if (__atomic_load_n(&r.final_ack, __ATOMIC_ACQUIRE) >= seq) return;
    if (mapguard_stats_handover_semaphore <= own) return;
    timespec ts = {0, 100000};
    syscall(SYS_nanosleep, &ts, nullptr);  // not the program's (intercepted) nanosleep
  }
#endif
}

MG_NOINLINE void NoteBucketCount(MapShadow *s, void *map) {
  const uint64_t buckets = HashtableBucketCount(map);
  const uint64_t size = HashtableSize(map);
  uint64_t before = s->buckets.exchange(buckets + 1, std::memory_order_relaxed);
  bool rehashed = before != 0 && before - 1 != buckets;
  if (rehashed) TraceRehash(map, before - 1, buckets, size);
  if (!Counting()) return;
  MapStats *st = s->stats.load(std::memory_order_acquire);
  if (!st) return;  // CountAccess at the write's begin creates it
  Store(st->has_buckets, uint64_t(1));
  RaiseTo(st->max_size, size);
  RaiseTo(st->max_buckets, buckets);
  if (rehashed) {
    uint64_t n = FetchAdd(st->rehashes, uint64_t(1));
    if (n < kRehashLog) st->log[n] = {before - 1, buckets, size};
    FetchAdd(st->moved, size);
    // The load the table had just before this write grew it (one element
    // fewer): the inlined write ends that changed no bucket count do not
    // come here, and that was the largest load of those.
    if (before - 1 && size) RaiseTo(st->max_load_milli, uint64_t((size - 1) * 1000 / (before - 1)));
  }
  if (buckets) RaiseTo(st->max_load_milli, uint64_t(size * 1000 / buckets));
}

// Both standard libraries' hash tables (MG_SITE_HASHTABLE_LAYOUT): the bucket
// array at offset 0, its length at 8, the list head at 16 (the node before
// the first; a node's first word is its successor), the size at 24. Every
// non-empty bucket holds a pointer to the node before its first node, and a
// bucket's nodes follow each other in the list: so the list splits into
// chains at the nodes the buckets point to, without calling the hasher.
MG_NOINLINE void MeasureKeySpread(MapShadow *s, void *map) {
  MapStats *st = Counting() ? s->stats.load(std::memory_order_acquire) : nullptr;
  if (!st && !MG_PROBE_ACTIVE(key_spread)) return;
  char *base = static_cast<char *>(map);
  void *const *bucket = *reinterpret_cast<void *const *const *>(base);
  const uint64_t nb = HashtableBucketCount(map);
  const uint64_t size = HashtableSize(map);
  // Small maps say nothing about a hash; huge ones would take too long here
  // (and a 64 MB scratch array at most).
  if (!bucket || size < 64 || size > (uint64_t(1) << 22) || nb == 0 || nb > (uint64_t(1) << 24))
    return;
  const size_t cap = size_t(nb < size ? nb : size);  // occupied buckets, at most
  const size_t bytes = (cap * 2 + 1) * sizeof(uint64_t);
  void *mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  uintptr_t *starts = static_cast<uintptr_t *>(mem);
  uint64_t *chains = reinterpret_cast<uint64_t *>(starts + cap);
  size_t occupied = 0;
  for (uint64_t b = 0; b < nb && occupied < cap; b++)
    if (const void *before = bucket[b])
      starts[occupied++] = reinterpret_cast<uintptr_t>(*static_cast<void *const *>(before));
  std::sort(starts, starts + occupied);
  size_t n_chains = 0;
  uint64_t len = 0, seen = 0;
  for (const void *node = *reinterpret_cast<void *const *>(base + 16); node && seen <= size;
       node = *static_cast<void *const *>(node), seen++) {
    if (len && std::binary_search(starts, starts + occupied, reinterpret_cast<uintptr_t>(node))) {
      if (n_chains < cap) chains[n_chains++] = len;
      len = 0;
    }
    len++;
  }
  if (len && n_chains < cap) chains[n_chains++] = len;
  if (seen == size && n_chains == occupied) {
    KeySpread k{};
    k.size = size;
    k.buckets = nb;
    k.occupied = occupied;
    const double lambda = double(size) / double(nb);
    double chi = double(nb - occupied) * lambda;
    std::sort(chains, chains + n_chains, [](uint64_t a, uint64_t b) { return a > b; });
    for (size_t i = 0; i < n_chains; i++) {
      chi += (double(chains[i]) - lambda) * (double(chains[i]) - lambda) / lambda;
      if (k.hot_keys * 10 < size * 9) {
        k.hot_keys += chains[i];
        k.hot_buckets++;
      }
    }
    k.longest = n_chains ? chains[0] : 0;
    k.dispersion = chi / double(nb);
    if (st) {
      st->spread = k;
      __atomic_store_n(&st->spread_measured, uint64_t(1), __ATOMIC_RELEASE);
    }
    TraceKeySpread(map, k.size, k.buckets, k.occupied, k.longest, uint64_t(k.dispersion * 1000));
  }
  munmap(mem, bytes);
}

void ForgetStats(MapShadow *s) {
  // print_stats tells maps built one after the other at one address apart;
  // the sidecar's series are per address, and keeping the record bounds
  // the memory of a program that builds maps by the million (NewMapStats).
  if (g_print_stats) s->stats.store(nullptr, std::memory_order_release);
}

void ForgetStatsSitesIn(const CodeRange *ranges, size_t n) {
  // The next access names the map again (CountAccess stores the site of an
  // access that finds none): a map that lives on (the program's own, first
  // used by the library) gets its type back. The creation site is gone.
  for (MapStats *m = First(); m; m = Next(m)) {
    if (InRanges(ranges, n, SiteOf(Load(m->site)))) Store(m->site, uint64_t(0));
    if (InRanges(ranges, n, SiteOf(Load(m->created)))) Store(m->created, uint64_t(0));
  }
}

void NewMapStats(MapShadow *s) {
  // The sidecar's record of this address: its counts add up over the maps
  // built here; the facts of who uses the map start again with each map (a
  // later map at a reused stack address is not "shared" for an earlier
  // one's threads).
  MapStats *st = s->stats.load(std::memory_order_acquire);
  if (!st) return;
  for (ThreadUse &u : st->uses) Store(u.used, 0u);
  Store(st->users, uint64_t(0));
  Store(st->untold_threads, uint64_t(0));
  Store(st->last_user, uint64_t(0));
  Store(st->site, uint64_t(0));  // the next first access names the type
}

namespace {

// mapguard::guarded's strategy switches (print_stats lists the first ones).
struct GuardedSwitch {
  const void *guard;
  unsigned from, to;
  char why[96];  // copied: the library that said it may be unloaded by exit
  uint32_t thread;
  GuardedSwitch *next;
};
constexpr uint64_t kGuardedSwitchesKept = 200;
std::atomic<GuardedSwitch *> g_guarded_switches{nullptr};
std::atomic<uint64_t> g_guarded_switch_count{0};


void PrintGuardedSwitches(bool json, void (*emit)(const char *, size_t)) {
  const uint64_t n = g_guarded_switch_count.load();
  if (!n) return;
  // Oldest first: the list is pushed at its head (and left as it is).
  GuardedSwitch *order[kGuardedSwitchesKept];
  size_t kept = 0;
  for (GuardedSwitch *e = g_guarded_switches.load(); e && kept < kGuardedSwitchesKept; e = e->next)
    order[kept++] = e;
  char line[512];
  if (!json) {
    Appender out(line, sizeof(line));
    out("\nmapguard::guarded: %llu strategy switch%s\n", (unsigned long long)n, n == 1 ? "" : "es");
    emit(out.data(), out.size());
  }
  for (size_t i = kept; i-- > 0;) {
    const GuardedSwitch *e = order[i];
    Appender out(line, sizeof(line));
    if (json) {
      out("{\"mapguard_guarded_switch\":{\"guard\":\"%p\",\"from\":\"%s\",\"to\":\"%s\","
          "\"thread\":%u,\"why\":",
          e->guard, mapguard_guarded_strategy_name(e->from), mapguard_guarded_strategy_name(e->to), e->thread);
      AppendJsonString(out, e->why);
      out("}}\n");
    } else {
      out("  guard %p: %s -> %s (%s), by T%u\n", e->guard, mapguard_guarded_strategy_name(e->from),
          mapguard_guarded_strategy_name(e->to), e->why, e->thread);
    }
    emit(out.data(), out.size());
  }
  if (!json && n > kGuardedSwitchesKept) {
    Appender out(line, sizeof(line));
    out("  ... and %llu more\n", (unsigned long long)(n - kGuardedSwitchesKept));
    emit(out.data(), out.size());
  }
}

}  // namespace

namespace {

// Whether uniform hashing would have filled far more buckets than these keys
// did: a hash that ignores part of the key, or the high bits.
bool SpreadIsBad(const KeySpread &k) {
  const double lambda = double(k.size) / double(k.buckets);
  const double expected_occupied = double(k.buckets) * (1.0 - exp(-lambda));
  return double(k.occupied) * 2 < expected_occupied && k.dispersion > 4;
}

unsigned Percent(uint64_t part, uint64_t whole) {
  return whole ? unsigned((part * 100 + whole / 2) / whole) : 0;
}
// part/whole as a percentage with one decimal: "0.3", "99.7".
struct Share {
  char text[16];
  Share(uint64_t part, uint64_t whole) {
    unsigned pm = whole ? unsigned((part * 1000 + whole / 2) / whole) : 0;
    snprintf(text, sizeof text, "%u.%u", pm / 10, pm % 10);
  }
};

// The load factor that made the map grow, x100.
unsigned LoadPercentAt(const RehashRecord &r) {
  return r.old_buckets ? unsigned(r.size * 100 / r.old_buckets) : 0;
}

void AppendGrowthText(Appender &out, const MapStats *m) {
  unsigned load = unsigned(Load(m->max_load_milli));
  uint64_t n = Load(m->rehashes);
  out("  growth: %llu rehash%s", (unsigned long long)n, n == 1 ? "" : "es");
  if (n) out(" (%llu elements relinked)", (unsigned long long)Load(m->moved));
  out("; largest load factor: %u.%02u; largest size: %llu\n", load / 1000, (load % 1000) / 10,
      (unsigned long long)Load(m->max_size));
  if (n) {
    out("  rehashes (buckets, load factor when it grew):");
    for (uint64_t i = 0; i < n && i < kRehashLog; i++) {
      const RehashRecord &r = m->log[i];
      unsigned l = LoadPercentAt(r);
      out(" %llu->%llu (%u.%02u)", (unsigned long long)r.old_buckets,
          (unsigned long long)r.new_buckets, l / 100, l % 100);
    }
    if (n > kRehashLog) out(" ...");
    out("\n");
  }
  if (__atomic_load_n(&m->spread_measured, __ATOMIC_ACQUIRE)) {
    const KeySpread &k = m->spread;
    out("  key spread at destruction: %llu keys in %llu of %llu buckets; longest chain %llu; "
        "%s%% of buckets empty; dispersion %.2f (1 is uniform)\n",
        (unsigned long long)k.size, (unsigned long long)k.occupied, (unsigned long long)k.buckets,
        (unsigned long long)k.longest, Share(k.buckets - k.occupied, k.buckets).text,
        k.dispersion);
    if (SpreadIsBad(k))
      out("  warning: %u%% of keys in %s%% of buckets (%llu of %llu): the hash spreads keys badly; "
          "does it ignore part of the key, or its high bits?\n",
          Percent(k.hot_keys, k.size), Share(k.hot_buckets, k.buckets).text,
          (unsigned long long)k.hot_buckets, (unsigned long long)k.buckets);
  }
}

void AppendGrowthJson(Appender &out, const MapStats *m) {
  unsigned load = unsigned(Load(m->max_load_milli));
  uint64_t n = Load(m->rehashes);
  out(",\"rehashes\":%llu,\"max_load_factor\":%u.%02u,\"growth\":{\"rehashes\":%llu,"
      "\"elements_moved\":%llu,\"max_size\":%llu,\"log\":[",
      (unsigned long long)n, load / 1000, (load % 1000) / 10, (unsigned long long)n,
      (unsigned long long)Load(m->moved), (unsigned long long)Load(m->max_size));
  for (uint64_t i = 0; i < n && i < kRehashLog; i++) {
    const RehashRecord &r = m->log[i];
    unsigned l = LoadPercentAt(r);
    out("%s{\"from\":%llu,\"to\":%llu,\"load_factor\":%u.%02u}", i ? "," : "",
        (unsigned long long)r.old_buckets, (unsigned long long)r.new_buckets, l / 100, l % 100);
  }
  out("]");
  if (__atomic_load_n(&m->spread_measured, __ATOMIC_ACQUIRE)) {
    const KeySpread &k = m->spread;
    out(",\"spread\":{\"keys\":%llu,\"buckets\":%llu,\"occupied\":%llu,\"longest_chain\":%llu,"
        "\"dispersion\":%.3f,\"hot_buckets\":%llu,\"hot_keys\":%llu,\"bad\":%s}",
        (unsigned long long)k.size, (unsigned long long)k.buckets, (unsigned long long)k.occupied,
        (unsigned long long)k.longest, k.dispersion, (unsigned long long)k.hot_buckets,
        (unsigned long long)k.hot_keys, SpreadIsBad(k) ? "true" : "false");
  }
  out("}");
}

// Maps used by several threads first (they are what the advice is for),
// then by accesses.
bool ShownBefore(const MapStats *a, const MapStats *b) {
  bool sa = Threads(a) >= 2, sb = Threads(b) >= 2;
  if (sa != sb) return sa;
  return Total(a) > Total(b);
}

}  // namespace

void PrintStats() {
  if (!g_print_stats) return;
  const uint64_t count = Load(Registry().records);
  uint64_t shared = 0;
  for (MapStats *m = First(); m; m = Next(m)) shared += Threads(m) >= 2;
  // The first `limit` maps in ShownBefore order, kept sorted by insertion.
  const size_t limit = g_flags.stats_maps ? size_t(g_flags.stats_maps) : size_t(count);
  const size_t cap = limit < count ? limit : size_t(count);
  const size_t bytes = (cap ? cap : 1) * sizeof(MapStats *);
  void *mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  MapStats **top = static_cast<MapStats **>(mem);
  LoadedRanges loaded;
  if (!loaded.Take()) {
    munmap(mem, bytes);
    return;
  }
  size_t n = 0;
  for (MapStats *m = First(); m && cap; m = Next(m)) {
    size_t pos = n < cap ? n++ : cap;
    if (pos == cap) {
      if (!ShownBefore(m, top[cap - 1])) continue;
      pos = cap - 1;
    }
    while (pos > 0 && ShownBefore(m, top[pos - 1])) {
      top[pos] = top[pos - 1];
      pos--;
    }
    top[pos] = m;
  }
  // Statistics go where reports go (log_path, else stderr), as text or, with
  // format=json, one {"mapguard_stats": ...} object per line so the stream
  // stays JSON. SARIF's log is one document: its statistics stay on stderr.
  bool json = !strcmp(g_flags.format, "json");
  bool to_log = strcmp(g_flags.format, "sarif") != 0;
  auto emit = [&](const char *data, size_t len) {
    if (to_log) WriteReportOutput(data, len);
    else WriteAll(data, len);
  };
  static char line[8192];
  if (!json) {
    Appender out(line, sizeof(line));
    out("==================\nmapguard: map statistics (%llu map%s, %llu used by several threads)\n",
        (unsigned long long)count, count == 1 ? "" : "s", (unsigned long long)shared);
    emit(out.data(), out.size());
  }
  for (size_t i = 0; i < n; i++) {
    const MapStats *m = top[i];
    const MapUsage u = UsageOf(*m);
    // A record whose first access was made by a library unloaded since has
    // no site until the map's next access names it (ForgetStatsSitesIn).
    const mg_site *site = m->site ? SiteIfLoaded(loaded, SiteOf(m->site)) : &kUnloadedSite;
    const mg_site *created = SiteIfLoaded(loaded, SiteOf(m->created));
    const MapAdvice a = Advise(u);
    // One map per write; a line too long for the buffer (a type name of
    // kilobytes) is cut, never overrun.
    Appender out(line, sizeof(line));
    if (json) {
      out("{\"mapguard_stats\":{\"type\":");
      AppendJsonString(out, site->map_type);
      out(",\"name\":");
      AppendJsonString(out, site->map_name);
      out(",\"address\":\"0x%llx\"", (unsigned long long)m->map);
      if (created && created->file[0]) {
        out(",\"created\":{\"file\":");
        AppendJsonString(out, created->file);
        out(",\"line\":%u,\"column\":%u}", created->line, created->column);
      }
      out(",\"reads\":%llu,\"writes\":%llu,\"iterations\":%llu,\"threads\":%llu,"
          "\"lifecycle_only_threads\":%llu,\"writer_threads\":%llu,\"shared_writes\":%llu,"
          "\"switches\":%llu,\"contended_locks\":%llu,\"conflicts\":%llu,"
          "\"max_concurrent_readers\":%u,\"by_thread\":[",
          (unsigned long long)u.reads, (unsigned long long)u.writes,
          (unsigned long long)u.iterations, (unsigned long long)u.threads,
          (unsigned long long)u.lifecycle_threads, (unsigned long long)u.writer_threads,
          (unsigned long long)u.shared_writes, (unsigned long long)u.switches,
          (unsigned long long)u.contended_locks, (unsigned long long)u.conflicts,
          unsigned(Load(m->max_readers)));
      bool first = true;
      for (const ThreadUse &t : m->uses) {
        if (!Load(t.thread)) continue;
        out("%s{\"thread\":%u,\"reads\":%llu,\"writes\":%llu,\"iterations\":%llu,"
            "\"destructions\":%llu}",
            first ? "" : ",", Load(t.thread) - 1, (unsigned long long)Load(t.reads),
            (unsigned long long)Load(t.writes), (unsigned long long)Load(t.iterations),
            (unsigned long long)Load(t.destructions));
        first = false;
      }
      out("]");
      if (Load(m->has_buckets)) AppendGrowthJson(out, m);
      out(",\"pattern\":\"%s\",\"summary\":", a.pattern);
      AppendJsonString(out, a.summary);
      out(",\"advice\":");
      if (a.advice[0]) AppendJsonString(out, a.advice);
      else out("null");
      out(",\"growth_advice\":");
      if (a.growth[0]) AppendJsonString(out, a.growth);
      else out("null");
      out(",\"hint\":");
      AppendJsonString(out, a.advice[0] ? a.advice : a.summary);
      out("}}\n");
      // A cut line would not be JSON: leave it out.
      if (out.size() + 1 < sizeof(line)) emit(out.data(), out.size());
      continue;
    }
    out("\nMap %s%s%s%s at 0x%llx", site->map_type, site->map_name[0] ? " '" : "",
        site->map_name, site->map_name[0] ? "'" : "", (unsigned long long)m->map);
    if (created && created->file[0])
      out(", created at %s:%u:%u", created->file, created->line, created->column);
    out("\n  accesses: %llu reads, %llu writes, %llu iterations; threads: %llu; most concurrent "
        "readers: %u\n",
        (unsigned long long)u.reads, (unsigned long long)u.writes,
        (unsigned long long)u.iterations, (unsigned long long)u.threads,
        unsigned(Load(m->max_readers)));
    out("  by thread:");
    for (const ThreadUse &t : m->uses) {
      if (!Load(t.thread)) continue;
      out(" T%u", Load(t.thread) - 1);
      if (!Load(t.used)) {
        out(" (destroyed it)");
        continue;
      }
      out(" (%llu/%llu/%llu)", (unsigned long long)Load(t.reads),
          (unsigned long long)Load(t.writes), (unsigned long long)Load(t.iterations));
    }
    if (Load(m->untold_threads))
      out(" and more threads (%llu accesses)", (unsigned long long)UntoldAccesses(m));
    out("  [reads/writes/iterations]\n");
    out("  contention: %llu lock wait%s before an access; thread changes: %llu; overlapping "
        "conflicts: %llu\n",
        (unsigned long long)u.contended_locks, u.contended_locks == 1 ? "" : "s",
        (unsigned long long)u.switches, (unsigned long long)u.conflicts);
    if (Load(m->has_buckets)) AppendGrowthText(out, m);
    out("  pattern: %s\n", a.summary);
    if (a.advice[0]) out("  advice: %s\n", a.advice);
    if (a.growth[0]) out("  advice: %s\n", a.growth);
    if (out.size() + 1 >= sizeof(line)) line[sizeof(line) - 2] = '\n';
    emit(out.data(), out.size());
  }
  auto sink = to_log ? +[](const char *d, size_t n) { WriteReportOutput(d, n); }
                     : +[](const char *d, size_t n) { WriteAll(d, n); };
  PrintGuardedSwitches(json, sink);
  PrintInlineCopies(json, sink);
  PrintOwnershipStats(json, sink);
  if (!json) {
    Appender out(line, sizeof(line));
    out("\n%llu map%s in all, %llu used by several threads", (unsigned long long)count,
        count == 1 ? "" : "s", (unsigned long long)shared);
    if (count > n)
      out("; %llu not shown (stats_maps=%d; 0 lists every map)", (unsigned long long)(count - n),
          g_flags.stats_maps);
    out("\n==================\n");
    emit(out.data(), out.size());
  } else {
    Appender out(line, sizeof(line));
    out("{\"mapguard_stats_summary\":{\"maps\":%llu,\"shared\":%llu,\"shown\":%llu}}\n",
        (unsigned long long)count, (unsigned long long)shared, (unsigned long long)n);
    emit(out.data(), out.size());
  }
  munmap(mem, bytes);
}

}  // namespace mapguard

extern "C" void __mapguard_guarded_switch(const void *guard, unsigned from, unsigned to,
                                          const char *why) {
  using namespace mapguard;
  TraceGuardedSwitch(guard, from, to);
  if (!g_print_stats) return;
  if (g_guarded_switch_count.fetch_add(1, std::memory_order_relaxed) >= kGuardedSwitchesKept) return;
  GuardedSwitch *e = static_cast<GuardedSwitch *>(ArenaAlloc(sizeof(GuardedSwitch)));
  e->guard = guard;
  e->from = from;
  e->to = to;
  snprintf(e->why, sizeof(e->why), "%s", why ? why : "");
  ThreadState *thr = t_thread;
  e->thread = thr ? thr->number : 0;
  GuardedSwitch *head = g_guarded_switches.load(std::memory_order_relaxed);
  do {
    e->next = head;
  } while (!g_guarded_switches.compare_exchange_weak(head, e, std::memory_order_acq_rel));
}
