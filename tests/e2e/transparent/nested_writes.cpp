// A write nested in another write of the same thread on the same shared map
// (a custom map's update() runs a callback that writes the map again): the
// inner end must not clear the writer flag the outer write still holds. The
// racy twin writes from a second thread while the outer write is still in
// progress: reported as concurrent in every run, in both modes.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 locked 2>&1 | FileCheck %s --check-prefix=LOCKED
// RUN: %t.O2 locked 2>&1 | FileCheck %s --check-prefix=LOCKED
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// LOCKED-NOT: fatal error
// LOCKED: DONE locked
// RACY: fatal error: concurrent map writes
// RACY: Write (put) by thread T3
// RACY: Write (update) in progress in thread T2
// RACY: #0 mg_test::stay_inside()
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "mapguard/annotations.h"
#include "test_sync.h"

class MAPGUARD_MAP Registry {
 public:
  void put(int k, int v) {
    for (auto &e : items_)
      if (e.first == k) { e.second = v; return; }
    items_.push_back({k, v});
  }
  int get(int k) const {
    for (const auto &e : items_)
      if (e.first == k) return e.second;
    return -1;
  }
  // Runs `f` inside the write; f may write the registry again.
  template <typename F>
  void update(int k, F f) {
    put(k, 0);
    f();
  }
 private:
  std::vector<std::pair<int, int>> items_;
};

Registry g_reg;
std::mutex g_mu;

int main(int argc, char **argv) {
  bool racy = argc > 1 && !strcmp(argv[1], "racy");
  std::thread t2_first([] {
    std::lock_guard<std::mutex> lock(g_mu);
    g_reg.put(1, 1);  // a second thread: the registry is shared from now on
  });
  t2_first.join();
  if (!racy) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; t++)
      threads.emplace_back([t] {
        for (int i = 0; i < 2000; i++) {
          std::lock_guard<std::mutex> lock(g_mu);
          g_reg.update(i % 10, [&] { g_reg.put(100 + t, i); });
          (void)g_reg.get(i % 10);
        }
      });
    for (auto &t : threads) t.join();
    std::printf("DONE locked\n");
    return 0;
  }
  mg_test::race(
      [] {
        g_reg.update(5, [] {
          g_reg.put(6, 6);          // the nested write ends here...
          mg_test::stay_inside();   // ...while the outer one goes on
        });
      },
      [] { g_reg.put(7, 7); });
  return 0;
}
