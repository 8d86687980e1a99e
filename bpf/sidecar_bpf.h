/* The BPF side of the sidecar as seen from C++: a thin C shim around the
 * bpftool-generated skeleton (which uses C-only _Bool and designated
 * initializers, so it is compiled as C in sidecar_bpf.c). */
#ifndef MAPGUARD_SIDECAR_BPF_H
#define MAPGUARD_SIDECAR_BPF_H

#include <stddef.h>

#include "sidecar_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mgs_bpf;

/* Opens and loads the BPF program. trace_all: every process using the
 * runtime, not only tracked ones. NULL on failure, with `err` filled in. */
struct mgs_bpf *mgs_bpf_load(int trace_all, char *err, size_t errlen);
/* Attaches the mapguard USDT probes the sidecar uses in `runtime_path` (an
 * absolute path to libmapguard_rt.so) for all processes, and the fork
 * tracepoint that extends tracking to children. full_trace: the region
 * probes of every region (the test mode), else those of the watched maps.
 * Returns 0, or -1 with `err` filled in. */
int mgs_bpf_attach(struct mgs_bpf *b, const char *runtime_path, int full_trace, char *err,
                   size_t errlen);
int mgs_bpf_track(struct mgs_bpf *b, unsigned pid);
int mgs_bpf_events_fd(struct mgs_bpf *b);
int mgs_bpf_guard_switches_fd(struct mgs_bpf *b);
int mgs_bpf_tracked_fd(struct mgs_bpf *b);
/* Live view of the BPF program's global counters. */
const volatile struct mgs_counters *mgs_bpf_counters(struct mgs_bpf *b);
void mgs_bpf_destroy(struct mgs_bpf *b);

#ifdef __cplusplus
}
#endif

#endif
