// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The sidecar's kernel half: it follows the runtime's USDT probes and keeps
 * its own per-(process, map) state, so it detects overlapping conflicting
 * accesses without trusting anything in the traced process's memory except
 * the probe arguments themselves (and, for readable reports, the constant
 * mg_site strings the plugin emitted).
 *
 * The overlap check mirrors the runtime's state word: every region begin adds
 * one unit of its kind to the map's counts with an atomic fetch-and-add, so
 * of two overlapping regions the one that begins second always sees the
 * first. A thread's own nested regions are subtracted using its per-thread
 * counts, which only that thread updates (a thread runs on one CPU at a
 * time, so they need no atomics). */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>

#include "sidecar_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* --all: trace every process that uses the runtime, not just the target's
 * process tree. Set before load. */
const volatile int trace_all = 0;

struct mgs_counters counters = {};

/* Processes being traced: the target and its descendants. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8192);
  __type(key, __u32);
  __type(value, __u32);
} tracked SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct mgs_map_key);
  __type(value, struct mgs_map_state);
} map_states SEC(".maps");

/* LRU: entries of threads and maps long gone are recycled. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct mgs_thread_key);
  __type(value, struct mgs_thread_state);
} thread_states SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, struct mgs_map_key);
  __type(value, struct mgs_map_stats);
} map_stats SEC(".maps");

/* Lock waits (the runtime's lock_contended probe) of a thread not yet given
 * to a map: the next map it accesses takes them. Key: pid_tgid. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, __u64);
} pending_waits SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct mgs_guard_key);
  __type(value, __u64);
} guard_switches SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Just what we read of the kernel's task_struct; CO-RE fixes the offsets. */
struct task_struct {
  int pid;
  int tgid;
} __attribute__((preserve_access_index));

/* The runtime's mg_site (interface.h, MG_ABI_VERSION 2). */
struct mg_site {
  __u64 op, file;
  __u32 line, column;
  __u64 function, map_type, map_name;
  __u32 kind, abi_version, flags, reserved;
};

static __always_inline int is_tracked(__u32 tgid) {
  return trace_all || bpf_map_lookup_elem(&tracked, &tgid) != 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(follow_fork, struct task_struct *parent, struct task_struct *child) {
  __u32 parent_tgid = parent->tgid, child_tgid = child->tgid, one = 1;
  if (parent_tgid != child_tgid && bpf_map_lookup_elem(&tracked, &parent_tgid))
    bpf_map_update_elem(&tracked, &child_tgid, &one, BPF_ANY);
  return 0;
}

static __always_inline void read_site(struct mgs_site_text *out, __u64 site_addr) {
  struct mg_site site;
  out->line = 0;
  out->column = 0;
  out->file[0] = 0;
  out->op[0] = 0;
  if (!site_addr || bpf_probe_read_user(&site, sizeof(site), (const void *)site_addr)) return;
  out->line = site.line;
  out->column = site.column;
  bpf_probe_read_user_str(out->file, sizeof(out->file), (const void *)site.file);
  bpf_probe_read_user_str(out->op, sizeof(out->op), (const void *)site.op);
}

static __always_inline void read_type(char *type, char *name, __u64 site_addr) {
  struct mg_site site;
  type[0] = 0;
  name[0] = 0;
  if (!site_addr || bpf_probe_read_user(&site, sizeof(site), (const void *)site_addr)) return;
  bpf_probe_read_user_str(type, MGS_TYPE_LEN, (const void *)site.map_type);
  bpf_probe_read_user_str(name, MGS_NAME_LEN, (const void *)site.map_name);
}

static __always_inline struct mgs_map_stats *stats_for(struct mgs_map_key *key, __u64 site) {
  struct mgs_map_stats *ms = bpf_map_lookup_elem(&map_stats, key);
  if (ms) return ms;
  /* Zeroed by the map itself: an empty value is too large for the stack. */
  static const struct mgs_map_stats zero = {};
  if (bpf_map_update_elem(&map_stats, key, &zero, BPF_NOEXIST) && bpf_map_lookup_elem(&map_stats, key) == 0) {
    __sync_fetch_and_add(&counters.maps_untracked, 1);
    return 0;
  }
  ms = bpf_map_lookup_elem(&map_stats, key);
  if (ms && !ms->first_site) {
    ms->first_site = site;
    read_type(ms->type, ms->name, site);
  }
  return ms;
}

/* One conflict event, the kernel's own or the runtime's report, with the
 * readable text of both call sites (read now: the process may be gone by the
 * time user space looks). */
static __always_inline void emit_event(__u32 type, __u32 tgid, __u32 tid, __u32 other_tid,
                                       __u64 map, __u32 kind, __u32 flags, __u64 site,
                                       __u64 other_site) {
  struct mgs_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    __sync_fetch_and_add(&counters.events_lost, 1);
    return;
  }
  e->type = type;
  e->tgid = tgid;
  e->tid = tid;
  e->other_tid = other_tid;
  e->map = map;
  e->kind = kind;
  e->flags = flags;
  e->time_ns = bpf_ktime_get_ns();
  read_site(&e->site, site);
  read_site(&e->other_site, other_site);
  read_type(e->type_name, e->map_name, site);
  bpf_ringbuf_submit(e, 0);
}

static __always_inline void emit_conflict(__u32 tgid, __u32 tid, __u64 map, __u32 kind,
                                          __u64 site, __u32 other_tid, __u64 other_site) {
  __sync_fetch_and_add(&counters.kernel_conflicts, 1);
  /* The other thread's name is written after its count (two steps): if it
   * still names us, the other is not known. */
  if (other_tid == tid) {
    other_tid = 0;
    other_site = 0;
  }
  emit_event(MGS_EV_KERNEL_CONFLICT, tgid, tid, other_tid, map, kind, 0, site, other_site);
}

/* The access-pattern facts (runtime/mg_advice.h) of one region begin that
 * is not a destruction: mirrors the runtime's CountAccess. */
static __always_inline void note_use(struct mgs_map_stats *ms, struct mgs_thread_state *ts,
                                     __u64 id, __u32 tid, __u32 kind) {
  if (!ts->used) {
    ts->used = 1;
    __sync_fetch_and_add(&ms->users, 1);
  }
  if (kind == MGS_WRITE) {
    if (!ts->wrote) {
      ts->wrote = 1;
      __sync_fetch_and_add(&ms->writer_threads, 1);
      /* Its iterations were a non-writer's until now. */
      __sync_fetch_and_add(&ms->nonwriter_iterations, -ts->total_iterations);
    }
    if (ms->users >= 2) __sync_fetch_and_add(&ms->shared_writes, 1);
  } else if (kind == MGS_ITERATE) {
    ts->total_iterations++;
    if (!ts->wrote) __sync_fetch_and_add(&ms->nonwriter_iterations, 1);
  }
  __u64 last = ms->last_tid;
  if (last != tid) {
    ms->last_tid = tid;
    if (last) __sync_fetch_and_add(&ms->switches, 1);
  }
  __u64 *waits = bpf_map_lookup_elem(&pending_waits, &id);
  if (waits && *waits) {
    __sync_fetch_and_add(&ms->lock_waits, *waits);
    *waits = 0;
  }
}

SEC("usdt")
int BPF_USDT(lock_contended) {
  __u64 id = bpf_get_current_pid_tgid();
  if (!is_tracked(id >> 32)) return 0;
  __sync_fetch_and_add(&counters.probe_hits, 1);
  __u64 *waits = bpf_map_lookup_elem(&pending_waits, &id);
  if (waits) {
    __sync_fetch_and_add(waits, 1);
  } else {
    __u64 one = 1;
    bpf_map_update_elem(&pending_waits, &id, &one, BPF_ANY);
  }
  return 0;
}

SEC("usdt")
int BPF_USDT(region_begin, __u64 map, __u32 kind, __u64 site, int sample) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32, tid = (__u32)id;
  if (!is_tracked(tgid)) return 0;
  __sync_fetch_and_add(&counters.probe_hits, 1);

  struct mgs_map_key mk = {.tgid = tgid, .map = map};
  struct mgs_map_state *st = bpf_map_lookup_elem(&map_states, &mk);
  if (!st) {
    struct mgs_map_state fresh = {};
    bpf_map_update_elem(&map_states, &mk, &fresh, BPF_NOEXIST);
    st = bpf_map_lookup_elem(&map_states, &mk);
    if (!st) {
      __sync_fetch_and_add(&counters.maps_untracked, 1);
      return 0;
    }
  }
  struct mgs_thread_key tk = {.tgid = tgid, .tid = tid, .map = map};
  struct mgs_thread_state *ts = bpf_map_lookup_elem(&thread_states, &tk);
  int new_thread = 0;
  if (!ts) {
    struct mgs_thread_state fresh = {};
    bpf_map_update_elem(&thread_states, &tk, &fresh, BPF_NOEXIST);
    ts = bpf_map_lookup_elem(&thread_states, &tk);
    if (!ts) return 0;
    new_thread = 1;
  }
  struct mgs_map_stats *ms = stats_for(&mk, site);
  __u64 weight = sample > 1 ? sample : 1;
  if (weight > counters.read_sample) counters.read_sample = weight;
  if (ms && new_thread) __sync_fetch_and_add(&ms->threads, 1);
  if (ms && kind != MGS_DESTROY) note_use(ms, ts, id, tid, kind);

  if (kind == MGS_WRITE || kind == MGS_DESTROY) {
    __u64 old = __sync_fetch_and_add(&st->counts, MGS_WRITER_ONE);
    __u32 other_writers = (__u32)(old & MGS_FIELD_MASK) - ts->writes;
    __u32 other_iters = (__u32)((old >> 42) & MGS_FIELD_MASK) - ts->iterations;
    __u32 other_readers = (__u32)((old >> 21) & MGS_FIELD_MASK) - ts->reads;
    ts->writes++;
    if (ms) __sync_fetch_and_add(&ms->writes, 1);
    int conflict = -1;
    __u32 other_tid = 0;
    __u64 other_site = 0;
    if (other_writers) {
      conflict = MGS_CONFLICT_WRITES;
      other_tid = st->writer_tid;
      other_site = st->writer_site;
    } else if (other_iters) {
      conflict = MGS_CONFLICT_ITERATION_WRITE;
      other_tid = st->iter_tid;
      other_site = st->iter_site;
    } else if (other_readers) {
      conflict = MGS_CONFLICT_READ_WRITE;
      other_tid = st->reader_tid;
      other_site = st->reader_site;
    }
    if (ts->writes == 1) {
      st->writer_tid = tid;
      st->writer_site = site;
    }
    if (conflict >= 0) {
      if (ms) __sync_fetch_and_add(&ms->conflicts, 1);
      emit_conflict(tgid, tid, map, conflict, site, other_tid, other_site);
    }
    return 0;
  }
  if (kind != MGS_READ && kind != MGS_ITERATE) return 0;
  __u64 unit = kind == MGS_READ ? MGS_READER_ONE : MGS_ITER_ONE;
  __u64 old = __sync_fetch_and_add(&st->counts, unit);
  __u32 other_writers = (__u32)(old & MGS_FIELD_MASK) - ts->writes;
  if (kind == MGS_READ) {
    ts->reads++;
    st->reader_tid = tid;
    st->reader_site = site;
    if (ms) __sync_fetch_and_add(&ms->reads, weight);
  } else {
    ts->iterations++;
    st->iter_tid = tid;
    st->iter_site = site;
    if (ms) __sync_fetch_and_add(&ms->iterations, weight);
  }
  if (other_writers) {
    if (ms) __sync_fetch_and_add(&ms->conflicts, 1);
    emit_conflict(tgid, tid, map,
                  kind == MGS_READ ? MGS_CONFLICT_READ_WRITE : MGS_CONFLICT_ITERATION_WRITE, site,
                  st->writer_tid, st->writer_site);
  }
  return 0;
}

SEC("usdt")
int BPF_USDT(region_end, __u64 map, __u32 kind) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32, tid = (__u32)id;
  if (!is_tracked(tgid)) return 0;
  __sync_fetch_and_add(&counters.probe_hits, 1);
  struct mgs_thread_key tk = {.tgid = tgid, .tid = tid, .map = map};
  struct mgs_thread_state *ts = bpf_map_lookup_elem(&thread_states, &tk);
  __u64 unit;
  int field;
  if (kind == MGS_WRITE || kind == MGS_DESTROY) {
    if (!ts || !ts->writes) goto unmatched;
    ts->writes--;
    unit = MGS_WRITER_ONE;
    field = 0;
  } else if (kind == MGS_READ) {
    if (!ts || !ts->reads) goto unmatched;
    ts->reads--;
    unit = MGS_READER_ONE;
    field = 1;
  } else if (kind == MGS_ITERATE) {
    if (!ts || !ts->iterations) goto unmatched;
    ts->iterations--;
    unit = MGS_ITER_ONE;
    field = 2;
  } else {
    return 0;
  }
  struct mgs_map_key mk = {.tgid = tgid, .map = map};
  struct mgs_map_state *st = bpf_map_lookup_elem(&map_states, &mk);
  if (!st) return 0;
  /* Leaving: stop naming this thread as the one in flight, so a later
   * conflict names a thread still inside or none (0), never a stale one. */
  if (field == 0 && !ts->writes) __sync_val_compare_and_swap(&st->writer_tid, tid, 0);
  if (field == 1 && !ts->reads) __sync_val_compare_and_swap(&st->reader_tid, tid, 0);
  if (field == 2 && !ts->iterations) __sync_val_compare_and_swap(&st->iter_tid, tid, 0);
  __sync_fetch_and_sub(&st->counts, unit);
  return 0;
unmatched:
  __sync_fetch_and_add(&counters.unmatched_ends, 1);
  return 0;
}

/* A map was built or destroyed at this address: whatever the kernel knew of
 * an earlier map there does not concern the next one. */
static __always_inline void forget_map(__u64 map) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!is_tracked(tgid)) return;
  __sync_fetch_and_add(&counters.probe_hits, 1);
  struct mgs_map_key mk = {.tgid = tgid, .map = map};
  bpf_map_delete_elem(&map_states, &mk);
}

SEC("usdt")
int BPF_USDT(map_create, __u64 map, __u64 site) {
  forget_map(map);
  return 0;
}

SEC("usdt")
int BPF_USDT(map_destroy, __u64 map) {
  forget_map(map);
  return 0;
}

SEC("usdt")
int BPF_USDT(rehash, __u64 map, __u64 old_buckets, __u64 new_buckets, __u64 size) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!is_tracked(tgid)) return 0;
  __sync_fetch_and_add(&counters.probe_hits, 1);
  struct mgs_map_key mk = {.tgid = tgid, .map = map};
  struct mgs_map_stats *ms = bpf_map_lookup_elem(&map_stats, &mk);
  if (!ms) return 0;
  __sync_fetch_and_add(&ms->rehashes, 1);
  __sync_fetch_and_add(&ms->moved, size);
  if (new_buckets > ms->max_buckets) ms->max_buckets = new_buckets;
  if (size > ms->max_size) ms->max_size = size;
  return 0;
}

SEC("usdt")
int BPF_USDT(conflict, __u64 map, __u32 kind, int tid, int other_tid, __u64 site, __u64 other_site,
             __u32 flags) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!is_tracked(tgid)) return 0;
  __sync_fetch_and_add(&counters.probe_hits, 1);
  emit_event(MGS_EV_RUNTIME_CONFLICT, tgid, tid, other_tid, map, kind, flags, site, other_site);
  return 0;
}

SEC("usdt")
int BPF_USDT(key_spread, __u64 map, __u64 keys, __u64 buckets, __u64 occupied, __u64 longest,
             __u64 dispersion_milli) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!is_tracked(tgid)) return 0;
  __sync_fetch_and_add(&counters.probe_hits, 1);
  struct mgs_map_key mk = {.tgid = tgid, .map = map};
  struct mgs_map_stats *ms = bpf_map_lookup_elem(&map_stats, &mk);
  if (!ms) return 0;
  ms->spread_keys = keys;
  ms->spread_buckets = buckets;
  ms->spread_occupied = occupied;
  ms->spread_longest = longest;
  ms->spread_dispersion_milli = dispersion_milli;
  return 0;
}

SEC("usdt")
int BPF_USDT(guarded_switch, __u64 guard, __u32 from, __u32 to) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!is_tracked(tgid)) return 0;
  __sync_fetch_and_add(&counters.probe_hits, 1);
  struct mgs_guard_key k = {.tgid = tgid, .to = to, .guard = guard};
  __u64 *n = bpf_map_lookup_elem(&guard_switches, &k);
  if (n) {
    __sync_fetch_and_add(n, 1);
  } else {
    __u64 one = 1;
    if (bpf_map_update_elem(&guard_switches, &k, &one, BPF_NOEXIST)) {
      n = bpf_map_lookup_elem(&guard_switches, &k);
      if (n) __sync_fetch_and_add(n, 1);
    }
  }
  return 0;
}

SEC("usdt")
int BPF_USDT(init, int pid, int sample, int abi) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!is_tracked(tgid)) return 0;
  __sync_fetch_and_add(&counters.probe_hits, 1);
  struct mgs_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    __sync_fetch_and_add(&counters.events_lost, 1);
    return 0;
  }
  __builtin_memset(e, 0, sizeof(*e));
  e->type = MGS_EV_INIT;
  e->tgid = tgid;
  e->tid = (__u32)bpf_get_current_pid_tgid();
  e->kind = sample;
  e->flags = abi;
  e->time_ns = bpf_ktime_get_ns();
  bpf_ringbuf_submit(e, 0);
  return 0;
}
