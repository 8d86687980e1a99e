// A long-running "server" for the sidecar's live tests and benchmark
// (live_session.py): worker threads serve requests until told to stop. A
// request picks one of kMaps session tables, locks its mutex, looks a key up
// (one read) and stores the result (one write): a correct program, so the
// sidecar must stay quiet, and every map access is counted where the harness
// can check it exactly.
//
// Commands on stdin, one per line, answered on stdout:
//   count   -> "count N": requests served so far
//   pause   -> "paused N": workers parked between requests, N served
//   resume  -> "resumed"
//   stop    -> workers joined, exit 0
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include <unistd.h>

namespace {

constexpr int kMaps = 64;
constexpr int kWorkers = 2;

struct Table {
  std::mutex mu;
  std::unordered_map<int, long> sessions;
};
Table tables[kMaps];

std::mutex control_mu;
std::condition_variable control_cv;
bool paused = false, stopping = false;
int parked = 0;
std::atomic<long> served{0};

void Worker(int id) {
  unsigned x = 12345u + unsigned(id) * 7919u;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(control_mu);
      if (paused || stopping) {
        parked++;
        control_cv.notify_all();
        control_cv.wait(lock, [] { return !paused || stopping; });
        parked--;
        if (stopping) return;
      }
    }
    // 64 requests between checks of the control state.
    for (int i = 0; i < 64; i++) {
      x = x * 1103515245u + 12345u;
      Table &t = tables[(x >> 8) % kMaps];
      const int key = int((x >> 16) % 512);
      std::lock_guard<std::mutex> lock(t.mu);
      auto it = t.sessions.find(key);
      long v = it == t.sessions.end() ? 0 : it->second;
      t.sessions[key] = v + 1;
      served.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

}  // namespace

int main() {
  std::vector<std::thread> workers;
  for (int i = 0; i < kWorkers; i++) workers.emplace_back(Worker, i);
  std::printf("READY %d\n", int(getpid()));
  std::fflush(stdout);
  std::string cmd;
  while (std::getline(std::cin, cmd)) {
    if (cmd == "count") {
      std::printf("count %ld\n", served.load());
    } else if (cmd == "pause") {
      std::unique_lock<std::mutex> lock(control_mu);
      paused = true;
      control_cv.wait(lock, [] { return parked == kWorkers; });
      std::printf("paused %ld\n", served.load());
    } else if (cmd == "resume") {
      {
        std::lock_guard<std::mutex> lock(control_mu);
        paused = false;
      }
      control_cv.notify_all();
      std::printf("resumed\n");
    } else if (cmd == "stop") {
      break;
    }
    std::fflush(stdout);
  }
  {
    std::lock_guard<std::mutex> lock(control_mu);
    stopping = true;
  }
  control_cv.notify_all();
  for (std::thread &t : workers) t.join();
  return 0;
}
