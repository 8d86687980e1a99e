/* C shim around the generated skeleton; see sidecar_bpf.h. */
#include "sidecar_bpf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mapguard.skel.h"

struct mgs_bpf {
  struct mapguard_bpf *skel;
};

struct mgs_bpf *mgs_bpf_load(int trace_all, char *err, size_t errlen) {
  struct mapguard_bpf *skel = mapguard_bpf__open();
  if (!skel) {
    snprintf(err, errlen, "cannot open the BPF object: %s", strerror(errno));
    return NULL;
  }
  skel->rodata->trace_all = trace_all;
  int rc = mapguard_bpf__load(skel);
  if (rc) {
    int e = -rc;
    snprintf(err, errlen, "cannot load the BPF programs into the kernel: %s%s", strerror(e),
             e == EPERM || e == EACCES ? " (needs root, or CAP_BPF and CAP_PERFMON)" : "");
    mapguard_bpf__destroy(skel);
    return NULL;
  }
  static struct mgs_bpf handle;
  handle.skel = skel;
  return &handle;
}

static int attach_probe(struct bpf_program *prog, struct bpf_link **link, const char *path,
                        const char *name, char *err, size_t errlen) {
  *link = bpf_program__attach_usdt(prog, -1, path, "mapguard", name, NULL);
  if (*link) return 0;
  int e = errno;
  if (e == ENOENT || e == ESRCH)
    snprintf(err, errlen, "%s has no mapguard:%s USDT probe; is it the mapguard runtime "
             "(libmapguard_rt.so) of this version?", path, name);
  else
    snprintf(err, errlen, "cannot attach to the mapguard:%s probe in %s: %s", name, path,
             strerror(e));
  return -1;
}

int mgs_bpf_attach(struct mgs_bpf *b, const char *path, int full_trace, char *err,
                   size_t errlen) {
  struct mapguard_bpf *s = b->skel;
  int rc = full_trace
               ? attach_probe(s->progs.region_begin, &s->links.region_begin, path, "region_begin", err, errlen) ||
                     attach_probe(s->progs.region_end, &s->links.region_end, path, "region_end", err, errlen)
               : attach_probe(s->progs.watched_begin, &s->links.watched_begin, path, "watched_begin", err, errlen) ||
                     attach_probe(s->progs.watched_end, &s->links.watched_end, path, "watched_end", err, errlen);
  /* stats_handover last: its semaphore turns the runtime's counting on, and
   * the maps the kernel watches go to the runtime only while it is up. */
  if (rc ||
      attach_probe(s->progs.map_create, &s->links.map_create, path, "map_create", err, errlen) ||
      attach_probe(s->progs.map_destroy, &s->links.map_destroy, path, "map_destroy", err, errlen) ||
      attach_probe(s->progs.conflict, &s->links.conflict, path, "conflict", err, errlen) ||
      attach_probe(s->progs.init, &s->links.init, path, "init", err, errlen) ||
      attach_probe(s->progs.guarded_switch, &s->links.guarded_switch, path, "guarded_switch", err,
                   errlen) ||
      attach_probe(s->progs.stats_handover, &s->links.stats_handover, path, "stats_handover", err,
                   errlen))
    return -1;
  s->links.follow_fork = bpf_program__attach(s->progs.follow_fork);
  if (!s->links.follow_fork) {
    snprintf(err, errlen, "cannot attach to the sched_process_fork tracepoint: %s", strerror(errno));
    return -1;
  }
  s->links.forget_exited = bpf_program__attach(s->progs.forget_exited);
  if (!s->links.forget_exited) {
    snprintf(err, errlen, "cannot attach to the sched_process_exit tracepoint: %s", strerror(errno));
    return -1;
  }
  return 0;
}

int mgs_bpf_track(struct mgs_bpf *b, unsigned pid) {
  unsigned one = 1;
  return bpf_map__update_elem(b->skel->maps.tracked, &pid, sizeof(pid), &one, sizeof(one), BPF_ANY);
}

int mgs_bpf_events_fd(struct mgs_bpf *b) { return bpf_map__fd(b->skel->maps.events); }
int mgs_bpf_guard_switches_fd(struct mgs_bpf *b) { return bpf_map__fd(b->skel->maps.guard_switches); }
int mgs_bpf_tracked_fd(struct mgs_bpf *b) { return bpf_map__fd(b->skel->maps.tracked); }

const volatile struct mgs_counters *mgs_bpf_counters(struct mgs_bpf *b) {
  return &b->skel->bss->counters;
}

void mgs_bpf_destroy(struct mgs_bpf *b) {
  if (b && b->skel) mapguard_bpf__destroy(b->skel);
  if (b) b->skel = NULL;
}
