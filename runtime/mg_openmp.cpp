// OpenMP synchronization, seen through the OMPT tool interface (the way
// ThreadSanitizer's Archer does it). libomp's constructs do not go through
// pthread calls (its locks, barriers and task queues are its own), so the
// runtime registers as an OMPT tool: libomp calls ompt_start_tool, found in
// the process's global symbol scope, when it starts.
//
// Edges, each as OpenMP specifies it:
//   fork:     the encountering thread's parallel_begin   -> each implicit task's begin
//   join:     each implicit task's end                   -> parallel_end
//   barrier:  every thread's barrier begin               -> every thread's barrier end
//             (two alternating clocks per region: a fast thread arriving at
//             barrier k+1 cannot reach the clock others are leaving at k)
//   locks, critical, ordered, atomic (as mutexes): release -> later acquire of the same wait id
//             (a nest lock's inner acquires and releases by its owner order nothing more)
//   tasks:    task_create -> the task's start; a task's completion -> its
//             parent's taskwait/taskgroup end; a task's completion -> the start
//             of later tasks with a dependence on the same variable
// With detect=overlap nothing is recorded.
#include <omp-tools.h>

#include <new>

#include "mg_access.h"
#include "mg_hb.h"

namespace mapguard {
namespace {

// Each synchronization point is a distinct 8-byte granule (a SyncVar is
// found by its address's shadow slot).
struct alignas(16) ParallelSync {
  char fork[8], join[8], barrier[2][8];
};

struct alignas(16) TaskSync {
  char start[8], children[8];
  TaskSync *parent;
  ParallelSync *parallel;
  uint32_t barriers;  // barriers this implicit task has passed
  bool implicit;
  int ndeps;
  static constexpr int kMaxDeps = 8;
  const void *deps[kMaxDeps];
};


template <typename T>
T *NewSync() {
  return new (ArenaAlloc(sizeof(T))) T();
}

// A freed sync object's address will be reused: its clocks must not carry
// over (an edge too many hides races).
void FreeParallel(ParallelSync *p) {
  ResetSync(p->fork);
  ResetSync(p->join);
  ResetSync(p->barrier[0]);
  ResetSync(p->barrier[1]);
  ArenaFree(p, sizeof(ParallelSync));
}

void FreeTask(TaskSync *t) {
  ResetSync(t->start);
  ResetSync(t->children);
  ArenaFree(t, sizeof(TaskSync));
}

TaskSync *TaskOf(ompt_data_t *d) { return d ? static_cast<TaskSync *>(d->ptr) : nullptr; }

void OnParallelBegin(ompt_data_t *, const ompt_frame_t *, ompt_data_t *parallel_data, unsigned, int,
                     const void *) {
  ParallelSync *p = NewSync<ParallelSync>();
  parallel_data->ptr = p;
  if (ThreadState *thr = HbThread()) Release(thr, p->fork);
}

void OnParallelEnd(ompt_data_t *parallel_data, ompt_data_t *, int, const void *) {
  ParallelSync *p = static_cast<ParallelSync *>(parallel_data->ptr);
  if (!p) return;
  if (ThreadState *thr = HbThread()) Acquire(thr, p->join);
  parallel_data->ptr = nullptr;
  FreeParallel(p);
}

void OnImplicitTask(ompt_scope_endpoint_t endpoint, ompt_data_t *parallel_data,
                    ompt_data_t *task_data, unsigned, unsigned, int flags) {
  ThreadState *thr = HbThread();
  if (endpoint == ompt_scope_begin) {
    TaskSync *t = NewSync<TaskSync>();
    t->implicit = true;
    if (!(flags & ompt_task_initial) && parallel_data)
      t->parallel = static_cast<ParallelSync *>(parallel_data->ptr);
    task_data->ptr = t;
    if (thr && t->parallel) Acquire(thr, t->parallel->fork);
    return;
  }
  TaskSync *t = TaskOf(task_data);
  if (!t) return;
  if (thr && t->parallel) Release(thr, t->parallel->join);
  task_data->ptr = nullptr;
  FreeTask(t);
}

bool IsBarrier(ompt_sync_region_t kind) {
  switch (kind) {
    case ompt_sync_region_barrier:
    case ompt_sync_region_barrier_implicit:
    case ompt_sync_region_barrier_explicit:
    case ompt_sync_region_barrier_implementation:
    case ompt_sync_region_barrier_teams:
    case ompt_sync_region_barrier_implicit_workshare:
    case ompt_sync_region_barrier_implicit_parallel:
      return true;
    default:
      return false;
  }
}

void OnSyncRegion(ompt_sync_region_t kind, ompt_scope_endpoint_t endpoint,
                  ompt_data_t *parallel_data, ompt_data_t *task_data, const void *) {
  ThreadState *thr = HbThread();
  TaskSync *t = TaskOf(task_data);
  if (!thr || !t) return;
  if (IsBarrier(kind)) {
    ParallelSync *p = t->parallel;
    if (!p && parallel_data) p = static_cast<ParallelSync *>(parallel_data->ptr);
    if (!p) return;
    char *clock = p->barrier[t->barriers % 2];
    if (endpoint == ompt_scope_begin) {
      Release(thr, clock);
    } else {
      Acquire(thr, clock);
      t->barriers++;
    }
    return;
  }
  // taskwait and taskgroup: the waited-for tasks' completions happen before.
  if ((kind == ompt_sync_region_taskwait || kind == ompt_sync_region_taskgroup) &&
      endpoint == ompt_scope_end)
    Acquire(thr, t->children);
}

void OnTaskCreate(ompt_data_t *encountering_task_data, const ompt_frame_t *,
                  ompt_data_t *new_task_data, int flags, int, const void *) {
  if (!(flags & ompt_task_explicit) && !(flags & ompt_task_target)) return;
  TaskSync *n = NewSync<TaskSync>();
  n->parent = TaskOf(encountering_task_data);
  n->parallel = n->parent ? n->parent->parallel : nullptr;
  new_task_data->ptr = n;
  if (ThreadState *thr = HbThread()) Release(thr, n->start);
}

void OnDependences(ompt_data_t *task_data, const ompt_dependence_t *deps, int ndeps) {
  TaskSync *t = TaskOf(task_data);
  if (!t) return;
  for (int i = 0; i < ndeps && t->ndeps < TaskSync::kMaxDeps; i++)
    t->deps[t->ndeps++] = deps[i].variable.ptr;
}

void OnTaskSchedule(ompt_data_t *prior_task_data, ompt_task_status_t prior_status,
                    ompt_data_t *next_task_data) {
  ThreadState *thr = HbThread();
  TaskSync *prior = TaskOf(prior_task_data);
  if (prior && !prior->implicit &&
      (prior_status == ompt_task_complete || prior_status == ompt_task_late_fulfill)) {
    if (thr) {
      // Every dependence orders the task before later tasks on the variable
      // (an `in` task before a later `out` one, too).
      for (int i = 0; i < prior->ndeps; i++) Release(thr, prior->deps[i]);
      if (prior->parent) Release(thr, prior->parent->children);
    }
    prior_task_data->ptr = nullptr;
    FreeTask(prior);
  }
  TaskSync *next = TaskOf(next_task_data);
  if (thr && next && !next->implicit) {
    Acquire(thr, next->start);
    for (int i = 0; i < next->ndeps; i++) Acquire(thr, next->deps[i]);
  }
}

// libomp reports mutex_released after the lock is free again, so the next
// owner's mutex_acquired can come first: the SyncVar's own lock is held from
// acquired to released to keep the two in the lock's order (as Archer does).
// The release is never skipped, so a lock taken in acquired is always given
// back (even if happens-before was turned off in between).
void OnMutexAcquired(ompt_mutex_t, ompt_wait_id_t wait_id, const void *) {
  LockAcquired(true);
  if (!g_detect_hb) return;
  AcquireSerialized(CurrentThread(), reinterpret_cast<const void *>(wait_id));
}

void OnMutexReleased(ompt_mutex_t, ompt_wait_id_t wait_id, const void *) {
  LockReleased(true);
  ReleaseSerialized(CurrentThread(), reinterpret_cast<const void *>(wait_id));
}

int InitializeTool(ompt_function_lookup_t lookup, int, ompt_data_t *) {
  auto set_callback = reinterpret_cast<ompt_set_callback_t>(lookup("ompt_set_callback"));
  if (!set_callback) return 0;
  set_callback(ompt_callback_parallel_begin, reinterpret_cast<ompt_callback_t>(&OnParallelBegin));
  set_callback(ompt_callback_parallel_end, reinterpret_cast<ompt_callback_t>(&OnParallelEnd));
  set_callback(ompt_callback_implicit_task, reinterpret_cast<ompt_callback_t>(&OnImplicitTask));
  set_callback(ompt_callback_sync_region, reinterpret_cast<ompt_callback_t>(&OnSyncRegion));
  set_callback(ompt_callback_task_create, reinterpret_cast<ompt_callback_t>(&OnTaskCreate));
  set_callback(ompt_callback_dependences, reinterpret_cast<ompt_callback_t>(&OnDependences));
  set_callback(ompt_callback_task_schedule, reinterpret_cast<ompt_callback_t>(&OnTaskSchedule));
  set_callback(ompt_callback_mutex_acquired, reinterpret_cast<ompt_callback_t>(&OnMutexAcquired));
  set_callback(ompt_callback_mutex_released, reinterpret_cast<ompt_callback_t>(&OnMutexReleased));
  return 1;  // keep the tool active
}

void FinalizeTool(ompt_data_t *) {}

}  // namespace
}  // namespace mapguard

// libomp looks this up when it starts; returning a result makes the runtime
// its tool. A program without OpenMP never calls it.
extern "C" __attribute__((visibility("default"))) ompt_start_tool_result_t *ompt_start_tool(
    unsigned int, const char *) {
  static ompt_start_tool_result_t result = {&mapguard::InitializeTool, &mapguard::FinalizeTool,
                                            {0}};
  return &result;
}
