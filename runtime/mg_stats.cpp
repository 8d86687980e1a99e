#include "mg_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_arena.h"

namespace mapguard {

bool g_print_stats;

struct MapStats {
  std::atomic<uint64_t> reads, writes, iterations;
  std::atomic<uint64_t> thread_mask;  // bit (slot % 64) per thread that touched the map
  std::atomic<uint32_t> max_readers;
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

const char *StrategyHint(const MapStats *m, int threads) {
  uint64_t total = Total(m);
  uint64_t writes = m->writes.load();
  if (threads <= 1) return "one thread: no lock needed";
  if (writes * 10 <= total)
    return "read-mostly from several threads: a reader-writer lock (std::shared_mutex) or a "
           "copy-on-write snapshot";
  if (writes * 10 >= total * 3)
    return "write-heavy from several threads: shard the map by key (one lock per shard)";
  return "mixed reads and writes from several threads: one mutex, held for short critical "
         "sections";
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
  char line[1024];
  int len = snprintf(line, sizeof(line), "==================\nmapguard: map statistics (%llu map%s%s)\n",
                     (unsigned long long)count, count == 1 ? "" : "s",
                     count > kShown ? "; the 20 most used" : "");
  WriteAll(line, size_t(len));
  for (int i = 0; i < n; i++) {
    const MapStats *m = top[i];
    int threads = __builtin_popcountll(m->thread_mask.load());
    len = snprintf(line, sizeof(line), "\nMap %s%s%s%s at %p", m->site->map_type,
                   m->site->map_name[0] ? " '" : "", m->site->map_name,
                   m->site->map_name[0] ? "'" : "", m->map);
    if (m->created && m->created->file[0])
      len += snprintf(line + len, sizeof(line) - size_t(len), ", created at %s:%u:%u", m->created->file,
                      m->created->line, m->created->column);
    len += snprintf(line + len, sizeof(line) - size_t(len),
                    "\n  accesses: %llu reads, %llu writes, %llu iterations; threads: %d; most "
                    "concurrent readers: %u\n  hint: %s\n",
                    (unsigned long long)m->reads.load(), (unsigned long long)m->writes.load(),
                    (unsigned long long)m->iterations.load(), threads, m->max_readers.load(),
                    StrategyHint(m, threads));
    WriteAll(line, size_t(len) < sizeof(line) ? size_t(len) : sizeof(line) - 1);
  }
  static const char kEnd[] = "==================\n";
  WriteAll(kEnd, sizeof(kEnd) - 1);
}

}  // namespace mapguard
