#include "mg_stats.h"

#include "mg_appender.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_arena.h"
#include "mg_lock_hint.h"
#include "mg_probes.h"
#include "mg_report.h"

namespace mapguard {

bool g_print_stats;

struct MapStats {
  std::atomic<uint64_t> reads, writes, iterations;
  std::atomic<uint64_t> thread_mask;  // bit (slot % 64) per thread that touched the map
  std::atomic<uint32_t> max_readers;
  std::atomic<uint64_t> rehashes;         // bucket-count changes after the first write
  std::atomic<uint32_t> max_load_milli;   // largest size / bucket_count seen, x1000
  bool has_buckets;                       // the type's layout lets us see buckets
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

uint64_t Total(const MapStats *m) {
  return m->reads.load() + m->writes.load() + m->iterations.load();
}

}  // namespace

MG_NOINLINE void CountAccess(ThreadState *thr, MapShadow *s, void *map, const mg_site *site,
                             uint32_t readers_before) {
  MapStats *st = StatsFor(s, map, site);
  switch (site->kind) {
    case MG_READ:
      st->reads.fetch_add(1, std::memory_order_relaxed);
      break;
    case MG_ITERATE:
      st->iterations.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      st->writes.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  st->thread_mask.fetch_or(uint64_t(1) << (thr->slot % 64), std::memory_order_relaxed);
  uint32_t readers = readers_before + (site->kind == MG_READ ? 1 : 0);
  uint32_t seen = st->max_readers.load(std::memory_order_relaxed);
  while (readers > seen && !st->max_readers.compare_exchange_weak(seen, readers)) {
  }
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
  if (rehashed) st->rehashes.fetch_add(1, std::memory_order_relaxed);
  if (buckets) {
    uint32_t load = uint32_t(size * 1000 / buckets);
    uint32_t seen = st->max_load_milli.load(std::memory_order_relaxed);
    while (load > seen && !st->max_load_milli.compare_exchange_weak(seen, load)) {
    }
  }
}

void ForgetStats(MapShadow *s) { s->stats.store(nullptr, std::memory_order_release); }

void PrintStats() {
  if (!g_print_stats) return;
  uint64_t count = g_stats_count.load();
  // The 20 most used maps, by total accesses.
  constexpr int kShown = 20;
  MapStats *top[kShown];
  int n = 0;
  for (MapStats *m = g_all_stats.load(); m; m = m->next) {
    int pos = n < kShown ? n++ : kShown;
    if (pos == kShown) {
      if (Total(m) <= Total(top[kShown - 1])) continue;
      pos = kShown - 1;
    }
    while (pos > 0 && Total(top[pos - 1]) < Total(m)) {
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
  char line[4096];
  if (!json) {
    Appender out(line, sizeof(line));
    out("==================\nmapguard: map statistics (%llu map%s%s)\n", (unsigned long long)count,
        count == 1 ? "" : "s", count > kShown ? "; the 20 most used" : "");
    emit(out.data(), out.size());
  }
  for (int i = 0; i < n; i++) {
    const MapStats *m = top[i];
    int threads = __builtin_popcountll(m->thread_mask.load());
    const char *hint = LockStrategyHint(m->reads.load() + m->iterations.load(), m->writes.load(),
                                        threads, 0);
    unsigned load = m->max_load_milli.load();
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
      out(",\"reads\":%llu,\"writes\":%llu,\"iterations\":%llu,\"threads\":%d,"
          "\"max_concurrent_readers\":%u",
          (unsigned long long)m->reads.load(), (unsigned long long)m->writes.load(),
          (unsigned long long)m->iterations.load(), threads, m->max_readers.load());
      if (m->has_buckets)
        out(",\"rehashes\":%llu,\"max_load_factor\":%u.%02u", (unsigned long long)m->rehashes.load(),
            load / 1000, (load % 1000) / 10);
      out(",\"hint\":");
      AppendJsonString(out, hint);
      out("}}\n");
      // A cut line would not be JSON: leave it out.
      if (out.size() + 1 < sizeof(line)) emit(out.data(), out.size());
      continue;
    }
    out("\nMap %s%s%s%s at %p", m->site->map_type, m->site->map_name[0] ? " '" : "",
        m->site->map_name, m->site->map_name[0] ? "'" : "", m->map);
    if (m->created && m->created->file[0])
      out(", created at %s:%u:%u", m->created->file, m->created->line, m->created->column);
    out("\n  accesses: %llu reads, %llu writes, %llu iterations; threads: %d; most concurrent "
        "readers: %u\n",
        (unsigned long long)m->reads.load(), (unsigned long long)m->writes.load(),
        (unsigned long long)m->iterations.load(), threads, m->max_readers.load());
    if (m->has_buckets)
      out("  growth: %llu rehash%s; largest load factor: %u.%02u\n",
          (unsigned long long)m->rehashes.load(), m->rehashes.load() == 1 ? "" : "es", load / 1000,
          (load % 1000) / 10);
    out("  hint: %s\n", hint);
    if (out.size() + 1 >= sizeof(line)) line[sizeof(line) - 2] = '\n';
    emit(out.data(), out.size());
  }
  if (!json) {
    static const char kEnd[] = "==================\n";
    emit(kEnd, sizeof(kEnd) - 1);
  }
}

}  // namespace mapguard
