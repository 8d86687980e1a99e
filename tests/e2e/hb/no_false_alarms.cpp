// Situations that must not be reported under happens-before tracking: a map
// moved to another thread through a future, fork() in a multithreaded
// program (the child goes on with a sane state), a signal handler touching a
// map of its own thread, a custom map behind a lock, a map filled before the
// threads start and then only read.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: for m in move fork signal custom fill-then-read; do \
// RUN:   %t.O0 $m 2>&1 | FileCheck %s -DMODE=$m && %t.O2 $m 2>&1 | FileCheck %s -DMODE=$m || exit 1; done
// RUN: %expect_exit 66 %t.O0 custom-racy 2>&1 | FileCheck %s --check-prefix=CUSTOMRACY
// RUN: %expect_exit 66 %t.O2 custom-racy 2>&1 | FileCheck %s --check-prefix=CUSTOMRACY
// CHECK-NOT: fatal error
// CHECK: DONE [[MODE]]
// CUSTOMRACY: fatal error: unsynchronized map writes
// CUSTOMRACY: Map: Inventory 'inv' at
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mapguard/annotations.h"
#include "test_sync.h"

class MAPGUARD_MAP Inventory {
 public:
  void add(int k) { items_.push_back(k); }
  size_t size() const { return items_.size(); }
 private:
  std::vector<int> items_;
};

std::map<int, int> g_signal_map;
void on_signal(int) { g_signal_map[1]++; }

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "move") {
    std::promise<std::unordered_map<int, int>> p;
    auto f = p.get_future();
    std::thread producer([&] {
      std::unordered_map<int, int> built;
      for (int i = 0; i < 100; i++) built[i] = i;
      p.set_value(std::move(built));
    });
    std::thread consumer([&] {
      auto mine = f.get();
      mine[1000] = 1;
      mine.erase(3);
    });
    producer.join();
    consumer.join();
  } else if (mode == "fork") {
    std::unordered_map<int, int> m;
    std::mutex mu;
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; t++)
      ts.emplace_back([&, t] {
        for (int i = 0; i < 2000; i++) { std::lock_guard<std::mutex> g(mu); m[i] = t; }
      });
    pid_t pid = fork();
    if (pid == 0) {
      std::unordered_map<int, int> child_map;
      for (int i = 0; i < 100; i++) child_map[i] = i;
      std::thread t([&] { child_map[5] = 0; });
      t.join();
      _exit(child_map.size() == 100 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    for (auto &t : ts) t.join();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::printf("child failed %d\n", status);
  } else if (mode == "signal") {
    signal(SIGUSR1, on_signal);
    for (int i = 0; i < 100; i++) {
      g_signal_map[i] = i;
      if (i % 10 == 0) raise(SIGUSR1);
    }
  } else if (mode == "custom" || mode == "custom-racy") {
    Inventory inv;
    std::mutex mu;
    bool racy = mode == "custom-racy";
    std::thread a([&] {
      if (racy) { inv.add(1); mg_test::g_inside.store(true, std::memory_order_relaxed); return; }
      std::lock_guard<std::mutex> g(mu);
      inv.add(1);
    });
    std::thread b([&] {
      if (racy) { mg_test::wait_until_inside(); inv.add(2); return; }
      std::lock_guard<std::mutex> g(mu);
      inv.add(2);
    });
    a.join();
    b.join();
  } else if (mode == "fill-then-read") {
    std::map<std::string, int> config;
    for (int i = 0; i < 100; i++) config[std::to_string(i)] = i;
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; t++)
      readers.emplace_back([&] {
        long s = 0;
        for (int i = 0; i < 1000; i++) s += config.count(std::to_string(i % 150));
        for (const auto &kv : config) s += kv.second;
        if (s < 0) std::printf("impossible\n");
      });
    for (auto &t : readers) t.join();
  }
  std::printf("DONE %s\n", mode.c_str());
}
