// USDT probe sites and their semaphores; see mg_probes.h.
#define _SDT_HAS_SEMAPHORES 1
#include "mg_probes.h"

#include "mg_stats.h"

#include <sys/sdt.h>
#include <initializer_list>
#include <unistd.h>

// Probe sites stay <sys/sdt.h>'s 1-byte nop. A 5-byte nop lets kernels with
// uprobe optimization (x86-64, Linux 6.16+) patch a hit probe into a call to
// a trampoline page, several times cheaper per hit, but on this kernel
// (6.18) a fork child keeps the patched call and not the trampoline: every
// child of a traced program crashed at its first probe
// (tests/e2e/sidecar/fork_child.cpp). Correct children matter more than
// the cost of a traced probe.

// The semaphores live in .probes, where <sys/sdt.h> tools look for them.
// Every map access reads them, so they get a cache line of their own: the
// runtime's own writable globals (arena lock, counters) would otherwise sit
// next to them and every write there would evict them from other cores.
// Two of them are exported (mapguard_rt.map): the fast path inlined into
// instrumented code tests them.
#define MG_SEMAPHORE(name) \
  __attribute__((section(".probes"))) volatile unsigned short mapguard_##name##_semaphore = 0
extern "C" {
__attribute__((section(".probes"), aligned(64), used)) volatile char mapguard_probes_line_start[1];
MG_SEMAPHORE(region_begin);
MG_SEMAPHORE(region_end);
MG_SEMAPHORE(map_create);
MG_SEMAPHORE(map_destroy);
MG_SEMAPHORE(rehash);
MG_SEMAPHORE(conflict);
MG_SEMAPHORE(init);
MG_SEMAPHORE(lock_contended);
MG_SEMAPHORE(guarded_switch);
MG_SEMAPHORE(key_spread);
MG_SEMAPHORE(watched_begin);
MG_SEMAPHORE(watched_end);
MG_SEMAPHORE(stats_handover);
__attribute__((section(".probes"), used)) volatile char mapguard_probes_line_end[64];
}

namespace mapguard {

namespace {
// The sidecar's BPF program reads the site's strings with
// bpf_probe_read_user, which cannot fault pages in: touch them first, so a
// site whose strings were never read by the program still shows its name.
void PrefaultSite(const mg_site *site) {
  if (!site) return;
  for (const char *s : {site->op, site->file, site->map_type, site->map_name})
    if (s) (void)*static_cast<const volatile char *>(s);
}
}  // namespace

MG_NOINLINE uint8_t TraceRegionBegin(ThreadState *thr, MapShadow *s, void *map,
                                     const mg_site *site) {
  // The first access under a lock that had to wait: the sidecar gives the
  // wait to the map of the region_begin that follows on this thread.
  if (thr->waited_lock && (thr->waited_for & 2)) {
    thr->waited_for &= uint8_t(~2u);
    TraceLockContended();
  }
  // Called just before the region is pushed: past the stack's capacity it
  // would not be recorded, and then its end could not tell that it fired.
  if (thr->regions.Depth() >= RegionStack::kCapacity) return kTraceNone;
  // Both kinds at once when two tracers want them (a --full-trace sidecar
  // and a default one on the same runtime file: the uprobes are per file).
  uint8_t want = MG_PROBE_ACTIVE(region_begin) ? kTraceRegion : kTraceNone;
  if (MG_PROBE_ACTIVE(watched_begin) && MapIsWatched(map)) {
    if (TakeWatchBudget(thr)) want |= kTraceWatched;
    else thr->watch_budget_skipped = map;
  }
  if (!want) return kTraceNone;
  int sample = g_flags.usdt_read_sample;
  if (site->kind != MG_WRITE && site->kind != MG_DESTROY && sample > 1 &&
      thr->usdt_sample_tick++ % uint32_t(sample) != 0)
    return kTraceNone;
  if (want & kTraceWatched) s->kernel_state.store(1, std::memory_order_relaxed);
  PrefaultSite(site);
  unsigned long long m = reinterpret_cast<uintptr_t>(map), st = reinterpret_cast<uintptr_t>(site);
  unsigned kind = site->kind;
  int rate = sample > 1 ? sample : 1;
  if (want & kTraceRegion) DTRACE_PROBE4(mapguard, region_begin, m, kind, st, rate);
  if (want & kTraceWatched) DTRACE_PROBE4(mapguard, watched_begin, m, kind, st, rate);
  return want;
}

MG_NOINLINE void TraceRegionEnd(void *map, uint32_t kind, uint8_t traced) {
  unsigned long long m = reinterpret_cast<uintptr_t>(map);
  if ((traced & kTraceRegion) && MG_PROBE_ACTIVE(region_end))
    DTRACE_PROBE2(mapguard, region_end, m, kind);
  if ((traced & kTraceWatched) && MG_PROBE_ACTIVE(watched_end))
    DTRACE_PROBE2(mapguard, watched_end, m, kind);
}

MG_NOINLINE void TraceMapCreate(void *map, const mg_site *site) {
  unsigned long long m = reinterpret_cast<uintptr_t>(map), s = reinterpret_cast<uintptr_t>(site);
  DTRACE_PROBE2(mapguard, map_create, m, s);
}

MG_NOINLINE void TraceMapDestroy(void *map) {
  unsigned long long m = reinterpret_cast<uintptr_t>(map);
  DTRACE_PROBE1(mapguard, map_destroy, m);
}

void TraceRehash(void *map, uint64_t old_buckets, uint64_t new_buckets, uint64_t size) {
  if (!mapguard_rehash_semaphore) return;
  unsigned long long m = reinterpret_cast<uintptr_t>(map);
  DTRACE_PROBE4(mapguard, rehash, m, old_buckets, new_buckets, size);
}

void TraceConflict(void *map, uint32_t kind, int tid, int other_tid, const mg_site *site,
                   const mg_site *other_site, uint32_t flags) {
  if (!mapguard_conflict_semaphore) return;
  if (MG_PROBE_ACTIVE(watched_begin) && MapIsWatched(map)) flags |= kProbeWatched;
  PrefaultSite(site);
  PrefaultSite(other_site);
  unsigned long long m = reinterpret_cast<uintptr_t>(map), s = reinterpret_cast<uintptr_t>(site),
                     o = reinterpret_cast<uintptr_t>(other_site);
  DTRACE_PROBE7(mapguard, conflict, m, kind, tid, other_tid, s, o, flags);
}

void TraceLockContended() {
  if (!mapguard_lock_contended_semaphore) return;
  DTRACE_PROBE(mapguard, lock_contended);
}

void TraceKeySpread(void *map, uint64_t keys, uint64_t buckets, uint64_t occupied,
                    uint64_t longest, uint64_t dispersion_milli) {
  if (!mapguard_key_spread_semaphore) return;
  unsigned long long m = reinterpret_cast<uintptr_t>(map);
  DTRACE_PROBE6(mapguard, key_spread, m, keys, buckets, occupied, longest, dispersion_milli);
}

void TraceGuardedSwitch(const void *guard, unsigned from, unsigned to) {
  if (!mapguard_guarded_switch_semaphore) return;
  unsigned long long g = reinterpret_cast<uintptr_t>(guard);
  DTRACE_PROBE3(mapguard, guarded_switch, g, from, to);
}

void TraceStatsHandover(const void *registry, uint64_t seq) {
  unsigned long long r = reinterpret_cast<uintptr_t>(registry);
  int pid = getpid();
  DTRACE_PROBE3(mapguard, stats_handover, r, seq, pid);
}

// Fires at start-up, so a sidecar that launched the program knows the
// runtime is there and how reads are sampled.
void TraceInit() {
  if (!mapguard_init_semaphore) return;
  int pid = getpid(), sample = g_flags.usdt_read_sample, abi = MG_ABI_VERSION;
  unsigned long long registry = reinterpret_cast<uintptr_t>(&mapguard_sidecar_registry);
  DTRACE_PROBE4(mapguard, init, pid, sample, abi, registry);
}

}  // namespace mapguard
