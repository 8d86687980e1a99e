// Thread registry: mapguard thread numbers, slots reused after exit, and the
// pthread_create interceptor that records who created each thread and where.
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <initializer_list>
#include <new>

#include "mg_access.h"
#include "mg_hb.h"
#include "mg_real.h"
#include "mg_rt.h"
#include "mg_stats.h"

namespace mapguard {

MG_TLS __thread ThreadState *t_thread;

namespace {

// ThreadStates live in one mmap'd array indexed by slot and are never freed:
// a report may read another thread's state while that thread exits. Slots of
// exited threads are reused, so the array only grows to the peak number of
// live threads.
ThreadState *g_pool;
std::atomic<uint32_t> g_slot_limit{0};
constexpr uint32_t kSlotsBeforeReuse = 64;
std::atomic<bool> g_slot_live[kMaxThreads];
uint32_t g_free_slots[kMaxThreads];
uint32_t g_free_count;
// Not std::mutex: pthread_mutex_lock is intercepted, and the interceptor may
// need a ThreadState, which is created under this lock.
}  // namespace
SpinLock g_registry_mu;  // slow path only: thread start and exit
namespace {
std::atomic<uint32_t> g_next_number{0};
pthread_key_t g_exit_key;
std::atomic<int> g_registry_ready{0};  // 0 no, 1 being set up, 2 yes

}  // namespace

// A thread's end, for the one join that may come. Not kept at the thread's
// pthread_t: glibc hands a joined or detached thread's descriptor (and so
// its pthread_t) to a later thread, possibly before the joiner's acquire
// runs, and the later thread must neither wipe nor inherit this clock.
//
// Life of a record (fields under g_exit_mu):
//   made     by pthread_create, unless the thread is created detached, and
//            handed to the thread (a thread registered without it, such as
//            the main thread, makes its own);
//   published under its pthread_t by the creator or the thread, whichever
//            comes first (PublishExitRecord);
//   claimed  by a join before the real join runs (one join per thread, as
//            POSIX says; tryjoin and timedjoin give the claim back when the
//            thread is not done), so a later thread with the same pthread_t
//            never finds it;
//   exited   set at the thread's exit, after its clock went in;
//   freed    by the join that succeeded (after its acquire), or by whichever
//            of pthread_detach and the exit comes second.
struct ExitRecord {
  SyncVar clock;  // first: a SyncVar is one aligned cache line
  pthread_t thread;
  bool published, claimed, exited, detached;
  ExitRecord *next;
};

namespace {

SpinLock g_exit_mu;
constexpr uint32_t kExitBuckets = 256;
ExitRecord *g_exit_records[kExitBuckets];

ExitRecord **ExitBucket(pthread_t t) {
  return &g_exit_records[(uintptr_t(t) >> 12) % kExitBuckets];
}

ExitRecord *AllocExitRecord() {
  ExitRecord *rec = static_cast<ExitRecord *>(ArenaAlloc(sizeof(ExitRecord)));
  new (&rec->clock) SyncVar();
  return rec;
}

// Makes the record findable by `t`. Both the creator (once pthread_create
// returned the pthread_t) and the thread itself (at its start) call this,
// and the first does it: a join may come from a thread that learned the
// pthread_t from either.
void PublishExitRecord(ExitRecord *rec, pthread_t t) {
  g_exit_mu.Lock();
  if (!rec->published) {
    rec->published = true;
    rec->thread = t;
    rec->next = *ExitBucket(t);
    *ExitBucket(t) = rec;
  }
  g_exit_mu.Unlock();
}

bool FindExitRecord(pthread_t t) {
  g_exit_mu.Lock();
  ExitRecord *rec = *ExitBucket(t);
  while (rec && rec->thread != t) rec = rec->next;
  g_exit_mu.Unlock();
  return rec != nullptr;
}

// Under g_exit_mu (or never published).
void FreeExitRecord(ExitRecord *rec) {
  for (ExitRecord **p = ExitBucket(rec->thread); rec->published && *p; p = &(*p)->next)
    if (*p == rec) {
      *p = rec->next;
      break;
    }
  rec->clock.vc.Free();
  ArenaFree(rec, sizeof(ExitRecord));
}

// The record of `t` no join has claimed, claimed now; null if none.
ExitRecord *ClaimExitRecord(pthread_t t) {
  g_exit_mu.Lock();
  ExitRecord *rec = *ExitBucket(t);
  while (rec && (rec->thread != t || rec->claimed || rec->detached)) rec = rec->next;
  if (rec) rec->claimed = true;
  g_exit_mu.Unlock();
  return rec;
}

// After the real join: `joined`, the thread is gone and everything it did
// happens before now; otherwise the claim is given back.
void FinishJoin(ExitRecord *rec, bool joined) {
  if (!rec) return;
  if (joined && g_detect_hb) {
    ThreadState *thr = CurrentThread();
    if (!thr->ignore_sync) AcquireSyncVar(thr, &rec->clock);
  }
  g_exit_mu.Lock();
  if (joined) FreeExitRecord(rec);
  else rec->claimed = false;
  g_exit_mu.Unlock();
}

// Blocks every signal but those a fault raises, which must stay deliverable.
void BlockAsyncSignals(sigset_t *old) {
  sigset_t all;
  sigfillset(&all);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS}) sigdelset(&all, sig);
  pthread_sigmask(SIG_SETMASK, &all, old);
}

// The thread exits. glibc runs key destructors in rounds, in key order, and
// ours was created first (at start-up): on its own it would run before the
// program's destructors, which may still use maps. So it re-arms itself for
// every round but the last, and retires the thread only then.
void OnThreadExit(void *arg) {
  ThreadState *thr = static_cast<ThreadState *>(arg);
  if (++thr->exit_rounds < PTHREAD_DESTRUCTOR_ITERATIONS) {
    pthread_setspecific(g_exit_key, thr);
    return;
  }
  // From here on a signal handler that touched a map would run on a retired
  // clock, or (after t_thread is cleared) as a new thread with no creator
  // and a slot never given back: the exiting thread takes no more signals
  // (process-directed ones go to another thread).
  BlockAsyncSignals(nullptr);
  // Regions left open (pthread_exit from a loop body) end with the thread.
  CloseAbandonedRegions(thr, 0, 0);
  thr->regions.ReleaseMemory();
  // Its stack (and static TLS) are dead, and glibc hands them to a later
  // thread: maps and atomics that lived there and went unseen (destroyed by
  // code built without the plugin) must not be inherited. Before the exit
  // release, whose clock may live in the same memory (the descriptor).
  if (thr->stack_hi > thr->stack_lo)
    ResetFreedRange(reinterpret_cast<void *>(thr->stack_lo), thr->stack_hi - thr->stack_lo);
  // Everything this thread did happens before a join of it. No tick: the
  // thread makes no access after this, and the slot's last clock must be
  // the one the joiner acquires, so that the joiner knows the slot entirely
  // and its next thread can take the slot over (NewThreadState). With a
  // tick here no slot was ever reused, and every clock grew with every
  // thread ever created.
  if (ExitRecord *rec = thr->exit_record) {
    g_exit_mu.Lock();
    // A detached thread's end is released to no one: its clock stays
    // unpublished, and a creator that learned its last release (a flag it
    // set) may hand its slot on. A join may still come otherwise, and
    // pthread_detach waits for the lock to see `exited`.
    if (g_detect_hb && !rec->detached) {
      ReleaseClockInto(thr->vc, &rec->clock);
      NotePublished(thr);
    }
    rec->exited = true;
    if (rec->detached) FreeExitRecord(rec);
    g_exit_mu.Unlock();
    thr->exit_record = nullptr;
  }
  RetireThreadClock(thr);
  g_registry_mu.Lock();
  g_slot_live[thr->slot].store(false, std::memory_order_release);
  g_free_slots[g_free_count++] = thr->slot;
  g_registry_mu.Unlock();
  t_thread = nullptr;
}

// fork(): the global locks are taken before, in this order, and released in
// both processes after, so neither process can find one held by a thread
// that is gone (ThreadSanitizer's ForkBefore/ForkAfter do the same). Per-object
// locks are taken over by generation in the child (SpinLock in mg_arena.h).
void BeforeFork() {
  g_report_lock.Lock();
  g_registry_mu.Lock();
  g_arena_lock.Lock();
}

void AfterForkInParent() {
  g_arena_lock.Unlock();
  g_registry_mu.Unlock();
  g_report_lock.Unlock();
}

// In a child of fork() only the forking thread exists: every other slot is
// dead, their regions and revocations are forgotten, and everything they
// did happened before what the child does next.
void AfterForkInChild() {
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
  g_arena_lock.ResetAfterFork();
  g_registry_mu.ResetAfterFork();
  g_report_lock.ResetAfterFork();
  ThreadState *me = t_thread;
  if (me) me->os_tid = pid_t(syscall(SYS_gettid));
  OwnershipAfterForkInChild(me);
  StatsAfterForkInChild();
  if (me && g_detect_hb) HbAfterForkInChild(me);
  g_free_count = 0;
  uint32_t limit = g_slot_limit.load(std::memory_order_relaxed);
  for (uint32_t slot = 0; slot < limit; slot++) {
    if (me && slot == me->slot) continue;
    g_slot_live[slot].store(false, std::memory_order_relaxed);
    g_free_slots[g_free_count++] = slot;
  }
  // A handshake another thread had started with this one died with it.
  if (me) me->stack_request.store(0, std::memory_order_relaxed);
}

void InitRegistry() {
  size_t bytes = sizeof(ThreadState) * kMaxThreads;
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) Die("mapguard: error: cannot map %zu bytes for thread state", bytes);
  g_pool = static_cast<ThreadState *>(p);
  pthread_key_create(&g_exit_key, OnThreadExit);
  pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild);
}

// Set by the pthread_create interceptor for the child to pick up.
struct StartInfo {
  void *(*fn)(void *);
  void *arg;
  uint32_t parent_number;
  uint32_t number;  // assigned by the parent, so numbers follow creation order
  StackTrace creation;
  VectorClock parent_clock;  // what the creator knew: happens before the child
  sigset_t start_mask;       // the creator's signal mask, for the child's start routine
  ExitRecord *exit_record;   // for a join; null if created detached
};

ThreadState *NewThreadState(StartInfo *info) {
  int ready = 0;
  if (g_registry_ready.compare_exchange_strong(ready, 1)) {
    InitRegistry();
    g_registry_ready.store(2);
  }
  while (g_registry_ready.load() != 2) {
  }
  uint32_t slot;
  g_registry_mu.Lock();
  // Reuse the slot of a finished thread only once 64 slots exist: with few
  // threads every thread keeps a slot (and clock entry) of its own. And only
  // a slot whose earlier owners the creator already knows completely (its
  // clock covers the slot's last clock: typically it joined them): one clock
  // entry per slot cannot keep two owners' histories apart, so a new owner
  // must start with everything the old ones did behind it. Otherwise the
  // new thread would see an earlier owner's lock-protected access as
  // unordered once a synchronization object also carried its own clock
  // (seen in zeromq's inproc tests). With detect=overlap there are no clocks.
  slot = kMaxThreads;
  if (g_free_count > 0 && g_slot_limit.load(std::memory_order_relaxed) >= kSlotsBeforeReuse) {
    for (uint32_t i = g_free_count; i-- > 0;) {
      uint32_t candidate = g_free_slots[i];
      // A slot whose owners used up half its clock is not handed on: the
      // clock runs through every owner of a slot, and one that ran out
      // would turn happens-before off for the whole process (TickClock).
      bool known = !g_detect_hb ||
                   (info && info->parent_clock.Get(candidate) >= SlotLastClock(candidate) &&
                    SlotLastClock(candidate) < (1u << 31));
      if (known) {
        slot = candidate;
        g_free_slots[i] = g_free_slots[--g_free_count];
        break;
      }
    }
  }
  if (slot == kMaxThreads) {
    slot = g_slot_limit.load(std::memory_order_relaxed);
    if (slot >= kMaxThreads) {
      if (g_free_count == 0) {
        g_registry_mu.Unlock();
        Die("mapguard: error: more than %u live threads", kMaxThreads);
      }
      // Every slot used once and none known: reuse anyway (a race with a
      // thread that exited unjoined, long ago, may be misjudged).
      slot = g_free_slots[--g_free_count];
    } else {
      g_slot_limit.store(slot + 1, std::memory_order_release);
    }
  }
  g_registry_mu.Unlock();
  ThreadState *thr = &g_pool[slot];
  thr->slot = slot;
  thr->number = info ? info->number : g_next_number.fetch_add(1, std::memory_order_relaxed);
  thr->os_tid = pid_t(syscall(SYS_gettid));
  thr->pthread_self_id = static_cast<unsigned long>(pthread_self());
  // A reused slot: nothing of the previous thread's bookkeeping carries over.
  thr->regions.Clear();
  thr->stack_request.store(0, std::memory_order_relaxed);
  thr->revoking.store(nullptr, std::memory_order_relaxed);
  thr->ignore_sync = 0;
  thr->ignore_reads = thr->ignore_writes = 0;
  thr->exit_rounds = 0;
  thr->clock_exhausted = false;
  thr->usdt_sample_tick = 0;
  // Its cached counters are the previous thread's (ThreadUse is per thread
  // number).
  memset(thr->count_cache, 0, sizeof(thr->count_cache));
  thr->watch_spent_window = 0;
  thr->watch_budget_skipped = nullptr;
  thr->waited_lock = nullptr;
  thr->waited_for = 0;
  thr->last_read_map.store(nullptr, std::memory_order_relaxed);
  thr->last_read_site.store(nullptr, std::memory_order_relaxed);
  thr->exclusive_held = 0;
  thr->lock_state = 0;
  thr->last_read_lock_state = 0;
  for (auto &l : thr->shared_locks) l.store(nullptr, std::memory_order_relaxed);
  thr->shared_locks_untracked = 0;
  thr->shared_locks_held = 0;
  thr->history_size = 0;  // an id is content-addressed, but start clean
  thr->history_id = 0;
  thr->history_busy = 0;
  thr->has_fence_clock = false;
  thr->suspended_iterations = 0;
  thr->fence_read_count = 0;
  thr->fence_read_next = 0;
  thr->waited_lock = nullptr;
  thr->waited_for = 0;
  pthread_attr_t attr;
  thr->stack_lo = thr->stack_hi = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void *addr = nullptr;
    size_t size = 0;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
      thr->stack_lo = reinterpret_cast<uintptr_t>(addr);
      thr->stack_hi = thr->stack_lo + size;
    }
    pthread_attr_destroy(&attr);
  }
  // A record for the join to come, unless the thread was created detached
  // (the main thread gets one too: it is never joined, and costs 128 bytes).
  // A thread that registers again after its exit (a later key destructor
  // touched a map) keeps the record its first exit filled: that clock is
  // what a join must learn.
  if (info) {
    thr->exit_record = info->exit_record;
  } else {
    thr->exit_record = FindExitRecord(pthread_self()) ? nullptr : AllocExitRecord();
  }
  if (thr->exit_record) PublishExitRecord(thr->exit_record, pthread_self());
  if (info) {
    thr->parent_number = info->parent_number;
    thr->creation = info->creation;
    InitThreadClock(thr, &info->parent_clock);
    info->parent_clock.Free();
  } else {
    thr->parent_number = 0;
    thr->creation.size = 0;
    InitThreadClock(thr, nullptr);
  }
  t_thread = thr;
  g_slot_live[slot].store(true, std::memory_order_release);
  pthread_setspecific(g_exit_key, thr);
  return thr;
}


// The child starts with every signal blocked (pthread_create below): a
// handler that touched a map before NewThreadState would run as a thread of
// its own with no creator and no clock, and its reads of maps the creator
// filled would be reported. Its own mask comes back once it is registered.
void *ThreadTrampoline(void *p) {
  StartInfo *info = static_cast<StartInfo *>(p);
  NewThreadState(info);
  void *(*fn)(void *) = info->fn;
  void *arg = info->arg;
  sigset_t mask = info->start_mask;
  munmap(info, sizeof(StartInfo));
  pthread_sigmask(SIG_SETMASK, &mask, nullptr);
  return fn(arg);
}

}  // namespace

ThreadState *CreateThreadState() { return NewThreadState(nullptr); }

ThreadState *ThreadBySlot(uint32_t slot) {
  if (slot >= kMaxThreads || !g_slot_live[slot].load(std::memory_order_acquire)) return nullptr;
  return &g_pool[slot];
}

ThreadState *ThreadStateAt(uint32_t slot) { return &g_pool[slot]; }

uint32_t ThreadSlotLimit() { return g_slot_limit.load(std::memory_order_acquire); }

}  // namespace mapguard

using namespace mapguard;

// Intercepted so every thread knows its creator and creation stack. The
// child's ThreadState is set up before the user's start routine runs.
extern "C" int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                              void *(*start)(void *), void *arg) {
  MG_REAL(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *));
  auto real = real_pthread_create;
  ThreadState *parent = CurrentThread();
  void *mem = mmap(nullptr, sizeof(StartInfo), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return real(thread, attr, start, arg);
  StartInfo *info = static_cast<StartInfo *>(mem);
  info->fn = start;
  info->arg = arg;
  info->parent_number = parent->number;
  info->number = g_next_number.fetch_add(1, std::memory_order_relaxed);
  int detach_state = PTHREAD_CREATE_JOINABLE;
  const bool detached = attr && pthread_attr_getdetachstate(attr, &detach_state) == 0 &&
                        detach_state == PTHREAD_CREATE_DETACHED;
  // Made before the thread exists: it may exit before a join is called, or
  // before this call returns.
  ExitRecord *rec = detached ? nullptr : AllocExitRecord();
  info->exit_record = rec;
  CaptureStack(&info->creation, 1);
  // Everything the creator did so far happens before the new thread starts.
  new (&info->parent_clock) VectorClock();
  info->parent_clock.CopyFrom(parent->vc);
  NotePublished(parent);
  TickClock(parent);
  // The child inherits this mask: no handler runs in it before it is
  // registered (ThreadTrampoline). SIGSEGV and friends stay deliverable.
  sigset_t mine;
  BlockAsyncSignals(&mine);
  info->start_mask = mine;  // the child may free info as soon as it runs
  // A mask set in the attributes (pthread_attr_setsigmask_np) is the child's
  // start mask instead of the creator's: it is what the trampoline restores,
  // and the attribute carries the blocked mask for the call (then its own).
  sigset_t attr_mask, blocked;
  bool attr_has_mask = attr && pthread_attr_getsigmask_np(attr, &attr_mask) == 0;
  if (attr_has_mask) {
    info->start_mask = attr_mask;
    pthread_sigmask(SIG_SETMASK, nullptr, &blocked);
    pthread_attr_setsigmask_np(const_cast<pthread_attr_t *>(attr), &blocked);
  }
  int rc = real(thread, attr, ThreadTrampoline, info);
  if (attr_has_mask) pthread_attr_setsigmask_np(const_cast<pthread_attr_t *>(attr), &attr_mask);
  pthread_sigmask(SIG_SETMASK, &mine, nullptr);
  if (rc != 0) {
    info->parent_clock.Free();
    munmap(info, sizeof(StartInfo));
    if (rec) FreeExitRecord(rec);
    return rc;
  }
  if (rec) PublishExitRecord(rec, *thread);
  return rc;
}

// ---- join and detach: the exit record (above) ----
namespace {
// Every join form: claim the record, join, then acquire it (or give it back).
template <typename Real, typename... Args>
int JoinThrough(Real real, pthread_t th, Args... args) {
  ExitRecord *rec = ClaimExitRecord(th);
  int rc = real(th, args...);
  FinishJoin(rec, rc == 0);
  return rc;
}
}  // namespace
extern "C" int pthread_join(pthread_t th, void **ret) {
  MG_REAL(int, pthread_join, (pthread_t, void **));
  return JoinThrough(real_pthread_join, th, ret);
}
extern "C" int pthread_tryjoin_np(pthread_t th, void **ret) {
  MG_REAL(int, pthread_tryjoin_np, (pthread_t, void **));
  return JoinThrough(real_pthread_tryjoin_np, th, ret);
}
extern "C" int pthread_timedjoin_np(pthread_t th, void **ret, const struct timespec *t) {
  MG_REAL(int, pthread_timedjoin_np, (pthread_t, void **, const struct timespec *));
  return JoinThrough(real_pthread_timedjoin_np, th, ret, t);
}
extern "C" int pthread_clockjoin_np(pthread_t th, void **ret, clockid_t c, const struct timespec *t) {
  MG_REAL(int, pthread_clockjoin_np, (pthread_t, void **, clockid_t, const struct timespec *));
  return JoinThrough(real_pthread_clockjoin_np, th, ret, c, t);
}
// No join will come: the record goes now if the thread is gone, else at its exit.
extern "C" int pthread_detach(pthread_t th) {
  MG_REAL(int, pthread_detach, (pthread_t));
  if (ExitRecord *rec = ClaimExitRecord(th)) {
    g_exit_mu.Lock();
    rec->claimed = false;
    rec->detached = true;
    if (rec->exited) FreeExitRecord(rec);
    g_exit_mu.Unlock();
  }
  return real_pthread_detach(th);
}
