// Synchronization that creates happens-before, seen by intercepting the
// POSIX calls (std::mutex, std::shared_mutex, std::condition_variable,
// std::call_once and std::thread are built on them), plus the entry points
// the plugin calls for atomics and the user annotations.
//
// Rules, as in ThreadSanitizer: a release is recorded before the real
// function runs (unlock, post, signal), an acquire after it returned
// successfully (lock, wait, join). With detect=overlap nothing is recorded.
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <errno.h>
#include <setjmp.h>
#include <threads.h>
#include <time.h>

#include "mapguard/annotations.h"
#include "mg_access.h"
#include "mg_hb.h"
#include "mg_probes.h"
#include "mg_real.h"
#include "mg_stats.h"

using namespace mapguard;

namespace mapguard {
// Locks also bound the iterations of node-based maps (SuspendNodeIterations)
// and tell the check-then-insert hint whether one exclusive lock covered a
// lookup and the insert after it (ThreadState::lock_state).
void LockReleased(bool exclusive) {
  ThreadState *thr = t_thread;
  if (!thr) return;
  if (exclusive) {
    if (thr->exclusive_held > 0) thr->exclusive_held--;
    thr->lock_state = ((thr->lock_state >> 1) + 1) << 1 | (thr->exclusive_held > 0);
  }
  if (thr->regions.Depth() > 0) SuspendNodeIterations(thr);
}
void LockAcquired(bool exclusive) {
  ThreadState *thr = t_thread;
  if (!thr) return;
  if (exclusive) {
    thr->exclusive_held++;
    thr->lock_state |= 1;
  }
  if (MG_UNLIKELY(thr->suspended_iterations > 0)) ResumeNodeIterations(thr);
}
}  // namespace mapguard

namespace {

MG_ALWAYS_INLINE void AcquireIf(bool ok, const void *addr, bool held_exclusively = false) {
  if (!ok || !g_detect_hb) return;
  ThreadState *thr = CurrentThread();
  if (!thr->ignore_sync) Acquire(thr, addr, held_exclusively);
}
MG_ALWAYS_INLINE void ReleaseOn(const void *addr, bool held_exclusively = false) {
  if (!g_detect_hb) return;
  ThreadState *thr = CurrentThread();
  if (!thr->ignore_sync) Release(thr, addr, held_exclusively);
}
// Just after taking, or just before giving up, a lock only one thread can
// hold: the lock orders these SyncVar updates by itself.
MG_ALWAYS_INLINE void AcquireHeld(bool ok, const void *lock) {
  if (!ok) return;
  AcquireIf(ok, lock, true);
  LockAcquired(true);
}
MG_ALWAYS_INLINE void ReleaseHeld(const void *lock) {
  LockReleased(true);
  ReleaseOn(lock, true);
}

// print_stats's and the sidecar's contention count (mg_stats.cpp, the
// lock_contended probe): a lock that would have to wait, seen by trying it
// first. Only when statistics are on or the probe is traced: the try
// costs an extra atomic. The result is the one the plain call would give:
// a try that takes the lock (0, or EOWNERDEAD for a robust mutex) is the
// acquisition; EBUSY is followed by the real call; any other error
// (EINVAL, EAGAIN for a recursive mutex at its limit, EDEADLK) is what the
// real call would return too.
MG_ALWAYS_INLINE bool CountingWaits() { return Counting() || MG_PROBE_ACTIVE(lock_contended); }
MG_ALWAYS_INLINE void NoteWaited(const void *addr) {
  ThreadState *thr = CurrentThread();
  thr->waited_lock = addr;
  thr->waited_for = 3;
}
template <class Lock, class Try>
MG_ALWAYS_INLINE int LockCountingWaits(const void *addr, Lock lock, Try try_lock) {
  if (MG_LIKELY(!CountingWaits())) return lock();
  int rc = try_lock();
  if (rc != EBUSY) return rc;
  rc = lock();
  if (rc == 0) NoteWaited(addr);
  return rc;
}
// The lock is given up: a wait for it no longer belongs to an access.
MG_ALWAYS_INLINE void ForgetWait(const void *addr) {
  if (MG_LIKELY(!CountingWaits())) return;
  ThreadState *thr = CurrentThread();
  if (thr->waited_lock == addr) thr->waited_lock = nullptr;
}

}  // namespace

extern "C" {

// ---- mutexes ----
int pthread_mutex_lock(pthread_mutex_t *m) {
  MG_REAL(int, pthread_mutex_lock, (pthread_mutex_t *));
  MG_REAL(int, pthread_mutex_trylock, (pthread_mutex_t *));
  int rc;
  if (MG_UNLIKELY(CountingWaits()) && m->__data.__kind == 0) {
    // A default mutex (std::mutex's; glibc's __kind 0, no flags) is held
    // exactly when its word is nonzero: whether this lock waits is one load
    // of it, where a try would be a failed compare-and-swap on a contended
    // line (as racy a guess either way: the holder may leave meanwhile).
    const bool held = __atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) != 0;
    rc = real_pthread_mutex_lock(m);
    if (rc == 0 && held) NoteWaited(m);
  } else {
    rc = LockCountingWaits(m, [&] { return real_pthread_mutex_lock(m); },
                           [&] { return real_pthread_mutex_trylock(m); });
  }
  AcquireHeld(rc == 0, m);
  return rc;
}
int pthread_mutex_trylock(pthread_mutex_t *m) {
  MG_REAL(int, pthread_mutex_trylock, (pthread_mutex_t *));
  int rc = real_pthread_mutex_trylock(m);
  AcquireHeld(rc == 0, m);
  return rc;
}
int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *t) {
  MG_REAL(int, pthread_mutex_timedlock, (pthread_mutex_t *, const struct timespec *));
  int rc = real_pthread_mutex_timedlock(m, t);
  AcquireHeld(rc == 0, m);
  return rc;
}
int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t c, const struct timespec *t) {
  MG_REAL(int, pthread_mutex_clocklock, (pthread_mutex_t *, clockid_t, const struct timespec *));
  int rc = real_pthread_mutex_clocklock(m, c, t);
  AcquireHeld(rc == 0, m);
  return rc;
}
int pthread_mutex_unlock(pthread_mutex_t *m) {
  MG_REAL(int, pthread_mutex_unlock, (pthread_mutex_t *));
  ForgetWait(m);
  ReleaseHeld(m);
  return real_pthread_mutex_unlock(m);
}

// ---- reader-writer locks ----
// Remembers the rwlocks a thread holds for reading (for a report hint).
void NoteSharedLock(const void *l, bool held) {
  ThreadState *thr = CurrentThread();
  for (auto &slot : thr->shared_locks) {
    const void *cur = slot.load(std::memory_order_relaxed);
    if (held ? cur == nullptr : cur == l) {
      slot.store(held ? l : nullptr, std::memory_order_relaxed);
      thr->shared_locks_held += held ? 1 : -1;
      return;
    }
  }
  if (held) {
    thr->shared_locks_untracked++;
    thr->shared_locks_held++;
  } else if (thr->shared_locks_untracked > 0) {
    thr->shared_locks_untracked--;
    thr->shared_locks_held--;
  }
}

// Whether this thread may hold `l` for reading (when unsure: yes).
bool HoldsForReading(const void *l) {
  ThreadState *thr = CurrentThread();
  if (thr->shared_locks_untracked > 0) return true;
  for (const auto &slot : thr->shared_locks)
    if (slot.load(std::memory_order_relaxed) == l) return true;
  return false;
}

// C++ ([thread.sharedmutex.requirements]): unlock_shared synchronizes with a
// later exclusive lock, not with a later lock_shared; readers are not ordered
// with each other. So a rwlock has two clocks: writers release into the lock
// itself, readers into a second clock one granule inside the lock object
// (ReaderClock). A writer acquires both, a reader only the writers'.
const void *ReaderClock(const void *l) { return static_cast<const char *>(l) + 8; }

// The edges of taking a reader-writer lock `l` (shared: for reading), and
// of giving it up. `unsure_reader`: a reader's unlock whose thread holds more
// read locks than it tracks, which may be a writer's. Shared by the pthread
// interceptors and the dynamic annotations.
void RwLockAcquired(const void *l, bool shared) {
  AcquireIf(true, l, !shared);
  if (!shared) AcquireIf(true, ReaderClock(l));
  if (shared) NoteSharedLock(l, true);
  LockAcquired(!shared);
}
void RwLockReleased(const void *l, bool reader, bool unsure_reader) {
  LockReleased(!reader);
  if (reader) {
    // A reader releases into the readers' clock only (concurrently with
    // other readers). If we are not sure this thread holds it for reading,
    // also into the writers' clock: an edge too many can hide a race, a
    // missing one would invent one.
    ReleaseOn(ReaderClock(l));
    if (unsure_reader) ReleaseOn(l);
  } else {
    ReleaseOn(l, true);  // a writer holds the lock alone
  }
  NoteSharedLock(l, false);
}

#define MG_RWLOCK_ACQUIRE(name, params, args, shared)     \
  int name params {                                      \
    MG_REAL(int, name, params);                          \
    int rc = real_##name args;                           \
    if (rc == 0) RwLockAcquired(l, shared);              \
    return rc;                                           \
  }
// The untimed waits count contention (LockCountingWaits).
#define MG_RWLOCK_ACQUIRE_COUNTED(name, try_name, shared)                      \
  int name(pthread_rwlock_t *l) {                                              \
    MG_REAL(int, name, (pthread_rwlock_t *));                                  \
    MG_REAL(int, try_name, (pthread_rwlock_t *));                              \
    int rc = LockCountingWaits(l, [&] { return real_##name(l); },              \
                               [&] { return real_##try_name(l); });            \
    if (rc == 0) RwLockAcquired(l, shared);                                    \
    return rc;                                                                 \
  }
MG_RWLOCK_ACQUIRE_COUNTED(pthread_rwlock_rdlock, pthread_rwlock_tryrdlock, true)
MG_RWLOCK_ACQUIRE(pthread_rwlock_tryrdlock, (pthread_rwlock_t * l), (l), true)
MG_RWLOCK_ACQUIRE(pthread_rwlock_timedrdlock, (pthread_rwlock_t * l, const struct timespec *t), (l, t), true)
MG_RWLOCK_ACQUIRE(pthread_rwlock_clockrdlock,
                  (pthread_rwlock_t * l, clockid_t c, const struct timespec *t), (l, c, t), true)
MG_RWLOCK_ACQUIRE_COUNTED(pthread_rwlock_wrlock, pthread_rwlock_trywrlock, false)
MG_RWLOCK_ACQUIRE(pthread_rwlock_trywrlock, (pthread_rwlock_t * l), (l), false)
MG_RWLOCK_ACQUIRE(pthread_rwlock_timedwrlock, (pthread_rwlock_t * l, const struct timespec *t), (l, t), false)
MG_RWLOCK_ACQUIRE(pthread_rwlock_clockwrlock,
                  (pthread_rwlock_t * l, clockid_t c, const struct timespec *t), (l, c, t), false)
int pthread_rwlock_unlock(pthread_rwlock_t *l) {
  MG_REAL(int, pthread_rwlock_unlock, (pthread_rwlock_t *));
  ForgetWait(l);
  RwLockReleased(l, HoldsForReading(l), CurrentThread()->shared_locks_untracked > 0);
  return real_pthread_rwlock_unlock(l);
}

// ---- spin locks ----
int pthread_spin_lock(pthread_spinlock_t *l) {
  MG_REAL(int, pthread_spin_lock, (pthread_spinlock_t *));
  int rc = real_pthread_spin_lock(l);
  AcquireHeld(rc == 0, (const void *)(l));
  return rc;
}
int pthread_spin_trylock(pthread_spinlock_t *l) {
  MG_REAL(int, pthread_spin_trylock, (pthread_spinlock_t *));
  int rc = real_pthread_spin_trylock(l);
  AcquireHeld(rc == 0, (const void *)(l));
  return rc;
}
int pthread_spin_unlock(pthread_spinlock_t *l) {
  MG_REAL(int, pthread_spin_unlock, (pthread_spinlock_t *));
  ReleaseHeld((const void *)(l));
  return real_pthread_spin_unlock(l);
}

// ---- condition variables (the GLIBC_2.3.2 versions are the current ones) ----
// A wait gives up the mutex and takes it again: those are its edges. C++
// gives notify_one/notify_all no synchronizes-with edge ([thread.condition]),
// nor does POSIX to signal/broadcast: what a waiter may rely on is what the
// notifier did before unlocking the mutex. So signal and broadcast are not
// intercepted, and a map written after the unlock and before the notify
// races with the woken waiter (tests/e2e/hb/condvar_notify.cpp).
int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) {
  MG_REAL(int, pthread_cond_wait, (pthread_cond_t *, pthread_mutex_t *), "GLIBC_2.3.2");
  ReleaseHeld(m);
  int rc = real_pthread_cond_wait(c, m);
  AcquireHeld(true, m);  // the mutex is held again, whatever rc says
  return rc;
}
int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t) {
  MG_REAL(int, pthread_cond_timedwait, (pthread_cond_t *, pthread_mutex_t *, const struct timespec *),
          "GLIBC_2.3.2");
  ReleaseHeld(m);
  int rc = real_pthread_cond_timedwait(c, m, t);
  AcquireHeld(true, m);
  return rc;
}
int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk,
                           const struct timespec *t) {
  MG_REAL(int, pthread_cond_clockwait,
          (pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *));
  ReleaseHeld(m);
  int rc = real_pthread_cond_clockwait(c, m, clk, t);
  AcquireHeld(true, m);
  return rc;
}


// ---- barriers, semaphores, once ----
// A barrier orders each round's arrivals before that round's returns, and
// nothing of a later round: a thread still on its way out of round k must
// not learn what a faster thread did after it (its round k+1 work, released
// by its next arrival). So each round has its own clock, at an address
// inside the barrier object chosen by the round's number; kRoundClocks of
// them are reused in turn (round k + kRoundClocks cannot begin before every
// thread of round k is out).
//
// Rounds are counted here, in the order threads enter this interceptor,
// from the count pthread_barrier_init was given. That order splits into
// glibc's rounds as long as no more than `count` threads are between their
// arrival and their return at once (a round not yet complete has all its
// members in flight, so a thread counted into the next round entered after
// it completed). More threads than the count use the barrier in turns only
// in unusual programs; the first time it is seen, the barrier goes back to
// one clock for every round (an edge too many can hide a race, a missing
// one would invent one), and so does a barrier whose init was not seen.
namespace {
constexpr uint32_t kRoundClocks = 4;
struct BarrierRounds {
  const void *barrier;
  uint64_t count;
  uint64_t arrivals;  // since init (64 bits: a round never wraps in two)
  uint64_t returns;
  bool one_clock;     // more than `count` threads were in flight at once,
                      // or process-shared (other processes arrive unseen)
  BarrierRounds *next;
};
SpinLock g_barriers_mu;
BarrierRounds *g_barriers;  // a short list: barriers are few and waits are slow

BarrierRounds **FindRounds(const void *b) {
  BarrierRounds **p = &g_barriers;
  while (*p && (*p)->barrier != b) p = &(*p)->next;
  return p;
}
const void *RoundClock(const void *b, uint32_t round) {
  return static_cast<const char *>(b) + 1 + round;  // round < kRoundClocks
}
constexpr uint32_t kEveryRound = ~0u;
// The round of this arrival modulo kRoundClocks, or kEveryRound: every
// clock, the barrier's own included (one clock for every round).
uint32_t ArriveAtBarrier(const void *b) {
  uint32_t round = kEveryRound;
  g_barriers_mu.Lock();
  if (BarrierRounds *r = *FindRounds(b)) {
    if (r->arrivals - r->returns >= r->count) r->one_clock = true;
    if (!r->one_clock && r->count > 0) round = uint32_t((r->arrivals / r->count) % kRoundClocks);
    r->arrivals++;
  }
  g_barriers_mu.Unlock();
  return round;
}
void LeaveBarrier(const void *b) {
  g_barriers_mu.Lock();
  if (BarrierRounds *r = *FindRounds(b)) r->returns++;
  g_barriers_mu.Unlock();
}
}  // namespace
void (*g_barrier_step_hook)();  // tests only: between the wait and the acquire

int pthread_barrier_init(pthread_barrier_t *b, const pthread_barrierattr_t *attr, unsigned count) {
  MG_REAL(int, pthread_barrier_init,
          (pthread_barrier_t *, const pthread_barrierattr_t *, unsigned));
  int rc = real_pthread_barrier_init(b, attr, count);
  if (rc != 0) return rc;
  g_barriers_mu.Lock();
  BarrierRounds **p = FindRounds(b);
  if (!*p) {
    *p = static_cast<BarrierRounds *>(ArenaAlloc(sizeof(BarrierRounds)));
    (*p)->barrier = b;
  }
  int pshared = PTHREAD_PROCESS_PRIVATE;
  if (attr) pthread_barrierattr_getpshared(attr, &pshared);
  (*p)->count = count;
  (*p)->arrivals = (*p)->returns = 0;
  (*p)->one_clock = pshared != PTHREAD_PROCESS_PRIVATE;
  g_barriers_mu.Unlock();
  ResetSync(b);
  for (uint32_t r = 0; r < kRoundClocks; r++) ResetSync(RoundClock(b, r));
  return rc;
}
int pthread_barrier_destroy(pthread_barrier_t *b) {
  MG_REAL(int, pthread_barrier_destroy, (pthread_barrier_t *));
  int rc = real_pthread_barrier_destroy(b);
  if (rc != 0) return rc;
  g_barriers_mu.Lock();
  BarrierRounds **p = FindRounds(b);
  BarrierRounds *gone = *p;
  if (gone) *p = gone->next;
  g_barriers_mu.Unlock();
  if (gone) ArenaFree(gone, sizeof(BarrierRounds));
  return rc;
}
int pthread_barrier_wait(pthread_barrier_t *b) {
  MG_REAL(int, pthread_barrier_wait, (pthread_barrier_t *));
  if (!g_detect_hb) return real_pthread_barrier_wait(b);
  const uint32_t round = ArriveAtBarrier(b);
  // This round's clock, or (one clock for every round) all of them. Pinned
  // for the wait: the serial thread may destroy and free the barrier as soon
  // as every thread is out of glibc's wait, before this one's acquire.
  const void *clocks[kRoundClocks + 1];
  uint32_t n = 0;
  if (round != kEveryRound) {
    clocks[n++] = RoundClock(b, round);
  } else {
    clocks[n++] = b;
    for (uint32_t r = 0; r < kRoundClocks; r++) clocks[n++] = RoundClock(b, r);
  }
  ThreadState *thr = HbThread();
  void *pins[kRoundClocks + 1];
  for (uint32_t i = 0; i < n; i++) {
    pins[i] = PinSync(thr, clocks[i]);
    if (thr) Release(thr, clocks[i]);
  }
  int rc = real_pthread_barrier_wait(b);
  if (MG_UNLIKELY(g_barrier_step_hook)) g_barrier_step_hook();
  const bool passed = rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD;
  for (uint32_t i = 0; i < n; i++) AcquirePinned(thr, pins[i], passed && thr && !thr->ignore_sync);
  LeaveBarrier(b);
  return rc;
}
int sem_post(sem_t *s) {
  MG_REAL(int, sem_post, (sem_t *));
  ReleaseOn(s);
  return real_sem_post(s);
}
int sem_wait(sem_t *s) {
  MG_REAL(int, sem_wait, (sem_t *));
  int rc = real_sem_wait(s);
  AcquireIf(rc == 0, s);
  return rc;
}
int sem_trywait(sem_t *s) {
  MG_REAL(int, sem_trywait, (sem_t *));
  int rc = real_sem_trywait(s);
  AcquireIf(rc == 0, s);
  return rc;
}
int sem_timedwait(sem_t *s, const struct timespec *t) {
  MG_REAL(int, sem_timedwait, (sem_t *, const struct timespec *));
  int rc = real_sem_timedwait(s, t);
  AcquireIf(rc == 0, s);
  return rc;
}
int sem_clockwait(sem_t *s, clockid_t c, const struct timespec *t) {
  MG_REAL(int, sem_clockwait, (sem_t *, clockid_t, const struct timespec *));
  int rc = real_sem_clockwait(s, c, t);
  AcquireIf(rc == 0, s);
  return rc;
}

// pthread_once's routine takes no argument, so the once-control travels to
// the trampoline in a thread-local (the routine runs on the calling thread).
static thread_local pthread_once_t *t_once_control;
static thread_local void (*t_once_routine)(void);
static void OnceTrampoline() {
  pthread_once_t *control = t_once_control;
  void (*routine)(void) = t_once_routine;
  routine();
  ReleaseOn(control);  // the initialization happens before every return
}
int pthread_once(pthread_once_t *control, void (*routine)(void)) {
  MG_REAL(int, pthread_once, (pthread_once_t *, void (*)(void)));
  pthread_once_t *saved_control = t_once_control;
  void (*saved_routine)(void) = t_once_routine;
  t_once_control = control;
  t_once_routine = routine;
  int rc = real_pthread_once(control, OnceTrampoline);
  t_once_control = saved_control;
  t_once_routine = saved_routine;
  AcquireIf(rc == 0, control);
  return rc;
}

// ---- function-local statics (magic statics) ----
// The initializing thread's __cxa_guard_release happens before every later
// __cxa_guard_acquire that returns 0 and before every inline fast-path check
// of the guard byte (an acquire load, which the plugin instruments as an
// acquire on the guard's address).
int __cxa_guard_acquire(uint64_t *g) {
  MG_REAL(int, __cxa_guard_acquire, (uint64_t *));
  int rc = real___cxa_guard_acquire(g);
  AcquireIf(rc == 0, g);
  return rc;
}
void __cxa_guard_release(uint64_t *g) {
  MG_REAL(void, __cxa_guard_release, (uint64_t *));
  ReleaseOn(g);
  real___cxa_guard_release(g);
}

// ---- threads: creation, join and detach are in mg_thread.cpp ----

// ---- C11 threads (<threads.h>) ----
// glibc implements them on internal pthread entry points the interceptors
// above never see, so each is wrapped here: threads are created through the
// intercepted pthread_create (creator, creation stack, happens-before), and
// mutexes, condition variables and call_once record the same edges as their
// POSIX twins.
struct C11Start {
  int (*fn)(void *);
  void *arg;
};
static void *C11Trampoline(void *p) {
  C11Start start = *static_cast<C11Start *>(p);
  ArenaFree(p, sizeof(C11Start));
  return reinterpret_cast<void *>(intptr_t(start.fn(start.arg)));
}
MG_REPLACES(int, thrd_create, (thrd_t *, thrd_start_t, void *))
MG_REPLACES(int, thrd_join, (thrd_t, int *))
int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg) {
  C11Start *start = static_cast<C11Start *>(ArenaAlloc(sizeof(C11Start)));
  *start = {fn, arg};
  pthread_t t;
  int rc = pthread_create(&t, nullptr, C11Trampoline, start);
  if (rc != 0) {
    ArenaFree(start, sizeof(C11Start));
    return rc == ENOMEM || rc == EAGAIN ? thrd_nomem : thrd_error;
  }
  *thr = thrd_t(t);
  return thrd_success;
}
int thrd_join(thrd_t thr, int *res) {
  void *ret = nullptr;
  if (pthread_join(pthread_t(thr), &ret) != 0) return thrd_error;
  if (res) *res = int(intptr_t(ret));
  return thrd_success;
}
int mtx_lock(mtx_t *m) {
  MG_REAL(int, mtx_lock, (mtx_t *));
  int rc = real_mtx_lock(m);
  AcquireHeld(rc == thrd_success, m);
  return rc;
}
int mtx_trylock(mtx_t *m) {
  MG_REAL(int, mtx_trylock, (mtx_t *));
  int rc = real_mtx_trylock(m);
  AcquireHeld(rc == thrd_success, m);
  return rc;
}
int mtx_timedlock(mtx_t *__restrict m, const struct timespec *__restrict t) {
  MG_REAL(int, mtx_timedlock, (mtx_t *, const struct timespec *));
  int rc = real_mtx_timedlock(m, t);
  AcquireHeld(rc == thrd_success, m);
  return rc;
}
int mtx_unlock(mtx_t *m) {
  MG_REAL(int, mtx_unlock, (mtx_t *));
  ReleaseHeld(m);
  return real_mtx_unlock(m);
}
int cnd_wait(cnd_t *c, mtx_t *m) {
  MG_REAL(int, cnd_wait, (cnd_t *, mtx_t *));
  ReleaseHeld(m);
  int rc = real_cnd_wait(c, m);
  AcquireHeld(true, m);
  return rc;
}
int cnd_timedwait(cnd_t *__restrict c, mtx_t *__restrict m, const struct timespec *__restrict t) {
  MG_REAL(int, cnd_timedwait, (cnd_t *, mtx_t *, const struct timespec *));
  ReleaseHeld(m);
  int rc = real_cnd_timedwait(c, m, t);
  AcquireHeld(true, m);
  return rc;
}
static thread_local once_flag *t_c11_once;
static thread_local void (*t_c11_routine)(void);
static void C11OnceTrampoline() {
  once_flag *flag = t_c11_once;
  void (*routine)(void) = t_c11_routine;
  routine();
  ReleaseOn(flag);
}
void call_once(once_flag *flag, void (*routine)(void)) {
  MG_REAL(void, call_once, (once_flag *, void (*)(void)));
  once_flag *saved_flag = t_c11_once;
  void (*saved_routine)(void) = t_c11_routine;
  t_c11_once = flag;
  t_c11_routine = routine;
  real_call_once(flag, C11OnceTrampoline);
  t_c11_once = saved_flag;
  t_c11_routine = saved_routine;
  AcquireIf(true, flag);
}

// ---- non-local jumps ----
// A longjmp out of a map call or a loop body abandons every region opened
// since the matching setjmp: they end at the longjmp, so a later access,
// properly ordered, is not reported against a region that no longer exists.
// setjmp cannot be wrapped by a C function (it returns twice into its
// caller's frame), so small assembly stubs record the thread's region depth
// per jmp_buf and jump on to the real function. A longjmp to a jmp_buf not
// recorded falls back to the target's stack pointer (glibc x86-64 keeps it
// in __jmpbuf[6], mangled with the thread's pointer guard: rotate right by
// 17, then xor) and ends the regions opened by frames below it.
}  // extern "C"

namespace {

struct JumpTarget {
  const void *env;
  int depth;
};
constexpr int kJumpTargets = 16;
MG_TLS thread_local JumpTarget t_jump_targets[kJumpTargets];
MG_TLS thread_local unsigned t_jump_next;

void CloseRegionsAbove(const void *env) {
  ThreadState *thr = t_thread;
  if (!thr || thr->regions.Depth() == 0) return;
  for (const JumpTarget &t : t_jump_targets) {
    if (t.env != env) continue;
    CloseAbandonedRegions(thr, 0, t.depth);
    return;
  }
  uintptr_t mangled = static_cast<const uintptr_t *>(env)[6];
  uintptr_t guard;
  __asm__("mov %%fs:0x30, %0" : "=r"(guard));
  uintptr_t sp = ((mangled >> 17) | (mangled << 47)) ^ guard;
  // A target on another stack (sigaltstack, a coroutine's): leave the regions.
  if (sp < thr->stack_lo || sp > thr->stack_hi) return;
  CloseAbandonedRegions(thr, sp, 0);
}

}  // namespace

// Called by the stubs below: remembers the depth for `env`, returns the real
// function to jump to.
extern "C" __attribute__((used, visibility("hidden"))) void *__mapguard_on_setjmp(const void *env,
                                                                               int which) {
#ifdef MG_STATIC_RUNTIME
  // The stubs' own names become __wrap_* in the archive (mg_real.h).
  MG_REAL(int, _setjmp, (struct __jmp_buf_tag *));
  MG_REAL(int, setjmp, (struct __jmp_buf_tag *));
  MG_REAL(int, __sigsetjmp, (struct __jmp_buf_tag *, int));
  void *const real[] = {reinterpret_cast<void *>(real__setjmp), reinterpret_cast<void *>(real_setjmp),
                        reinterpret_cast<void *>(real___sigsetjmp)};
  void *fn = real[which];
#else
  static const char *const kNames[] = {"_setjmp", "setjmp", "__sigsetjmp"};
  static std::atomic<void *> real[3];
  void *fn = real[which].load(std::memory_order_relaxed);
  if (!fn) {
    fn = dlsym(RTLD_NEXT, kNames[which]);
    if (!fn) Die("mapguard: error: cannot find the real %s", kNames[which]);
    real[which].store(fn, std::memory_order_relaxed);
  }
#endif
  if (ThreadState *thr = t_thread) {
    int depth = thr->regions.Depth();
    JumpTarget *slot = nullptr;
    for (JumpTarget &t : t_jump_targets)
      if (t.env == env) slot = &t;
    if (!slot) slot = &t_jump_targets[t_jump_next++ % kJumpTargets];
    *slot = {env, depth};
  }
  return fn;
}

// Each stub keeps the argument registers, calls __mapguard_on_setjmp with the
// stack aligned, and tail-jumps to the real function with the caller's
// return address still on top of the stack.
#define MG_SETJMP_STUB(name, which)                          \
  __asm__(".text\n"                                          \
          ".globl " #name "\n"                               \
          ".type " #name ", @function\n" #name ":\n"          \
          "  push %rdi\n"                                    \
          "  push %rsi\n"                                    \
          "  sub $8, %rsp\n"                                 \
          "  mov $" #which ", %esi\n"                        \
          "  call __mapguard_on_setjmp\n"                    \
          "  add $8, %rsp\n"                                 \
          "  pop %rsi\n"                                     \
          "  pop %rdi\n"                                     \
          "  jmp *%rax\n"                                    \
          ".size " #name ", .-" #name "\n");
MG_SETJMP_STUB(_setjmp, 0)
MG_SETJMP_STUB(setjmp, 1)
MG_SETJMP_STUB(__sigsetjmp, 2)

extern "C" {

#define MG_LONGJMP(name)                                        \
  void name(struct __jmp_buf_tag *env, int val) {               \
    MG_REAL(void, name, (struct __jmp_buf_tag *, int));         \
    CloseRegionsAbove(env);                                     \
    real_##name(env, val);                                      \
    __builtin_unreachable();                                    \
  }
MG_LONGJMP(longjmp)
MG_LONGJMP(_longjmp)
MG_LONGJMP(siglongjmp)
MG_LONGJMP(__longjmp_chk)

// ---- start-up check: are these interceptors the ones the program calls? ----
}  // extern "C"

#ifdef MG_STATIC_RUNTIME
// The linker's --wrap routed every call; there is no symbol lookup to lose.
namespace mapguard {
bool InterceptorsActive() { return true; }
}  // namespace mapguard
#else
// A hidden alias binds to this library's own definition, whatever the
// process's symbol lookup would pick.
extern "C" __attribute__((visibility("hidden"), alias("pthread_mutex_lock"))) int
mg_own_pthread_mutex_lock(pthread_mutex_t *m);

namespace mapguard {
bool InterceptorsActive() {
  void *resolved = dlsym(RTLD_DEFAULT, "pthread_mutex_lock");
  return resolved == reinterpret_cast<void *>(&mg_own_pthread_mutex_lock);
}
}  // namespace mapguard
#endif

extern "C" {

// ---- called by instrumented code ----
void __mapguard_atomic_acquire(const void *addr) { AcquireIf(true, addr); }
void __mapguard_atomic_release(const void *addr) { ReleaseOn(addr); }
// [atomics.fences]: a release fence F followed by an atomic write W (any
// order) synchronizes with an acquire operation (or an acquire fence after an
// atomic read) that reads what W wrote. So F remembers the thread's clock;
// every later atomic write publishes it on its object. An acquire fence
// acquires every object the thread read since its previous acquire fence.
// Fences order nothing by themselves: there is no edge between two fences
// without an atomic object between them.
void __mapguard_fence_release(void) {
  if (!g_detect_hb) return;
  ThreadState *thr = CurrentThread();
  if (thr->ignore_sync) return;
  thr->fence_clock.CopyFrom(thr->vc);
  NotePublished(thr);
  thr->has_fence_clock = true;
  TickClock(thr);
}
void __mapguard_fence_acquire(void) {
  if (!g_detect_hb) return;
  ThreadState *thr = CurrentThread();
  if (thr->ignore_sync) return;
  for (int i = 0; i < thr->fence_read_count; i++) Acquire(thr, thr->fence_reads[i]);
  thr->fence_read_count = 0;
}
void __mapguard_atomic_relaxed_write(const void *addr) {
  if (!g_detect_hb) return;
  ThreadState *thr = CurrentThread();
  if (thr->has_fence_clock && !thr->ignore_sync) ReleaseClock(thr->fence_clock, addr);
}
// Keeps the most recent reads: the read an acquire fence pairs with is
// almost always just before it.
void __mapguard_atomic_relaxed_read(const void *addr) {
  if (!g_detect_hb) return;
  ThreadState *thr = CurrentThread();
  constexpr int kN = ThreadState::kFenceReads;
  if (thr->fence_read_count > 0 && thr->fence_reads[(thr->fence_read_next + kN - 1) % kN] == addr)
    return;
  thr->fence_reads[thr->fence_read_next % kN] = addr;
  thr->fence_read_next = (thr->fence_read_next + 1) % kN;
  if (thr->fence_read_count < kN) thr->fence_read_count++;
}

void __mapguard_happens_before(const void *addr) { ReleaseOn(addr); }
void __mapguard_happens_after(const void *addr) { AcquireIf(true, addr); }
void *__mapguard_sync_wait_begin(const void *addr, int release) {
  ThreadState *thr = HbThread();
  if (!thr) return nullptr;
  void *pin = PinSync(thr, addr);
  if (release) Release(thr, addr);
  return pin;
}
void __mapguard_sync_wait_end(void *pin, int acquired) {
  if (!pin) return;
  ThreadState *thr = CurrentThread();
  AcquirePinned(thr, pin, acquired && !thr->ignore_sync);
}

}  // extern "C"

// ---- dynamic annotations (the API ThreadSanitizer and Helgrind read) ----
// Code written for those tools calls these when built with annotations on
// (Abseil's, Chromium's and valgrind's dynamic_annotations.h); the runtime
// defines them, so such code links and keeps its meaning under mapguard.
// `file` and `line` name the annotation's site; they are not needed here.
// Weak: a program that defines them itself (a dynamic_annotations.c of its
// own, empty when no tool is there) keeps its own, and links with the
// static runtime too.
extern "C" {
__attribute__((weak)) void AnnotateHappensBefore(const char *, int, const volatile void *addr) {
  ReleaseOn(const_cast<const void *>(addr));
}
__attribute__((weak)) void AnnotateHappensAfter(const char *, int, const volatile void *addr) {
  AcquireIf(true, const_cast<const void *>(addr));
}
// A lock the tools cannot see, announced by its owner: as a pthread rwlock
// (a writer acquires the writers' and the readers' clocks, a reader the
// writers'; each releases into its own).
__attribute__((weak)) void AnnotateRWLockCreate(const char *, int, const volatile void *) {}
__attribute__((weak)) void AnnotateRWLockCreateStatic(const char *, int, const volatile void *) {}
__attribute__((weak)) void AnnotateRWLockDestroy(const char *, int, const volatile void *) {}
__attribute__((weak)) void AnnotateRWLockAcquired(const char *, int, const volatile void *lock, long is_w) {
  RwLockAcquired(const_cast<const void *>(lock), is_w == 0);
}
__attribute__((weak)) void AnnotateRWLockReleased(const char *, int, const volatile void *lock, long is_w) {
  RwLockReleased(const_cast<const void *>(lock), is_w == 0, false);
}
// An explicit signal -> wait edge: the annotation says it exists.
__attribute__((weak)) void AnnotateCondVarSignal(const char *, int, const volatile void *cv) {
  ReleaseOn(const_cast<const void *>(cv));
}
__attribute__((weak)) void AnnotateCondVarSignalAll(const char *, int, const volatile void *cv) {
  ReleaseOn(const_cast<const void *>(cv));
}
__attribute__((weak)) void AnnotateCondVarWait(const char *, int, const volatile void *cv, const volatile void *) {
  AcquireIf(true, const_cast<const void *>(cv));
}
// Synchronization inside the bracket creates no happens-before.
__attribute__((weak)) void AnnotateIgnoreSyncBegin(const char *, int) { CurrentThread()->ignore_sync++; }
__attribute__((weak)) void AnnotateIgnoreSyncEnd(const char *, int) {
  ThreadState *thr = CurrentThread();
  if (thr->ignore_sync > 0) thr->ignore_sync--;
}
// Map accesses inside the bracket are not reported (ThreadState::ignore_*).
__attribute__((weak)) void AnnotateIgnoreReadsBegin(const char *, int) { CurrentThread()->ignore_reads++; }
__attribute__((weak)) void AnnotateIgnoreReadsEnd(const char *, int) {
  ThreadState *thr = CurrentThread();
  if (thr->ignore_reads > 0) thr->ignore_reads--;
}
__attribute__((weak)) void AnnotateIgnoreWritesBegin(const char *, int) { CurrentThread()->ignore_writes++; }
__attribute__((weak)) void AnnotateIgnoreWritesEnd(const char *, int) {
  ThreadState *thr = CurrentThread();
  if (thr->ignore_writes > 0) thr->ignore_writes--;
}
// About plain memory, which mapguard does not check: accepted, no effect.
__attribute__((weak)) void AnnotateBenignRace(const char *, int, const volatile void *, const char *) {}
__attribute__((weak)) void AnnotateBenignRaceSized(const char *, int, const volatile void *, long, const char *) {}
__attribute__((weak)) void AnnotateNewMemory(const char *, int, const volatile void *, long) {}
__attribute__((weak)) void AnnotatePublishMemoryRange(const char *, int, const volatile void *, long) {}
__attribute__((weak)) void AnnotateUnpublishMemoryRange(const char *, int, const volatile void *, long) {}
__attribute__((weak)) void AnnotateMutexIsUsedAsCondVar(const char *, int, const volatile void *) {}
__attribute__((weak)) void AnnotateMutexIsNotPHB(const char *, int, const volatile void *) {}
__attribute__((weak)) void AnnotateThreadName(const char *, int, const char *) {}
__attribute__((weak)) void AnnotateEnableRaceDetection(const char *, int, int) {}
__attribute__((weak)) void AnnotateFlushState(const char *, int) {}
__attribute__((weak)) void AnnotateMemoryIsInitialized(const char *, int, const volatile void *, long) {}
__attribute__((weak)) void AnnotateMemoryIsUninitialized(const char *, int, const volatile void *, long) {}
}  // extern "C"
