// A signal handler that reads a map may interrupt any instruction of a
// region's begin or end in the thread it lands on. Here two threads touch
// map M only under one mutex while SIGALRM fires every 20 us and its handler
// reads another map, H. Correct code: quiet in every run. Before the region
// stack checked for a handler's push landing inside its own push, a handler
// that ran between writing the entry and publishing the depth overwrote the
// interrupted region; its end never gave back its reader count, and the next
// locked write to M was reported (or the process crashed).
// The racy twin writes M from the second thread without the lock: reported.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE signals={{[1-9][0-9]*}}
// RACY: fatal error: {{.*}}map {{.*}}write
// RACY: SUMMARY: mapguard
#include <signal.h>
#include <sys/time.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

std::unordered_map<int, int> g_m;  // M: every access under g_mu (clean)
std::map<int, int> g_h;            // H: filled before any signal, then only read
std::mutex g_mu;
std::atomic<long> g_signals{0};
volatile long g_sink;

void on_alarm(int) {
  auto it = g_h.find(int(g_signals.fetch_add(1, std::memory_order_relaxed) & 63));
  if (it != g_h.end()) g_sink = it->second;
}

void worker(int id, bool locked, int rounds) {
  for (int i = 0; i < rounds; i++) {
    if (locked) {
      std::lock_guard<std::mutex> lock(g_mu);
      g_m[(i * 7 + id) & 255] = i;
      auto it = g_m.find(i & 255);
      if (it != g_m.end()) g_sink = it->second;
      for (auto &kv : g_m)
        if (kv.first == id) g_sink = kv.second;
    } else {
      g_m[(i * 7 + id) & 255] = i;
    }
  }
}

int main(int argc, char **argv) {
  bool racy = argc > 1 && !std::strcmp(argv[1], "racy");
  for (int i = 0; i < 64; i++) g_h[i] = i;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, nullptr);
  itimerval every{{0, 20}, {0, 20}};
  setitimer(ITIMER_REAL, &every, nullptr);
  const int rounds = racy ? 2000 : 60000;
  std::thread a(worker, 1, true, rounds);
  a.join();  // the racy twin's unlocked writes come after, unordered with a's only by the lock
  std::thread b(worker, 2, !racy, rounds);
  worker(3, true, rounds);
  b.join();
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  std::printf("DONE signals=%ld\n", g_signals.load());
}
