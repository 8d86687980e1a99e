/* What the sidecar's BPF program (mapguard.bpf.c) and its user-space daemon
 * (sidecar.cpp) share: BPF map keys and values, ring-buffer events, counters.
 * Plain C with fixed-width kernel types, so both sides compile it. */
#ifndef MAPGUARD_SIDECAR_ABI_H
#define MAPGUARD_SIDECAR_ABI_H

#include <linux/types.h>

/* mg_access_kind of the runtime (runtime/include/mapguard/interface.h). */
enum { MGS_READ = 0, MGS_WRITE = 1, MGS_ITERATE = 2, MGS_CONSTRUCT = 3, MGS_DESTROY = 4 };

/* Conflict kinds, as the runtime's conflict probe numbers them. */
enum { MGS_CONFLICT_WRITES = 0, MGS_CONFLICT_READ_WRITE = 1, MGS_CONFLICT_ITERATION_WRITE = 2 };

/* Flags of the runtime's conflict probe (runtime/mg_probes.h). */
enum {
  MGS_RT_HAPPENS_BEFORE = 1,
  MGS_RT_SUPPRESSED = 2,
  MGS_RT_DUPLICATE = 4,
  MGS_RT_HALTING = 8,
  MGS_RT_WATCHED = 16, /* the kernel watched the map (its control word picked it) */
};

/* Regions in flight on one map, one field per kind, each counted by every
 * thread; a thread's own share is in its mgs_thread_state. */
#define MGS_WRITER_ONE 1ULL
#define MGS_READER_ONE (1ULL << 21)
#define MGS_ITER_ONE (1ULL << 42)
#define MGS_FIELD_MASK ((1ULL << 21) - 1)

struct mgs_map_key {
  __u32 tgid;
  __u32 pad;
  __u64 map; /* the map object's address in that process */
};

/* The kernel's own overlap state of one live map. */
struct mgs_map_state {
  __u64 counts; /* MGS_*_ONE units */
  __u32 writer_tid, reader_tid, iter_tid, pad;
  __u64 writer_site, reader_site, iter_site; /* mg_site addresses */
};

struct mgs_thread_key {
  __u32 tgid, tid;
  __u64 map;
};

/* reads, writes, iterations: this thread's regions in flight on the map.
 * The rest is its history there, for the access-pattern advice. */
struct mgs_thread_state {
  __u32 reads, writes, iterations;
  __u8 used;  /* read, wrote or iterated (a destruction alone does not count) */
  __u8 wrote;
  __u8 pad[2];
  __u64 total_iterations;
};

/* mapguard::guarded's strategy switches, per guard and strategy switched to
 * (values of mapguard::Strategy). */
struct mgs_guard_key {
  __u32 tgid;
  __u32 to;
  __u64 guard;
};

#define MGS_TYPE_LEN 96
#define MGS_NAME_LEN 64
#define MGS_FILE_LEN 192
#define MGS_OP_LEN 40

/* Metrics of one map address in one process (kept after the map is gone):
 * user space only, built by the daemon from the runtime's own records
 * (runtime/mg_stats_record.h, bpf/sidecar_records.cpp). */
struct mgs_map_stats {
  __u64 reads, writes, iterations; /* accesses, exact */
  __u64 conflicts, rehashes, threads, max_buckets;
  /* The facts of runtime/mg_advice.h's MapUsage. */
  __u64 users;                /* threads that read, wrote or iterated */
  __u64 writer_threads;       /* threads that wrote */
  __u64 nonwriter_iterations; /* iterations by threads that never wrote */
  __u64 shared_writes;        /* writes once two threads used it */
  __u64 switches;             /* changes of the thread using it */
  __u64 last_tid;
  __u64 lock_waits;           /* lock waits just before an access */
  __u64 moved, max_size;      /* elements relinked by rehashes; largest size seen */
  __u64 max_load_milli;       /* largest load factor seen, x1000 */
  /* How the keys spread over the buckets, at the last destruction seen
   * (the runtime's key_spread probe); spread_buckets 0: never measured. */
  __u64 spread_keys, spread_buckets, spread_occupied, spread_longest, spread_dispersion_milli;
  __u64 first_site;
  __u64 watched;       /* the kernel-side check watched it */
  __u64 watch_skipped; /* its regions the trace budget left out */
  char type[MGS_TYPE_LEN];
  char name[MGS_NAME_LEN];
};

struct mgs_site_text {
  char file[MGS_FILE_LEN];
  char op[MGS_OP_LEN];
  __u32 line, column;
};

enum {
  MGS_EV_KERNEL_CONFLICT = 1,  /* the BPF program saw two regions overlap */
  MGS_EV_RUNTIME_CONFLICT = 2, /* the runtime's conflict probe fired */
  MGS_EV_INIT = 3,             /* a process started the runtime (map: its registry) */
  MGS_EV_FORK = 5,             /* a traced process forked (tgid: the child, other_tid: the parent) */
  MGS_EV_HANDOVER = 4,         /* a process is exiting and waits for its records to be read
                                  (map: its registry; kind, flags: the hand-over's number) */
};

struct mgs_event {
  __u32 type;
  __u32 tgid;
  __u32 tid, other_tid;
  __u64 map;
  __u32 kind;  /* MGS_CONFLICT_*; for MGS_EV_INIT the read sample rate */
  __u32 flags; /* MGS_RT_* */
  __u64 time_ns;
  struct mgs_site_text site, other_site; /* other_site.line 0: unknown */
  char type_name[MGS_TYPE_LEN];
  char map_name[MGS_NAME_LEN];
};

/* Global counters, in the BPF program's .bss (read through the skeleton). */
struct mgs_counters {
  __u64 probe_hits;       /* probes fired by traced processes */
  __u64 events_lost;      /* ring buffer full: an event was not delivered */
  __u64 maps_untracked;   /* a BPF map was full: a watched map's state not kept */
  __u64 unmatched_ends;   /* region ends whose begin was not seen (attached late) */
  __u64 kernel_conflicts; /* overlaps the BPF program detected */
  __u64 read_sample;      /* largest usdt_read_sample seen (1: reads complete) */
};

#endif
