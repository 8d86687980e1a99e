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

std::map<int, int> table;
QMutex mu;
QReadWriteLock rw;

// Two threads take turns (a relaxed counter forces the order and orders
// nothing), each writing under the lock `locked` takes.
template <typename Locked>
void take_turns(Locked locked) {
  std::atomic<int> turn{0};
  auto worker = [&](int me) {
    for (int i = 0; i < 200; i++) {
      while (turn.load(std::memory_order_relaxed) % 2 != me) std::this_thread::yield();
      locked([&] { table[i % 7] += me + 1; });
      turn.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
}

// Readers under read locks after a writer, then a writer after the readers,
// each step started by a relaxed flag once the one before it is done.
void readers_between_writers() {
  std::atomic<int> step{0};
  auto await_step = [&](int s) {
    while (step.load(std::memory_order_relaxed) < s) std::this_thread::yield();
  };
  std::thread w1([&] { QWriteLocker l(&rw); table[2] = 2; step = 1; });
  std::thread r1([&] { await_step(1); { QReadLocker l(&rw); (void)table.count(2); } step += 1; });
  std::thread r2([&] { await_step(1); { QReadLocker l(&rw); (void)table.count(2); } step += 1; });
  std::thread w2([&] { await_step(3); QWriteLocker l(&rw); table[2] = 3; });
  for (std::thread *t : {&w1, &r1, &r2, &w2}) t->join();
}

// The reader holds `mu` and waits on the condition (which gives mu up and
// takes it back) before the writer writes under mu: only the wait's return
// orders the write before the read.
void wait_then_read() {
  QWaitCondition cond;
  bool flag = false;
  std::atomic<bool> waiting{false};
  std::thread reader([&] {
    QMutexLocker l(&mu);
    waiting.store(true, std::memory_order_relaxed);
    while (!flag) cond.wait(&mu);
    if (table.count(1) != 1) std::abort();
  });
  std::thread writer([&] {
    while (!waiting.load(std::memory_order_relaxed)) std::this_thread::yield();
    QMutexLocker l(&mu);  // granted once the reader waits
    table[1] = 1;
    flag = true;
    cond.wakeOne();
  });
  writer.join();
  reader.join();
}

// The writer writes and releases the semaphore; the reader, started after
// the write by a relaxed flag, acquires it and reads.
void semaphore_hand_over() {
  QSemaphore sem;
  std::atomic<bool> written{false};
  std::thread writer([&] {
    table[1] = 1;
    written.store(true, std::memory_order_relaxed);
    sem.release();
  });
  std::thread reader([&] {
    while (!written.load(std::memory_order_relaxed)) std::this_thread::yield();
    sem.acquire();
    if (table.count(1) != 1) std::abort();
  });
  writer.join();
  reader.join();
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (!std::strcmp(mode, "mutex")) {
    take_turns([](auto body) { QMutexLocker l(&mu); body(); });
  } else if (!std::strcmp(mode, "trylock")) {
    take_turns([](auto body) {
      while (!mu.tryLock()) std::this_thread::yield();
      body();
      mu.unlock();
    });
  } else if (!std::strcmp(mode, "rwlock")) {
    readers_between_writers();
  } else if (!std::strcmp(mode, "condition")) {
    wait_then_read();
  } else if (!std::strcmp(mode, "semaphore")) {
    semaphore_hand_over();
  } else if (!std::strcmp(mode, "racy")) {
    // One writer skips the mutex: the mutex's edges must not hide that.
    take_turns([](auto body) {
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
