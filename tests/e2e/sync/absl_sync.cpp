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
//   barrier:      absl::Barrier::Block between the write and the read; the
//                 last thread out deletes the barrier
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
// RACY: Write (operator[]) by thread T{{[0-9]+}} {{.*}}lock_handoffs.h:{{[0-9]+}}:{{[0-9]+}} in
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "absl/synchronization/barrier.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "lock_handoffs.h"

std::map<int, int> table;
absl::Mutex mu;

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  bool flag = false;
  using namespace mg_handoff;
  if (!std::strcmp(mode, "mutex")) {
    take_turns(table, [](auto body) { absl::MutexLock l(&mu); body(); });
  } else if (!std::strcmp(mode, "trylock")) {
    take_turns(table, [](auto body) {
      while (!mu.TryLock()) std::this_thread::yield();
      body();
      mu.Unlock();
    });
  } else if (!std::strcmp(mode, "reader")) {
    readers_between_writers(
        table, [](auto body) { absl::WriterMutexLock l(&mu); body(); },
        [](auto body) { absl::ReaderMutexLock l(&mu); body(); });
  } else if (!std::strcmp(mode, "condvar")) {
    absl::CondVar cv;
    wait_then_read(
        table, [] { mu.Lock(); }, [] { mu.Unlock(); }, [&] { while (!flag) cv.Wait(&mu); },
        [&] { flag = true; cv.Signal(); });
  } else if (!std::strcmp(mode, "await")) {
    wait_then_read(
        table, [] { mu.Lock(); }, [] { mu.Unlock(); }, [&] { mu.Await(absl::Condition(&flag)); },
        [&] { flag = true; });
  } else if (!std::strcmp(mode, "notification")) {
    absl::Notification n;
    hand_over(table, [&] { n.Notify(); }, [&] { n.WaitForNotification(); });
  } else if (!std::strcmp(mode, "has_been_notified")) {
    absl::Notification n;
    hand_over(table, [&] { n.Notify(); }, [&] { while (!n.HasBeenNotified()) std::this_thread::yield(); });
  } else if (!std::strcmp(mode, "counter")) {
    absl::BlockingCounter c(1);
    hand_over(table, [&] { c.DecrementCount(); }, [&] { c.Wait(); });
  } else if (!std::strcmp(mode, "barrier")) {
    // The last thread out of Block deletes the barrier, possibly while the
    // other is just out of it and not yet past mapguard's acquire: repeated
    // so that this happens in most runs (about 1 in 60 hand-offs).
    for (int i = 0; i < 300; i++) {
      auto *b = new absl::Barrier(2);
      // The writer's Block is an invoke (a string lives across it): its pin
      // is let go on the unwind path too.
      hand_over(table,
                [&] {
                  std::string live(40, 'x');
                  if (b->Block()) delete b;
                  if (live.size() != 40) std::abort();
                },
                [&] { if (b->Block()) delete b; });
    }
  } else if (!std::strcmp(mode, "racy")) {
    // One writer skips the lock: the lock's edges must not hide that.
    take_turns(table, [](auto body) {
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
