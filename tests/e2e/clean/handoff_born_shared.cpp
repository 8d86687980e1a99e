// Maps built at one site by a producer and each handed to a consumer: the
// first 64 are taken over from their builder (a membarrier each); after
// that the site's maps are built shared and never taken over. Maps built at
// another site and destroyed by their builder stay owned. Correct hand-offs
// stay quiet; a map of the shared-born site written by both threads without
// synchronization is still reported. (The construction site is the one
// inside std::make_unique<std::map<int, int>>: one site per instantiation.)
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: env MAPGUARD_OPTIONS=print_stats=1:stats_maps=1 %t.O0 2>&1 | FileCheck %s
// RUN: env MAPGUARD_OPTIONS=print_stats=1:stats_maps=1:format=json %t.O0 2>&1 | FileCheck %s --check-prefix=JSON
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: env MAPGUARD_OPTIONS=print_stats=1:stats_maps=1 %t.O2 2>&1 | FileCheck %s
// RUN: not %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: not %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 2>&1 | FileCheck %s --check-prefix=QUIET
// Hash tables handed over with 300 elements each: their builder used them
// enough that owning them paid, so the site keeps building them owned.
// RUN: env MAPGUARD_OPTIONS=print_stats=1:stats_maps=1 %t.O2 large 2>&1 | FileCheck %s --check-prefix=LARGE
// CHECK-NOT: fatal error
// CHECK: maps taken over from the thread that built them: 64 (one membarrier each); built shared from the start: 236, at 1 construction site whose maps change hands:
// CHECK-NEXT: {{.*}}:{{[0-9]+}}:{{[0-9]+}} (236 maps)
// CHECK: DONE 300 50
// JSON: {"mapguard_ownership":{"taken_over":64,"built_shared":236,"sites":[{"file":"{{.*}}","line":{{[0-9]+}},"column":{{[0-9]+}},"maps":236}]}}
// JSON: DONE 300 50
// QUIET-NOT: fatal error
// QUIET: DONE 300 50
// RACY: unsynchronized map writes
// LARGE: maps taken over from the thread that built them: 100 (one membarrier each); built shared from the start: 0, at 0 construction sites whose maps change hands{{$}}
// LARGE: DONE 100
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

std::mutex mu;
std::condition_variable cv;
std::unique_ptr<std::map<int, int>> slot;  // one map in flight at a time
bool taken = true;

std::unique_ptr<std::map<int, int>> Build(int n) {
  auto m = std::make_unique<std::map<int, int>>();  // the hand-off site (inside make_unique)
  for (int i = 0; i < 4; i++) (*m)[i] = n;
  return m;
}

// Built up by the producer, then handed over: kept, not born shared.
int HandOverLargeTables() {
  std::mutex table_mu;
  std::condition_variable table_cv;
  std::unique_ptr<std::unordered_map<int, int>> table;
  long sum = 0;
  std::thread consumer([&] {
    for (int n = 0; n < 100; n++) {
      std::unique_lock<std::mutex> lock(table_mu);
      table_cv.wait(lock, [&] { return table != nullptr; });
      sum += table->size();
      table.reset();
      table_cv.notify_all();
    }
  });
  for (int n = 0; n < 100; n++) {
    auto m = std::make_unique<std::unordered_map<int, int>>();
    for (int i = 0; i < 300; i++) (*m)[i] = n;
    std::unique_lock<std::mutex> lock(table_mu);
    table_cv.wait(lock, [&] { return table == nullptr; });
    table = std::move(m);
    table_cv.notify_all();
  }
  consumer.join();
  std::printf("DONE %ld\n", sum / 300);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "large")) return HandOverLargeTables();
  const bool racy = argc > 1 && !strcmp(argv[1], "racy");
  long sum = 0;
  std::thread consumer([&] {
    for (int n = 0; n < 300; n++) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [] { return !taken; });
      sum += (*slot)[1];
      slot.reset();
      taken = true;
      cv.notify_all();
    }
  });
  for (int n = 0; n < 300; n++) {
    {
      // The next map is built only once the consumer is done with the last
      // (so the 65th map is built after the 64th was taken over).
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [] { return taken; });
    }
    auto m = Build(n);
    std::unique_lock<std::mutex> lock(mu);
    slot = std::move(m);
    taken = false;
    cv.notify_all();
  }
  consumer.join();
  int kept = 0;
  for (int n = 0; n < 50; n++) {
    std::map<int, int> own;  // built and destroyed here: stays owned
    own[n] = n;
    kept += int(own.size());
  }
  if (racy) {
    // A map of the shared-born site, written by two threads that never
    // synchronize (the relaxed flag orders nothing).
    auto m = Build(0);
    std::atomic<int> turn{0};
    std::thread other([&] {
      (*m)[1] = 1;
      turn.store(1, std::memory_order_relaxed);
    });
    while (turn.load(std::memory_order_relaxed) != 1) std::this_thread::yield();
    (*m)[2] = 2;
    other.join();
  }
  std::printf("DONE %d %d\n", int(sum >= 0) * 300, kept);
  return 0;
}
