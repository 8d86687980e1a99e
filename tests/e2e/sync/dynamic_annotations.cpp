// Code written for ThreadSanitizer or Helgrind, built with its dynamic
// annotations on, calls AnnotateHappensBefore & co.; the runtime defines
// them (end of mg_interceptors.cpp), so the code links unchanged and the
// annotations keep their meaning. Each hand-off below goes through relaxed
// atomics only, which order nothing: the annotation is the only edge, and
// each racy twin (the same program with the annotation left out) is reported.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %clangxx_mg -O2 -DNO_ANNOTATIONS %s -o %t.none
// RUN: for m in happens-before rwlock condvar ignore-reads ignore-sync-twin; do %t.O0 $m; %t.O2 $m; done 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.none happens-before 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.none rwlock 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.none condvar 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.none ignore-reads 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 ignore-sync 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN-NOT: undefined
// CLEAN: DONE happens-before
// CLEAN: DONE happens-before
// CLEAN: DONE rwlock
// CLEAN: DONE rwlock
// CLEAN: DONE condvar
// CLEAN: DONE condvar
// CLEAN: DONE ignore-reads
// CLEAN: DONE ignore-reads
// RACY: fatal error: {{concurrent|unsynchronized}} map
// RACY: SUMMARY: mapguard
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

// As in the dynamic_annotations.h that Chromium, Abseil and valgrind ship.
extern "C" {
void AnnotateHappensBefore(const char *file, int line, const volatile void *obj);
void AnnotateHappensAfter(const char *file, int line, const volatile void *obj);
void AnnotateRWLockAcquired(const char *file, int line, const volatile void *lock, long is_w);
void AnnotateRWLockReleased(const char *file, int line, const volatile void *lock, long is_w);
void AnnotateCondVarSignal(const char *file, int line, const volatile void *cv);
void AnnotateCondVarWait(const char *file, int line, const volatile void *cv, const volatile void *lock);
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreSyncBegin(const char *file, int line);
void AnnotateIgnoreSyncEnd(const char *file, int line);
}
#ifdef NO_ANNOTATIONS
#define ANNOTATE(call) ((void)0)
#else
#define ANNOTATE(call) call
#endif
#define ANNOTATE_HAPPENS_BEFORE(o) ANNOTATE(AnnotateHappensBefore(__FILE__, __LINE__, o))
#define ANNOTATE_HAPPENS_AFTER(o) ANNOTATE(AnnotateHappensAfter(__FILE__, __LINE__, o))
#define ANNOTATE_RWLOCK_ACQUIRED(l, w) ANNOTATE(AnnotateRWLockAcquired(__FILE__, __LINE__, l, w))
#define ANNOTATE_RWLOCK_RELEASED(l, w) ANNOTATE(AnnotateRWLockReleased(__FILE__, __LINE__, l, w))
#define ANNOTATE_CONDVAR_SIGNAL(cv) ANNOTATE(AnnotateCondVarSignal(__FILE__, __LINE__, cv))
#define ANNOTATE_CONDVAR_WAIT(cv) ANNOTATE(AnnotateCondVarWait(__FILE__, __LINE__, cv, nullptr))
#define ANNOTATE_IGNORE_READS_BEGIN() ANNOTATE(AnnotateIgnoreReadsBegin(__FILE__, __LINE__))
#define ANNOTATE_IGNORE_READS_END() ANNOTATE(AnnotateIgnoreReadsEnd(__FILE__, __LINE__))

std::map<int, int> g;
std::atomic<int> flag{0};

void wait_flag(int v) {
  while (flag.load(std::memory_order_relaxed) < v) std::this_thread::yield();
}

// A spin lock built on relaxed atomics: invisible to mapguard, announced
// through the rwlock annotations.
struct SpinLock {
  std::atomic<int> taken{0};
  void lock() {
    int expected = 0;
    while (!taken.compare_exchange_weak(expected, 1, std::memory_order_relaxed)) {
      expected = 0;
      std::this_thread::yield();
    }
    ANNOTATE_RWLOCK_ACQUIRED(this, 1);
  }
  void unlock() {
    ANNOTATE_RWLOCK_RELEASED(this, 1);
    taken.store(0, std::memory_order_relaxed);
  }
};

int main(int argc, char **argv) {
  const char *m = argv[1];
  if (!std::strcmp(m, "happens-before")) {
    std::thread a([] {
      g[1] = 1;
      ANNOTATE_HAPPENS_BEFORE(&flag);
      flag.store(1, std::memory_order_relaxed);
    });
    std::thread b([] {
      wait_flag(1);
      ANNOTATE_HAPPENS_AFTER(&flag);
      g[2] = 2;
    });
    a.join();
    b.join();
  } else if (!std::strcmp(m, "rwlock")) {
    SpinLock lock;
    auto work = [&](int id) {
      for (int i = 0; i < 200; i++) {
        lock.lock();
        g[i % 16] = id;
        lock.unlock();
      }
    };
    std::thread a(work, 1), b(work, 2);
    a.join();
    b.join();
  } else if (!std::strcmp(m, "condvar")) {
    std::thread a([] {
      g[1] = 1;
      ANNOTATE_CONDVAR_SIGNAL(&flag);
      flag.store(1, std::memory_order_relaxed);
    });
    std::thread b([] {
      wait_flag(1);
      ANNOTATE_CONDVAR_WAIT(&flag);
      g[2] = 2;
    });
    a.join();
    b.join();
  } else if (!std::strcmp(m, "ignore-reads")) {
    // A deliberately unsynchronized read (a statistic), bracketed: not
    // reported. The read comes after the write (relaxed flag, no edge), so it
    // is the access that finds the race.
    std::thread a([] {
      g[1] = 1;
      flag.store(1, std::memory_order_relaxed);
    });
    std::thread b([] {
      wait_flag(1);
      ANNOTATE_IGNORE_READS_BEGIN();
      volatile size_t n = g.size();
      (void)n;
      ANNOTATE_IGNORE_READS_END();
    });
    a.join();
    b.join();
  } else if (!std::strcmp(m, "ignore-sync") || !std::strcmp(m, "ignore-sync-twin")) {
    // A happens-before annotation made inside an IgnoreSync bracket creates
    // no edge: the hand-off is reported (the twin, outside it, is quiet).
    bool ignored = m[11] == 0;
    std::thread a([&] {
      g[1] = 1;
      if (ignored) AnnotateIgnoreSyncBegin(__FILE__, __LINE__);
      AnnotateHappensBefore(__FILE__, __LINE__, &flag);
      if (ignored) AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
      flag.store(1, std::memory_order_relaxed);
    });
    std::thread b([] {
      wait_flag(1);
      AnnotateHappensAfter(__FILE__, __LINE__, &flag);
      g[2] = 2;
    });
    a.join();
    b.join();
  }
  std::printf("DONE %s\n", m);
}
