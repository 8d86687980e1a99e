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
  if (parent_tgid == child_tgid || !bpf_map_lookup_elem(&tracked, &parent_tgid)) return 0;
  bpf_map_update_elem(&tracked, &child_tgid, &one, BPF_ANY);
  struct mgs_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    __sync_fetch_and_add(&counters.events_lost, 1);
    return 0;
  }
  __builtin_memset(e, 0, sizeof(*e));
  e->type = MGS_EV_FORK;
  e->tgid = child_tgid;
  e->other_tid = parent_tgid;
  e->time_ns = bpf_ktime_get_ns();
  bpf_ringbuf_submit(e, 0);
  return 0;
}

/* A traced process is gone: its entry goes, so a long run (a test suite
 * forking thousands of processes) never fills the map. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(forget_exited, struct task_struct *task) {
  __u32 tgid = task->tgid;
  if (task->pid == tgid) bpf_map_delete_elem(&tracked, &tgid);
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
  e->type_name[0] = 0;
  e->map_name[0] = 0;
  struct mg_site s;
  if (site && !bpf_probe_read_user(&s, sizeof(s), (const void *)site)) {
    bpf_probe_read_user_str(e->type_name, MGS_TYPE_LEN, (const void *)s.map_type);
    bpf_probe_read_user_str(e->map_name, MGS_NAME_LEN, (const void *)s.map_name);
  }
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

/* A region begins on a map the kernel watches: region_begin (every region,
 * --full-trace) and watched_begin (the maps the runtime's control word
 * picks) share this. Counting is the runtime's (mg_stats_record.h); the
 * kernel keeps only what the overlap check needs. */
static __always_inline int on_begin(__u64 map, __u32 kind, __u64 site, int sample) {
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
  if (!ts) {
    struct mgs_thread_state fresh = {};
    bpf_map_update_elem(&thread_states, &tk, &fresh, BPF_NOEXIST);
    ts = bpf_map_lookup_elem(&thread_states, &tk);
    if (!ts) return 0;
  }
  __u64 weight = sample > 1 ? sample : 1;
  if (weight > counters.read_sample) counters.read_sample = weight;

  if (kind == MGS_WRITE || kind == MGS_DESTROY) {
    __u64 old = __sync_fetch_and_add(&st->counts, MGS_WRITER_ONE);
    __u32 other_writers = (__u32)(old & MGS_FIELD_MASK) - ts->writes;
    __u32 other_iters = (__u32)((old >> 42) & MGS_FIELD_MASK) - ts->iterations;
    __u32 other_readers = (__u32)((old >> 21) & MGS_FIELD_MASK) - ts->reads;
    ts->writes++;
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
    if (conflict >= 0) emit_conflict(tgid, tid, map, conflict, site, other_tid, other_site);
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
  } else {
    ts->iterations++;
    st->iter_tid = tid;
    st->iter_site = site;
  }
  if (other_writers)
    emit_conflict(tgid, tid, map,
                  kind == MGS_READ ? MGS_CONFLICT_READ_WRITE : MGS_CONFLICT_ITERATION_WRITE, site,
                  st->writer_tid, st->writer_site);
  return 0;
}

static __always_inline int on_end(__u64 map, __u32 kind) {
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

SEC("usdt")
int BPF_USDT(region_begin, __u64 map, __u32 kind, __u64 site, int sample) {
  return on_begin(map, kind, site, sample);
}

SEC("usdt")
int BPF_USDT(watched_begin, __u64 map, __u32 kind, __u64 site, int sample) {
  return on_begin(map, kind, site, sample);
}

SEC("usdt")
int BPF_USDT(region_end, __u64 map, __u32 kind) { return on_end(map, kind); }

SEC("usdt")
int BPF_USDT(watched_end, __u64 map, __u32 kind) { return on_end(map, kind); }

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
int BPF_USDT(conflict, __u64 map, __u32 kind, int tid, int other_tid, __u64 site, __u64 other_site,
             __u32 flags) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!is_tracked(tgid)) return 0;
  __sync_fetch_and_add(&counters.probe_hits, 1);
  emit_event(MGS_EV_RUNTIME_CONFLICT, tgid, tid, other_tid, map, kind, flags, site, other_site);
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

/* A plain event for the daemon (no call sites). */
static __always_inline void emit_plain(__u32 type, __u64 map, __u32 kind, __u32 flags) {
  __u64 id = bpf_get_current_pid_tgid();
  struct mgs_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    __sync_fetch_and_add(&counters.events_lost, 1);
    return;
  }
  __builtin_memset(e, 0, sizeof(*e));
  e->type = type;
  e->tgid = id >> 32;
  e->tid = (__u32)id;
  e->map = map;
  e->kind = kind;
  e->flags = flags;
  e->time_ns = bpf_ktime_get_ns();
  bpf_ringbuf_submit(e, 0);
}

SEC("usdt")
int BPF_USDT(init, int pid, int sample, int abi, __u64 registry) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!is_tracked(tgid)) return 0;
  __sync_fetch_and_add(&counters.probe_hits, 1);
  emit_plain(MGS_EV_INIT, registry, sample, abi);
  return 0;
}

/* The runtime is about to exit and waits (at most 2 s) until the daemon has
 * read its statistics records and acknowledged hand-over `seq`. */
SEC("usdt")
int BPF_USDT(stats_handover, __u64 registry, __u64 seq, int pid) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!is_tracked(tgid)) return 0;
  __sync_fetch_and_add(&counters.probe_hits, 1);
  emit_plain(MGS_EV_HANDOVER, registry, (__u32)seq, (__u32)(seq >> 32));
  return 0;
}
