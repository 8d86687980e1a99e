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

struct Workload {
  const char *name;
  long (*fn)(double);
} kWorkloads[] = {
    {"mutex_shared", mutex_shared}, {"private_maps", private_maps}, {"read_mostly", read_mostly},
    {"word_count", word_count},     {"iteration", iteration},       {"churn", churn},
    {"sync_heavy", sync_heavy},     {"read_shared", read_shared},   {"shared_ptr_lookup", shared_ptr_lookup},
    {"suppressed_race", suppressed_race},
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
