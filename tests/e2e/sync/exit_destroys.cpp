// exit() destroys static-storage maps (globals and function-local statics):
// a write like any other. A detached thread still writing a global map when
// main returns is reported (before, its destructor ran unseen and the thread
// crashed in freed memory); a program whose threads are done is quiet.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE clean
// RACY: fatal error: {{concurrent|unsynchronized}} map writes
// RACY: Map: std::map<int, std::string> 'g_registry'
// RACY: Destruction (destructor (at exit)) {{by|in progress in}} thread T0 {{.*}} at {{.*}}exit_destroys.cpp:24
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>

std::map<int, std::string> g_registry;
std::atomic<bool> g_started{false};

std::map<int, int> &local_table() {
  static std::map<int, int> table;
  return table;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "racy")) {
    std::thread([] {
      for (int i = 0;; i++) {
        g_registry[i % 100] = "entry";
        g_started.store(true, std::memory_order_relaxed);
      }
    }).detach();
    while (!g_started.load(std::memory_order_relaxed)) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return 0;  // exit() destroys g_registry while the thread writes it
  }
  std::thread t([] {
    g_registry[1] = "one";
    local_table()[1] = 1;
  });
  t.join();
  g_registry[2] = "two";
  local_table()[2] = 2;
  std::printf("DONE clean\n");
  return 0;
}
