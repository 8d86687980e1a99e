// Maps guarded by Qt 5's locks from Debian's prebuilt QtCore (not compiled
// with the plugin: a contended QMutex waits inside the library, where
// nothing instrumented sees it). The catalogue's Qt sync lines make the calls
// into it happens-before edges. Each mode hands a map between threads in an
// order the test forces:
//   mutex:     QMutexLocker, two writers taking turns
//   trylock:   QMutex::tryLock in a loop, unlock
//   rwlock:    QReadLocker readers after a QWriteLocker writer, then a
//              writer after the readers
//   condition: QWaitCondition::wait entered before the write, woken after
//   semaphore: QSemaphore::release after the write, acquire before the read
// All quiet at -O0 and -O2; without the catalogue (catalogue=off) each but
// condition is reported (QWaitCondition is built on a pthread mutex and
// condition variable, which the runtime sees anyway); a writer that skips the
// mutex is still reported (racy). Debian's QtCore wants -fPIC.
// RUN: %clangxx_mg -O0 -fPIC -idirafter/usr/include/x86_64-linux-gnu/qt5 %s -o %t.O0 -lQt5Core
// RUN: %clangxx_mg -O2 -fPIC -idirafter/usr/include/x86_64-linux-gnu/qt5 %s -o %t.O2 -lQt5Core
// RUN: for m in mutex trylock rwlock condition semaphore; do \
// RUN:   %t.O0 $m 2>&1 | FileCheck %s --check-prefix=CLEAN -DMODE=$m && \
// RUN:   %t.O2 $m 2>&1 | FileCheck %s --check-prefix=CLEAN -DMODE=$m || exit 1; done
// RUN: %clangxx_mg -O0 -fPIC -idirafter/usr/include/x86_64-linux-gnu/qt5 -fplugin-arg-mapguard-catalogue=off %s -o %t.nocat -lQt5Core
// RUN: for m in mutex trylock rwlock semaphore; do \
// RUN:   %expect_exit 66 %t.nocat $m 2>&1 | FileCheck %s --check-prefix=NOCAT || exit 1; done
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE [[MODE]]
// NOCAT: fatal error: unsynchronized map
// RACY: fatal error: unsynchronized map writes
#include <QtCore/QMutex>
#include <QtCore/QMutexLocker>
#include <QtCore/QReadWriteLock>
#include <QtCore/QSemaphore>
#include <QtCore/QWaitCondition>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

#include "lock_handoffs.h"

std::map<int, int> table;
QMutex mu;
QReadWriteLock rw;

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  using namespace mg_handoff;
  if (!std::strcmp(mode, "mutex")) {
    take_turns(table, [](auto body) { QMutexLocker l(&mu); body(); });
  } else if (!std::strcmp(mode, "trylock")) {
    take_turns(table, [](auto body) {
      while (!mu.tryLock()) std::this_thread::yield();
      body();
      mu.unlock();
    });
  } else if (!std::strcmp(mode, "rwlock")) {
    readers_between_writers(
        table, [](auto body) { QWriteLocker l(&rw); body(); },
        [](auto body) { QReadLocker l(&rw); body(); });
  } else if (!std::strcmp(mode, "condition")) {
    QWaitCondition cond;
    bool flag = false;
    wait_then_read(
        table, [] { mu.lock(); }, [] { mu.unlock(); }, [&] { while (!flag) cond.wait(&mu); },
        [&] { flag = true; cond.wakeOne(); });
  } else if (!std::strcmp(mode, "semaphore")) {
    QSemaphore sem;
    hand_over(table, [&] { sem.release(); }, [&] { sem.acquire(); });
  } else if (!std::strcmp(mode, "racy")) {
    // One writer skips the mutex: the mutex's edges must not hide that.
    take_turns(table, [](auto body) {
      static std::atomic<int> calls{0};
      if (calls.fetch_add(1, std::memory_order_relaxed) % 2) { body(); return; }
      QMutexLocker l(&mu);
      body();
    });
  } else {
    std::fprintf(stderr, "usage: qt_sync MODE\n");
    return 2;
  }
  std::printf("DONE %s\n", mode);
  return 0;
}
