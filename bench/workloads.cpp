// mapguard benchmark workloads. Usage: workloads NAME SCALE
// Each prints a checksum so the work cannot be optimized away. SCALE 1 runs
// about a second natively on a 2-core machine; the smoke test uses less.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr int kThreads = 4;

uint32_t next(uint32_t &x) { return x = x * 1103515245u + 12345u; }

template <typename Fn>
long run_threads(Fn fn) {
  std::vector<std::thread> ts;
  std::atomic<long> total{0};
  for (int t = 0; t < kThreads; t++) ts.emplace_back([&, t] { total += fn(t); });
  for (auto &th : ts) th.join();
  return total;
}

// (1) shared unordered_map behind std::mutex, 80% find / 20% insert-or-erase
long mutex_shared(double scale) {
  std::mutex mu;
  std::unordered_map<int, int> m;
  long iters = long(1400000 * scale);
  return run_threads([&](int t) {
    uint32_t x = t * 7919 + 1;
    long s = 0;
    for (long i = 0; i < iters; i++) {
      int k = int(next(x) >> 8) % 20000;
      std::lock_guard<std::mutex> g(mu);
      uint32_t op = next(x) % 10;
      if (op < 8) s += m.find(k) != m.end();
      else if (op == 8) m[k] = int(i);
      else m.erase(k);
    }
    return s;
  });
}

// (2) private per-thread maps, no contention: the pure instrumentation cost
long private_maps(double scale) {
  long iters = long(100000000 * scale);
  return run_threads([&](int t) {
    std::unordered_map<int, int> m;
    uint32_t x = t * 7919 + 1;
    long s = 0;
    for (long i = 0; i < iters; i++) {
      int k = int(next(x) >> 8) % 20000;
      uint32_t op = next(x) % 10;
      if (op < 8) s += m.find(k) != m.end();
      else if (op == 8) m[k] = int(i);
      else m.erase(k);
    }
    return s;
  });
}

// (3) read-mostly map behind std::shared_mutex, 99% find
long read_mostly(double scale) {
  std::shared_mutex mu;
  std::unordered_map<int, int> m;
  for (int i = 0; i < 20000; i++) m[i] = i;
  long iters = long(4500000 * scale);
  return run_threads([&](int t) {
    uint32_t x = t * 7919 + 1;
    long s = 0;
    for (long i = 0; i < iters; i++) {
      int k = int(next(x) >> 8) % 25000;
      if (next(x) % 100 == 0) {
        std::unique_lock<std::shared_mutex> g(mu);
        m[k] = int(i);
      } else {
        std::shared_lock<std::shared_mutex> g(mu);
        auto it = m.find(k);
        if (it != m.end()) s += it->second;
      }
    }
    return s;
  });
}

// (4) single-threaded string-keyed word count
long word_count(double scale) {
  std::vector<std::string> words;
  uint32_t x = 42;
  for (int i = 0; i < 5000; i++) words.push_back("word" + std::to_string(next(x) % 3000));
  std::unordered_map<std::string, int> counts;
  long rounds = long(16000 * scale);
  for (long r = 0; r < rounds; r++)
    for (const auto &w : words) counts[w]++;
  long s = 0;
  for (const auto &kv : counts) s += kv.second;
  return s;
}

// (5) iteration-heavy: range-for over mid-size maps
long iteration(double scale) {
  std::map<int, int> m;
  for (int i = 0; i < 1000; i++) m[i] = i;
  long rounds = long(320000 * scale);
  long s = 0;
  for (long r = 0; r < rounds; r++)
    for (const auto &kv : m) s += kv.second ^ r;
  return s;
}

// (6) churn: many short-lived small maps
long churn(double scale) {
  long n = long(15000000 * scale);
  long s = 0;
  for (long i = 0; i < n; i++) {
    std::map<int, int> m;
    for (int k = 0; k < 4; k++) m[int(i + k)] = k;
    s += long(m.size()) + m.begin()->first;
  }
  return s;
}

// (7) synchronization-heavy: several lock/unlock and atomic operations per map operation
long sync_heavy(double scale) {
  std::mutex mu[4];
  std::atomic<long> counter{0};
  std::unordered_map<int, int> m;
  long iters = long(850000 * scale);
  return run_threads([&](int t) {
    uint32_t x = t * 7919 + 1;
    long s = 0;
    for (long i = 0; i < iters; i++) {
      for (int j = 0; j < 3; j++) {
        std::lock_guard<std::mutex> g(mu[(t + j) % 4]);
        counter.fetch_add(1, std::memory_order_acq_rel);
      }
      s += counter.load(std::memory_order_acquire) & 1;
      std::lock_guard<std::mutex> g(mu[0]);
      int k = int(next(x) >> 8) % 5000;
      if (next(x) % 5 == 0) m[k] = int(i); else s += m.count(k);
    }
    return s;
  });
}

// (8) a table built before the threads start, then read by all of them
// without a lock: the most common way real code shares a map
long read_shared(double scale) {
  std::unordered_map<int, int> m;
  for (int k = 0; k < 20000; k++) m[k] = k;
  long iters = long(6000000 * scale);
  return run_threads([&](int t) {
    uint32_t x = t * 7919 + 1;
    long s = 0;
    for (long i = 0; i < iters; i++) {
      auto it = m.find(int(next(x) >> 8) % 20000);
      if (it != m.end()) s += it->second;
    }
    return s;
  });
}

// (9) the same, but each lookup copies a shared_ptr out of the map: every
// copy and release is an atomic read-modify-write in header code
long shared_ptr_lookup(double scale) {
  std::unordered_map<int, std::shared_ptr<long>> m;
  for (int k = 0; k < 20000; k++) m[k] = std::make_shared<long>(k);
  long iters = long(3000000 * scale);
  return run_threads([&](int t) {
    uint32_t x = t * 7919 + 1;
    long s = 0;
    for (long i = 0; i < iters; i++) {
      auto it = m.find(int(next(x) >> 8) % 20000);
      if (it == m.end()) continue;
      std::shared_ptr<long> p = it->second;
      s += *p;
    }
    return s;
  });
}

// (10) a race the user has suppressed (bench/run.py passes a suppressions
// file naming this function to mapguard and to TSan): one thread overwrites
// values of existing keys while the others look keys up, with no
// synchronization, a million times each. What a suppressed race costs after
// its first report. (The element accesses race too; no key is added or
// removed, so the table itself stays intact.)
long suppressed_race(double scale) {
  std::unordered_map<int, long> m;
  for (int k = 0; k < 1000; k++) m[k] = k;
  long iters = long(1000000 * scale);
  return run_threads([&](int t) {
    uint32_t x = t * 7919 + 1;
    long s = 0;
    for (long i = 0; i < iters; i++) {
      int k = int(next(x) >> 8) % 1000;
      if (t == 0) {
        m[k] = i;
      } else {
        auto it = m.find(k);
        if (it != m.end()) s += it->second & 1;
      }
    }
    return s;
  });
}

// (11) a million shared_ptrs alive at once, each copied and the copy
// dropped: no map at all, the memory of sync clocks on heap control blocks
long shared_ptr_copies(double scale) {
  const long n = long(1000000 * scale);
  std::vector<std::shared_ptr<long>> owners;
  owners.reserve(n);
  for (long i = 0; i < n; i++) owners.push_back(std::make_shared<long>(i));
  return run_threads([&](int t) {
    long s = 0;
    for (long i = t; i < n; i += kThreads) {
      std::shared_ptr<long> copy = owners[i];
      s += *copy;
    }
    return s;
  });
}

// (12) thread per task, detached, one at a time: each hands its result back
// through a release flag
long detached_threads(double scale) {
  const long n = long(8000 * scale);
  long s = 0;
  for (long i = 0; i < n; i++) {
    std::atomic<int> done{0};
    long result = 0;
    std::thread([&, i] {
      std::unordered_map<int, int> m;
      for (int k = 0; k < 4; k++) m[k] = int(i) + k;
      result = m[3];
      done.store(1, std::memory_order_release);
    }).detach();
    while (!done.load(std::memory_order_acquire)) std::this_thread::yield();
    s += result;
  }
  return s;
}

// (13) three creators, each starting and joining short threads one at a
// time and handing each a small map (a thread-per-request server)
long joined_threads(double scale) {
  const long n = long(8000 * scale);
  std::atomic<long> total{0};
  std::vector<std::thread> creators;
  for (int c = 0; c < 3; c++)
    creators.emplace_back([&, c] {
      long s = 0;
      for (long i = 0; i < n; i++) {
        std::map<int, int> request;
        for (int k = 0; k < 4; k++) request[k] = c + int(i);
        std::thread t([&] { s += request.count(2) + request[3]; });
        t.join();
      }
      total += s;
    });
  for (auto &t : creators) t.join();
  return total;
}

// (14) maps built by one thread and handed to another through a locked
// queue (a pipeline stage): every map changes hands once
long handoff(double scale) {
  const long n = long(100000 * scale);
  std::mutex mu;
  std::vector<std::unique_ptr<std::unordered_map<int, int>>> queue;
  std::atomic<bool> finished{false};
  long s = 0;
  std::thread consumer([&] {
    for (;;) {
      std::vector<std::unique_ptr<std::unordered_map<int, int>>> batch;
      {
        std::lock_guard<std::mutex> g(mu);
        batch.swap(queue);
      }
      for (auto &m : batch) s += m->size() + (*m)[1];
      if (batch.empty()) {
        if (finished.load(std::memory_order_acquire)) {
          std::lock_guard<std::mutex> g(mu);
          if (queue.empty()) return;
        }
        std::this_thread::yield();
      }
    }
  });
  for (long i = 0; i < n; i++) {
    auto m = std::make_unique<std::unordered_map<int, int>>();
    for (int k = 0; k < 4; k++) (*m)[k] = int(i);
    std::lock_guard<std::mutex> g(mu);
    queue.push_back(std::move(m));
  }
  finished.store(true, std::memory_order_release);
  consumer.join();
  return s;
}

struct Workload {
  const char *name;
  long (*fn)(double);
} kWorkloads[] = {
    {"mutex_shared", mutex_shared}, {"private_maps", private_maps}, {"read_mostly", read_mostly},
    {"word_count", word_count},     {"iteration", iteration},       {"churn", churn},
    {"sync_heavy", sync_heavy},     {"read_shared", read_shared},   {"shared_ptr_lookup", shared_ptr_lookup},
    {"suppressed_race", suppressed_race}, {"shared_ptr_copies", shared_ptr_copies},
    {"detached_threads", detached_threads}, {"joined_threads", joined_threads},
    {"handoff", handoff},
};

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    for (const auto &w : kWorkloads) std::printf("%s\n", w.name);
    return 0;
  }
  double scale = argc > 2 ? std::atof(argv[2]) : 1.0;
  for (const auto &w : kWorkloads)
    if (!std::strcmp(w.name, argv[1])) {
      // Its own elapsed time too: under the sidecar, wall time would include
      // loading and attaching the BPF program.
      auto start = std::chrono::steady_clock::now();
      long checksum = w.fn(scale);
      double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("%s checksum %ld elapsed %.6f\n", w.name, checksum, elapsed);
      return 0;
    }
  std::fprintf(stderr, "workloads: unknown workload '%s' (run without arguments for the list)\n", argv[1]);
  return 2;
}
