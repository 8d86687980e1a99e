// Maps guarded by Abseil's synchronization from Debian's prebuilt libabsl
// (not compiled with the plugin: absl::Mutex waits in futex system calls
// nothing instrumented sees). The catalogue's sync lines make the calls into
// it happens-before edges. Each mode hands a map from thread to thread, in
// an order the test forces, through one of them:
//   mutex:        absl::MutexLock (Lock/Unlock), writers taking turns
//   trylock:      TryLock in a loop, Unlock
//   reader:       ReaderMutexLock readers after a WriterMutexLock writer,
//                 then a writer after the readers
//   condvar:      CondVar::Wait(&mu) entered before the write, woken after it
//   await:        Mutex::Await(Condition) the same way
//   notification: Notify after the write, WaitForNotification before the read
//   has_been_notified: HasBeenNotified polled until true, then the read
//   counter:      BlockingCounter::DecrementCount / Wait
//   barrier:      absl::Barrier::Block between the write and the read
// All quiet at -O0 and -O2. Without the catalogue (catalogue=off) the same
// program is reported: the edges come from the sync lines. A write that
// skips the mutex is still reported (racy).
// RUN: %clangxx_mg -O0 -std=c++17 %s -o %t.O0 %{absl_sync_libs}
// RUN: %clangxx_mg -O2 -std=c++17 %s -o %t.O2 %{absl_sync_libs}
// RUN: for m in mutex trylock reader condvar await notification has_been_notified counter barrier; do \
// RUN:   %t.O0 $m 2>&1 | FileCheck %s --check-prefix=CLEAN -DMODE=$m && \
// RUN:   %t.O2 $m 2>&1 | FileCheck %s --check-prefix=CLEAN -DMODE=$m || exit 1; done
// RUN: %clangxx_mg -O0 -std=c++17 -fplugin-arg-mapguard-catalogue=off %s -o %t.nocat %{absl_sync_libs}
// RUN: for m in mutex trylock reader condvar await notification has_been_notified counter barrier; do \
// RUN:   %expect_exit 66 %t.nocat $m 2>&1 | FileCheck %s --check-prefix=NOCAT || exit 1; done
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE [[MODE]]
// NOCAT: fatal error: unsynchronized map
// RACY: fatal error: unsynchronized map writes
// RACY: Write (operator[]) by thread T{{[0-9]+}} {{.*}}absl_sync.cpp:{{[0-9]+}}:{{[0-9]+}} in
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/barrier.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

std::map<int, int> table;
absl::Mutex mu;

// Two threads take turns (strictly alternating, forced by a relaxed turn
// counter, which orders nothing), each writing under the lock.
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

// The writer writes, then hands over through `handoff`; the reader waits
// for it (`wait`) and reads. A relaxed flag makes the reader start after the
// writer is done, so without the edge the read is unordered with the write.
template <typename Handoff, typename Wait>
void hand_over(Handoff handoff, Wait wait) {
  std::atomic<bool> written{false};
  std::thread writer([&] {
    table[1] = 1;
    written.store(true, std::memory_order_relaxed);
    handoff();
  });
  std::thread reader([&] {
    while (!written.load(std::memory_order_relaxed)) std::this_thread::yield();
    wait();
    if (table.count(1) != 1) std::abort();
  });
  writer.join();
  reader.join();
}

// The reader holds `mu` and blocks in `wait` (which gives mu up and takes it
// back) before the writer writes under mu: only the wait's return orders the
// write before the read.
template <typename Wait, typename Wake>
void wait_then_read(Wait wait, Wake wake) {
  std::atomic<bool> waiting{false};
  std::thread reader([&] {
    mu.Lock();
    waiting.store(true, std::memory_order_relaxed);
    wait();
    if (table.count(1) != 1) std::abort();
    mu.Unlock();
  });
  std::thread writer([&] {
    while (!waiting.load(std::memory_order_relaxed)) std::this_thread::yield();
    absl::MutexLock l(&mu);  // granted once the reader waits
    table[1] = 1;
    wake();
  });
  writer.join();
  reader.join();
}

// Readers under reader locks after a writer, then a writer after the readers,
// each step started by a relaxed flag once the one before it is done.
void readers_between_writers() {
  std::atomic<int> step{0};
  auto await_step = [&](int s) {
    while (step.load(std::memory_order_relaxed) < s) std::this_thread::yield();
  };
  std::thread w1([&] { absl::WriterMutexLock l(&mu); table[2] = 2; step = 1; });
  std::thread r1([&] { await_step(1); { absl::ReaderMutexLock l(&mu); (void)table.count(2); } step += 1; });
  std::thread r2([&] { await_step(1); { absl::ReaderMutexLock l(&mu); (void)table.count(2); } step += 1; });
  std::thread w2([&] { await_step(3); absl::WriterMutexLock l(&mu); table[2] = 3; });
  for (std::thread *t : {&w1, &r1, &r2, &w2}) t->join();
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  bool flag = false;
  if (!std::strcmp(mode, "mutex")) {
    take_turns([](auto body) { absl::MutexLock l(&mu); body(); });
  } else if (!std::strcmp(mode, "trylock")) {
    take_turns([](auto body) {
      while (!mu.TryLock()) std::this_thread::yield();
      body();
      mu.Unlock();
    });
  } else if (!std::strcmp(mode, "reader")) {
    readers_between_writers();
  } else if (!std::strcmp(mode, "condvar")) {
    absl::CondVar cv;
    wait_then_read([&] { while (!flag) cv.Wait(&mu); }, [&] { flag = true; cv.Signal(); });
  } else if (!std::strcmp(mode, "await")) {
    wait_then_read([&] { mu.Await(absl::Condition(&flag)); }, [&] { flag = true; });
  } else if (!std::strcmp(mode, "notification")) {
    absl::Notification n;
    hand_over([&] { n.Notify(); }, [&] { n.WaitForNotification(); });
  } else if (!std::strcmp(mode, "has_been_notified")) {
    absl::Notification n;
    hand_over([&] { n.Notify(); }, [&] { while (!n.HasBeenNotified()) std::this_thread::yield(); });
  } else if (!std::strcmp(mode, "counter")) {
    absl::BlockingCounter c(1);
    hand_over([&] { c.DecrementCount(); }, [&] { c.Wait(); });
  } else if (!std::strcmp(mode, "barrier")) {
    auto *b = new absl::Barrier(2);
    hand_over([&] { if (b->Block()) delete b; }, [&] { if (b->Block()) delete b; });
  } else if (!std::strcmp(mode, "racy")) {
    // One writer skips the lock: the lock's edges must not hide that.
    take_turns([](auto body) {
      static std::atomic<int> calls{0};
      if (calls.fetch_add(1, std::memory_order_relaxed) % 2) { body(); return; }
      absl::MutexLock l(&mu);
      body();
    });
  } else {
    std::fprintf(stderr, "usage: absl_sync MODE\n");
    return 2;
  }
  std::printf("DONE %s\n", mode);
  return 0;
}
