// mapguard runtime: core state shared by every runtime file.
//
// Ground rules (the runtime's invariants):
//  1. The per-access hot path (mg_access.cpp) takes no lock, allocates
//     nothing and makes no system call. It touches the thread's own
//     ThreadState and the one MapShadow of the map being accessed.
//  2. Everything slow (stack capture, symbolization, formatting, waiting for
//     the other thread) is NOINLINE and lives in mg_report_collect.cpp / mg_stack.cpp.
//  3. Runtime memory comes from mmap, never from the program's heap, so a
//     report can still be written after the racing program corrupted its heap.
//  4. A thread's region stack is written only by that thread (and a revoker's
//     mode change); its invariant is written in mg_region_stack.h.
#ifndef MAPGUARD_RT_H
#define MAPGUARD_RT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <atomic>

#include "mapguard/interface.h"
#include "mg_vector_clock.h"

#define MG_ALWAYS_INLINE inline __attribute__((always_inline))
#define MG_NOINLINE __attribute__((noinline))
#define MG_LIKELY(x) __builtin_expect(!!(x), 1)
#define MG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MG_TLS __attribute__((tls_model("initial-exec")))

#include "mg_region_stack.h"

namespace mapguard {

// ---- Options (declared in mg_flags.inc) ----
struct Flags {
#define MG_FLAG(type, name, def, desc) MG_FLAG_TYPE_##type name;
#define MG_FLAG_TYPE_bool bool
#define MG_FLAG_TYPE_int int
#define MG_FLAG_TYPE_string const char *
#include "mg_flags.inc"
#undef MG_FLAG
};
extern Flags g_flags;
// Exit status for a setup the runtime cannot work with (bad options, loaded
// by dlopen): EX_USAGE, distinct from a report's exitcode.
constexpr int kBadOptionsExit = 64;
void InitFlags();  // defaults, then __mapguard_default_options(), then MAPGUARD_OPTIONS

// ---- Threads ----
constexpr uint32_t kMaxThreads = (1u << 16) - 1;  // live at once (slot ids)
constexpr int kMaxFrames = 128;

struct StackTrace {
  int size = 0;
  uintptr_t pc[kMaxFrames];
};

// One entry of a thread's count cache (mg_stats.h, CountsInline): the
// per-thread counters of a map this thread counts inline.
struct MapStats;
struct ThreadUse;
struct CountCacheEntry {
  void *map;
  MapStats *stats;
  ThreadUse *use;
  uint64_t control;  // the sidecar's control word when filled
  // Accesses left before the runtime looks again: a watched map whose trace
  // budget is spent counts inline for a while (kWatchSpentAccesses) rather
  // than going to the runtime for every access until the next second.
  uint32_t left;
  bool writes;       // writes count inline too (one user so far)
  uint32_t me;       // this thread's number + 1 (MapRecord::last_user)
};
// The words of a map with MG_SITE_HASHTABLE_LAYOUT (libstdc++'s and libc++'s
// hash tables both keep them here): the bucket count after the bucket array,
// the element count after the before-begin node.
MG_ALWAYS_INLINE uint64_t HashtableBucketCount(const void *map) {
  return *reinterpret_cast<const uint64_t *>(static_cast<const char *>(map) + 8);
}
MG_ALWAYS_INLINE uint64_t HashtableSize(const void *map) {
  return *reinterpret_cast<const uint64_t *>(static_cast<const char *>(map) + 24);
}

// CountCacheEntry::map while CountAccess fills the entry: no map's address.
static void *const kCountCacheFilling = reinterpret_cast<void *>(uintptr_t(1));
constexpr uint32_t kWatchSpentAccesses = 1024;
// A cached map goes back to the runtime once in this many accesses, so that
// the changes of hands between readers are seen too (sampled: "switches" is
// a lower bound for maps read side by side, exact around writes).
constexpr uint32_t kCountRecheck = 64;
constexpr int kCountCache = 8;
MG_ALWAYS_INLINE int CountCacheIndex(const void *map) {
  return int((reinterpret_cast<uintptr_t>(map) >> 4) & (kCountCache - 1));
}

// Cache-line aligned: the states of all threads sit side by side in one
// array, and the fields a thread writes on every access (regions, last read)
// must not share a line with the next thread's hot fields.
struct alignas(64) ThreadState {
  uint32_t slot;          // index in the registry; writer ids are slot + 1
  uint32_t number;        // mapguard thread number: T0 is the main thread
  pid_t os_tid;
  uint32_t parent_number; // who created it (meaningless for T0)
  StackTrace creation;    // parent's stack at pthread_create
  // MakeEpoch(slot, vc.Get(slot)): this thread's current epoch, kept with
  // its clock (SyncOwnEpoch) so the access fast path reads one word.
  uint64_t epoch;
  // The map regions this thread is inside (rule 4; mg_region_stack.h).
  RegionStack regions;
  // Report handshake: a reporting thread that is about to stop the process
  // asks this thread, by signal, for its live stack (mg_stack.cpp).
  std::atomic<int> stack_request;  // 0 idle, 1 asked, 2 captured
  StackTrace requested_stack;
  // The words between the interrupted stack pointer and frame pointer: the
  // return address into the innermost frame-pointer function is among them
  // when the thread was interrupted in a library built without frame pointers.
  static constexpr int kLeafWords = 256;
  int requested_nwords;
  uintptr_t requested_words[kLeafWords];
  unsigned long pthread_self_id;
  // Happens-before (detect=hb): what this thread knows happened before now.
  // vc[slot] is this thread's own clock; it ticks at every release.
  VectorClock vc;
  // Non-zero while the runtime itself runs code that takes locks (the
  // unwinder locks a mutex of libgcc's): such locking orders nothing the
  // program did and must not create happens-before.
  int ignore_sync;
  // Inside AnnotateIgnoreReadsBegin/End (WritesBegin/End): this thread's map
  // reads and iterations (writes) are not reported, by it or by a thread
  // that finds it in its region. Written by this thread only.
  int ignore_reads, ignore_writes;
  // Slots are reused, so epochs in this thread's slot below own_start belong
  // to an earlier thread; this thread knows those up to inherited_own (what
  // its creator knew of that slot).
  uint32_t own_start, inherited_own;
  // Whether the current value of this thread's own clock entry has left it
  // (a release, a recorded access, a new thread's or a fence's copy of its
  // clock: NotePublished, mg_hb.h); a tick clears it. One byte, stored whole,
  // so a signal handler's publications and ticks cannot tear it. The slot's
  // last published clock is then vc[slot], or one less (RetireThreadClock).
  volatile bool clock_published;
  uintptr_t stack_lo, stack_hi;  // bounds for frame-pointer walks
  // Reader-writer locks this thread holds in shared (read) mode, for the
  // report hint "operator[] under a reader lock". Written by this thread only.
  static constexpr int kMaxSharedLocks = 8;
  std::atomic<const void *> shared_locks[kMaxSharedLocks];
  int shared_locks_untracked;  // read locks held beyond kMaxSharedLocks
  int shared_locks_held;       // tracked and untracked: one test for Describe
  // The history stack this thread last put in the depot, and its id
  // (StackDepotPutHistory): a thread that records the same stack again (a
  // loop that touches a map after each unlock) compares it instead of
  // hashing and probing the depot. Written by this thread only; history_busy
  // keeps a signal handler's nested record off an update in progress.
  static constexpr int kHistoryFrames = 16;
  int history_size;
  uint32_t history_id;
  volatile int history_busy;
  uintptr_t history_pc[kHistoryFrames];
  uint32_t usdt_sample_tick;  // read regions seen while traced (usdt_read_sample)
  // This thread's latest read region, for the check-then-insert hint: a
  // report about its next write to the same map can say what it looked up.
  // Written by the owner only; read by a reporter while the owner is frozen.
  std::atomic<void *> last_read_map;
  std::atomic<const mg_site *> last_read_site;
  // Exclusive locks this thread holds, and how many it has released: packed
  // as (releases << 1) | (held > 0), so one comparison tells whether one
  // exclusive lock was held from the latest read (last_read_lock_state) to now.
  int exclusive_held;
  uint64_t lock_state;
  uint64_t last_read_lock_state;
  // The map this thread is revoking right now (mg_ownership.cpp), so a fork
  // child can finish a revocation whose revoker does not exist there.
  std::atomic<struct MapShadow *> revoking;
  // pthread key destructor rounds seen at exit (see OnThreadExit).
  int exit_rounds;
  // Where its exit is released for a join (mg_thread.cpp); null if none can come.
  struct ExitRecord *exit_record;
  // The thread's clock ran out (2^32 releases): happens-before is off for it.
  bool clock_exhausted;
  // Fences ([atomics.fences]). fence_clock: the thread's clock at its last
  // release fence, carried by every later atomic write. fence_reads: atomic
  // objects read (not with acquire) since the last acquire fence, which that
  // fence turns into acquires. Only this thread touches them.
  // A lock this thread had to wait for and still holds (print_stats, the
  // lock_contended probe): the first map access under it is given the wait
  // (a wait for a queue's lock, let go before the access, is nobody's).
  // waited_for: bit 0, not yet given to print_stats; bit 1, not yet to the
  // probe. Only this thread touches them.
  const void *waited_lock;
  uint8_t waited_for;
  // Written by this thread only (CountAccess), read by its inlined begins.
  CountCacheEntry count_cache[kCountCache];
  // The second (CLOCK_MONOTONIC_COARSE + 1) whose trace budget this thread
  // found spent (TakeWatchBudget).
  uint64_t watch_spent_window;
  // The watched map whose latest begin found that budget spent (and so fired
  // no probe): CountAccess may then count its accesses inline for a while.
  void *watch_budget_skipped;
  int suspended_iterations;  // regions in kRegionSuspended
  bool has_fence_clock;
  VectorClock fence_clock;
  static constexpr int kFenceReads = 8;
  int fence_read_count;          // valid entries, at most kFenceReads
  unsigned fence_read_next;       // where the next one goes (a ring)
  const void *fence_reads[kFenceReads];
};

// An epoch names one thread's clock value: (slot + 1) << 32 | clock; 0 is none.
MG_ALWAYS_INLINE uint64_t MakeEpoch(uint32_t slot, uint32_t clock) {
  return (uint64_t(slot + 1) << 32) | clock;
}
MG_ALWAYS_INLINE uint32_t EpochSlot(uint64_t e) { return uint32_t(e >> 32) - 1; }
MG_ALWAYS_INLINE uint32_t EpochClock(uint64_t e) { return uint32_t(e); }

// detect=hb (default) or detect=overlap (Go parity only); set by InitFlags.
extern bool g_detect_hb;

ThreadState *CreateThreadState();  // slow path of CurrentThread()
// __thread, not thread_local: no dynamic initialization, so no TLS wrapper
// call on every access.
extern MG_TLS __thread ThreadState *t_thread;

MG_ALWAYS_INLINE ThreadState *CurrentThread() {
  ThreadState *thr = t_thread;
  if (MG_UNLIKELY(!thr)) thr = CreateThreadState();
  return thr;
}
ThreadState *ThreadBySlot(uint32_t slot);  // nullptr if the slot is free
uint32_t ThreadSlotLimit();                // one past the highest slot in use
ThreadState *ThreadStateAt(uint32_t slot); // live or not (slot < ThreadSlotLimit())

// The runtime's global locks, taken around fork() in this order (mg_thread.cpp).
extern SpinLock g_report_lock, g_registry_mu, g_arena_lock;

// ---- Stacks and reports ----
// Captures the calling thread's stack, innermost first, skipping `skip` frames.
MG_NOINLINE void CaptureStack(StackTrace *out, int skip);
// Cheap capture by frame-pointer walk within the thread's stack; stops at
// the first frame without a frame pointer (system libraries).
void CaptureStackFast(ThreadState *thr, StackTrace *out, int max_frames);
// Asks `thr` (another live thread) for its current stack by signal; waits up
// to report_wait_ms. Only for a report that stops the process (a program
// that keeps running is never interrupted). Returns false if it did not answer.
// `thr` must be a thread the caller found live (never null).
bool RequestStackOf(ThreadState *thr, StackTrace *out);

// Sleeps without being a cancellation point (pthread_cancel must never find
// a thread inside the runtime) and without EINTR surprises.
void SleepMicrosNoCancel(long us);
// CLOCK_MONOTONIC in microseconds (clock_gettime is not a cancellation point).
uint64_t MonotonicMicros();

// Whether the program's calls to pthread_mutex_lock and friends reach the
// runtime's interceptors (not when the runtime came in through dlopen).
bool InterceptorsActive();

// Writes `len` bytes to the report stream with write(2), retrying short writes.
void WriteAll(const char *buf, size_t len);
[[noreturn]] void Die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace mapguard

#endif  // MAPGUARD_RT_H
