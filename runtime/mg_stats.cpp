#include "mg_stats.h"

#include "mg_appender.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <algorithm>

#include "mg_advice.h"
#include "mapguard/interface.h"
#include "mg_arena.h"
#include "mg_probes.h"
#include "mg_report.h"

namespace mapguard {

bool g_print_stats;

namespace {

// One thread's use of one map. `thread` is claimed once (CAS from 0) and then
// only that thread adds to the counts.
struct ThreadUse {
  std::atomic<uint32_t> thread;  // thread number + 1; 0: free
  std::atomic<bool> used;        // read, wrote or iterated (not only destroyed)
  std::atomic<uint64_t> reads, writes, iterations, destructions;
};
// Past this, threads are counted, not told apart: MapStats stays about 600
// bytes per map (print_stats keeps one per map ever built).
constexpr int kThreadUses = 8;

struct RehashRecord {
  uint64_t old_buckets, new_buckets, size;
};
constexpr int kRehashLog = 16;  // the first rehashes of a map, in order

// How the keys of an unordered map spread over its buckets, measured once
// when it is destroyed (the last moment its nodes are known to be there).
struct KeySpread {
  uint64_t size, buckets, occupied, longest;
  uint64_t hot_buckets;  // the fullest buckets that together hold 90% of the keys
  uint64_t hot_keys;     // the keys in them
  double dispersion;     // chi-square / buckets: about 1 when hashing is uniform
};

}  // namespace

struct MapStats {
  ThreadUse uses[kThreadUses];
  std::atomic<uint64_t> untold_accesses;  // by threads past `uses`
  std::atomic<bool> untold_threads;
  std::atomic<uint64_t> users;            // threads that read, wrote or iterated
  std::atomic<uint64_t> reads, writes, iterations;
  std::atomic<uint64_t> shared_writes;    // writes once `users` was 2 or more
  std::atomic<uint64_t> switches;         // changes of the thread using it
  std::atomic<uint32_t> last_user;        // thread number + 1
  std::atomic<uint64_t> contended_locks;  // first accesses under a lock that waited
  std::atomic<uint64_t> conflicts;        // reports (and quiet ones) about it
  std::atomic<uint32_t> max_readers;
  // Growth (MG_SITE_HASHTABLE_LAYOUT). The log and the spread are written by
  // the writer inside its write region, exclusive in a correct program.
  bool has_buckets;
  std::atomic<uint64_t> rehashes;         // bucket-count changes after the first write
  std::atomic<uint64_t> moved;            // elements relinked by them
  std::atomic<uint64_t> max_size;
  std::atomic<uint32_t> max_load_milli;   // largest size / bucket_count seen, x1000
  RehashRecord log[kRehashLog];
  std::atomic<bool> spread_measured;
  KeySpread spread;
  void *map;
  const mg_site *site;  // first access: type and name
  const mg_site *created;
  MapStats *next;
};

namespace {

std::atomic<MapStats *> g_all_stats{nullptr};
std::atomic<uint64_t> g_stats_count{0};

MapStats *StatsFor(MapShadow *s, void *map, const mg_site *site) {
  MapStats *st = s->stats.load(std::memory_order_acquire);
  if (st) return st;
  MapStats *fresh = static_cast<MapStats *>(ArenaAlloc(sizeof(MapStats)));
  fresh->map = map;
  fresh->site = site;
  fresh->created = s->created_site.load(std::memory_order_relaxed);
  if (!s->stats.compare_exchange_strong(st, fresh, std::memory_order_acq_rel)) {
    ArenaFree(fresh, sizeof(MapStats));
    return st;
  }
  MapStats *head = g_all_stats.load(std::memory_order_relaxed);
  do {
    fresh->next = head;
  } while (!g_all_stats.compare_exchange_weak(head, fresh, std::memory_order_acq_rel));
  g_stats_count.fetch_add(1, std::memory_order_relaxed);
  return fresh;
}

ThreadUse *UseOf(MapStats *st, uint32_t me) {
  for (ThreadUse &u : st->uses) {
    uint32_t t = u.thread.load(std::memory_order_relaxed);
    if (t == me) return &u;
    if (t == 0 && u.thread.compare_exchange_strong(t, me, std::memory_order_relaxed)) return &u;
    if (t == me) return &u;  // lost the CAS to ourselves: cannot happen, but harmless
  }
  return nullptr;
}

template <class T>
void RaiseTo(std::atomic<T> &a, T v) {
  T seen = a.load(std::memory_order_relaxed);
  while (v > seen && !a.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
  }
}

uint64_t Total(const MapStats *m) {
  return m->reads.load() + m->writes.load() + m->iterations.load();
}

uint64_t Threads(const MapStats *m) { return m->users.load(); }

MapUsage UsageOf(const MapStats *m) {
  MapUsage u;
  u.reads = m->reads.load();
  u.writes = m->writes.load();
  u.iterations = m->iterations.load();
  u.threads = m->users.load();
  for (const ThreadUse &t : m->uses) {
    if (!t.thread.load()) continue;
    if (!t.used.load()) {
      u.lifecycle_threads++;
      continue;
    }
    if (t.writes.load()) u.writer_threads++;
    else u.nonwriter_iterations += t.iterations.load();
  }
  // Threads past the table: each may have written.
  if (m->untold_threads.load()) u.writer_threads = u.threads;
  u.shared_writes = m->shared_writes.load();
  u.switches = m->switches.load();
  u.contended_locks = m->contended_locks.load();
  u.conflicts = m->conflicts.load();
  u.size = m->has_buckets ? m->max_size.load() : 0;
  u.rehashes = m->rehashes.load();
  u.moved = m->moved.load();
  return u;
}

}  // namespace

MG_NOINLINE void CountAccess(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                             uint32_t readers_before) {
  MapStats *st = StatsFor(s, map, site);
  const uint32_t me = thr->number + 1;
  ThreadUse *use = UseOf(st, me);
  if (site->kind == MG_DESTROY) {
    // Tearing a map down is not using it: main destroying a worker's map
    // does not make the map shared.
    if (use) use->destructions.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  uint64_t users;
  if (use && !use->used.exchange(true, std::memory_order_relaxed)) {
    users = st->users.fetch_add(1, std::memory_order_relaxed) + 1;
  } else if (!use && !st->untold_threads.exchange(true, std::memory_order_relaxed)) {
    users = st->users.fetch_add(1, std::memory_order_relaxed) + 1;  // "and more"
  } else {
    users = st->users.load(std::memory_order_relaxed);
  }
  if (!use) st->untold_accesses.fetch_add(1, std::memory_order_relaxed);
  switch (site->kind) {
    case MG_READ:
      st->reads.fetch_add(1, std::memory_order_relaxed);
      if (use) use->reads.fetch_add(1, std::memory_order_relaxed);
      break;
    case MG_ITERATE:
      st->iterations.fetch_add(1, std::memory_order_relaxed);
      if (use) use->iterations.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      st->writes.fetch_add(1, std::memory_order_relaxed);
      if (use) use->writes.fetch_add(1, std::memory_order_relaxed);
      if (users >= 2) st->shared_writes.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  uint32_t last = st->last_user.exchange(me, std::memory_order_relaxed);
  if (last && last != me) st->switches.fetch_add(1, std::memory_order_relaxed);
  // The first access under a lock this thread had to wait for: the lock
  // most likely guards this map.
  if (thr->waited_lock && (thr->waited_for & 1)) {
    st->contended_locks.fetch_add(1, std::memory_order_relaxed);
    thr->waited_for &= uint8_t(~1u);
  }
  RaiseTo(st->max_readers, readers_before + (site->kind == MG_READ ? 1u : 0u));
}

void CountConflict(MapShadow *s) {
  if (MapStats *st = s->stats.load(std::memory_order_acquire))
    st->conflicts.fetch_add(1, std::memory_order_relaxed);
}

MG_NOINLINE void NoteBucketCount(MapShadow *s, void *map) {
  // MG_SITE_HASHTABLE_LAYOUT: both standard libraries keep these here.
  const uint64_t buckets = *reinterpret_cast<const uint64_t *>(static_cast<char *>(map) + 8);
  const uint64_t size = *reinterpret_cast<const uint64_t *>(static_cast<char *>(map) + 24);
  uint64_t before = s->buckets.exchange(buckets + 1, std::memory_order_relaxed);
  bool rehashed = before != 0 && before - 1 != buckets;
  if (rehashed) TraceRehash(map, before - 1, buckets, size);
  if (!g_print_stats) return;
  MapStats *st = s->stats.load(std::memory_order_acquire);
  if (!st) return;  // CountAccess at the write's begin creates it
  st->has_buckets = true;
  RaiseTo(st->max_size, size);
  if (rehashed) {
    uint64_t n = st->rehashes.fetch_add(1, std::memory_order_relaxed);
    if (n < kRehashLog) st->log[n] = {before - 1, buckets, size};
    st->moved.fetch_add(size, std::memory_order_relaxed);
  }
  if (buckets) RaiseTo(st->max_load_milli, uint32_t(size * 1000 / buckets));
}

// Both standard libraries' hash tables (MG_SITE_HASHTABLE_LAYOUT): the bucket
// array at offset 0, its length at 8, the list head at 16 (the node before
// the first; a node's first word is its successor), the size at 24. Every
// non-empty bucket holds a pointer to the node before its first node, and a
// bucket's nodes follow each other in the list: so the list splits into
// chains at the nodes the buckets point to, without calling the hasher.
MG_NOINLINE void MeasureKeySpread(MapShadow *s, void *map) {
  MapStats *st = g_print_stats ? s->stats.load(std::memory_order_acquire) : nullptr;
  if (st && st->spread_measured.load(std::memory_order_relaxed)) return;
  if (!st && !MG_PROBE_ACTIVE(key_spread)) return;
  char *base = static_cast<char *>(map);
  void *const *bucket = *reinterpret_cast<void *const *const *>(base);
  const uint64_t nb = *reinterpret_cast<const uint64_t *>(base + 8);
  const uint64_t size = *reinterpret_cast<const uint64_t *>(base + 24);
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
      st->spread_measured.store(true, std::memory_order_release);
    }
    TraceKeySpread(map, k.size, k.buckets, k.occupied, k.longest, uint64_t(k.dispersion * 1000));
  }
  munmap(mem, bytes);
}

void ForgetStats(MapShadow *s) { s->stats.store(nullptr, std::memory_order_release); }

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
  unsigned load = m->max_load_milli.load();
  uint64_t n = m->rehashes.load();
  out("  growth: %llu rehash%s", (unsigned long long)n, n == 1 ? "" : "es");
  if (n) out(" (%llu elements relinked)", (unsigned long long)m->moved.load());
  out("; largest load factor: %u.%02u; largest size: %llu\n", load / 1000, (load % 1000) / 10,
      (unsigned long long)m->max_size.load());
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
  if (m->spread_measured.load(std::memory_order_acquire)) {
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
  unsigned load = m->max_load_milli.load();
  uint64_t n = m->rehashes.load();
  out(",\"rehashes\":%llu,\"max_load_factor\":%u.%02u,\"growth\":{\"rehashes\":%llu,"
      "\"elements_moved\":%llu,\"max_size\":%llu,\"log\":[",
      (unsigned long long)n, load / 1000, (load % 1000) / 10, (unsigned long long)n,
      (unsigned long long)m->moved.load(), (unsigned long long)m->max_size.load());
  for (uint64_t i = 0; i < n && i < kRehashLog; i++) {
    const RehashRecord &r = m->log[i];
    unsigned l = LoadPercentAt(r);
    out("%s{\"from\":%llu,\"to\":%llu,\"load_factor\":%u.%02u}", i ? "," : "",
        (unsigned long long)r.old_buckets, (unsigned long long)r.new_buckets, l / 100, l % 100);
  }
  out("]");
  if (m->spread_measured.load(std::memory_order_acquire)) {
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
  const uint64_t count = g_stats_count.load();
  uint64_t shared = 0;
  for (MapStats *m = g_all_stats.load(); m; m = m->next) shared += Threads(m) >= 2;
  // The first `limit` maps in ShownBefore order, kept sorted by insertion.
  const size_t limit = g_flags.stats_maps ? size_t(g_flags.stats_maps) : size_t(count);
  const size_t cap = limit < count ? limit : size_t(count);
  const size_t bytes = (cap ? cap : 1) * sizeof(MapStats *);
  void *mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  MapStats **top = static_cast<MapStats **>(mem);
  size_t n = 0;
  for (MapStats *m = g_all_stats.load(); m && cap; m = m->next) {
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
    const MapUsage u = UsageOf(m);
    const MapAdvice a = Advise(u);
    // One map per write; a line too long for the buffer (a type name of
    // kilobytes) is cut, never overrun.
    Appender out(line, sizeof(line));
    if (json) {
      out("{\"mapguard_stats\":{\"type\":");
      AppendJsonString(out, m->site->map_type);
      out(",\"name\":");
      AppendJsonString(out, m->site->map_name);
      out(",\"address\":\"%p\"", m->map);
      if (m->created && m->created->file[0]) {
        out(",\"created\":{\"file\":");
        AppendJsonString(out, m->created->file);
        out(",\"line\":%u,\"column\":%u}", m->created->line, m->created->column);
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
          m->max_readers.load());
      bool first = true;
      for (const ThreadUse &t : m->uses) {
        if (!t.thread.load()) continue;
        out("%s{\"thread\":%u,\"reads\":%llu,\"writes\":%llu,\"iterations\":%llu,"
            "\"destructions\":%llu}",
            first ? "" : ",", t.thread.load() - 1, (unsigned long long)t.reads.load(),
            (unsigned long long)t.writes.load(), (unsigned long long)t.iterations.load(),
            (unsigned long long)t.destructions.load());
        first = false;
      }
      out("]");
      if (m->has_buckets) AppendGrowthJson(out, m);
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
    out("\nMap %s%s%s%s at %p", m->site->map_type, m->site->map_name[0] ? " '" : "",
        m->site->map_name, m->site->map_name[0] ? "'" : "", m->map);
    if (m->created && m->created->file[0])
      out(", created at %s:%u:%u", m->created->file, m->created->line, m->created->column);
    out("\n  accesses: %llu reads, %llu writes, %llu iterations; threads: %llu; most concurrent "
        "readers: %u\n",
        (unsigned long long)u.reads, (unsigned long long)u.writes,
        (unsigned long long)u.iterations, (unsigned long long)u.threads, m->max_readers.load());
    out("  by thread:");
    for (const ThreadUse &t : m->uses) {
      if (!t.thread.load()) continue;
      out(" T%u", t.thread.load() - 1);
      if (!t.used.load()) {
        out(" (destroyed it)");
        continue;
      }
      out(" (%llu/%llu/%llu)", (unsigned long long)t.reads.load(),
          (unsigned long long)t.writes.load(), (unsigned long long)t.iterations.load());
    }
    if (m->untold_threads.load())
      out(" and more threads (%llu accesses)", (unsigned long long)m->untold_accesses.load());
    out("  [reads/writes/iterations]\n");
    out("  contention: %llu lock wait%s before an access; thread changes: %llu; overlapping "
        "conflicts: %llu\n",
        (unsigned long long)u.contended_locks, u.contended_locks == 1 ? "" : "s",
        (unsigned long long)u.switches, (unsigned long long)u.conflicts);
    if (m->has_buckets) AppendGrowthText(out, m);
    out("  pattern: %s\n", a.summary);
    if (a.advice[0]) out("  advice: %s\n", a.advice);
    if (a.growth[0]) out("  advice: %s\n", a.growth);
    if (out.size() + 1 >= sizeof(line)) line[sizeof(line) - 2] = '\n';
    emit(out.data(), out.size());
  }
  PrintGuardedSwitches(json, to_log ? +[](const char *d, size_t n) { WriteReportOutput(d, n); }
                                    : +[](const char *d, size_t n) { WriteAll(d, n); });
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
