// mapguard::guarded against the usual ways to share a map, side by side in
// one run: Mops/s per workload, thread count and implementation. Built plain
// (no plugin): this measures the wrapper, not the checker. bench/guarded.py
// builds and runs it and writes the table and chart of docs/guarded.md.
//
//   guarded_bench [--seconds S] [--repeat N] [--threads 1,2,4] [--workload NAME]
//                 [--impl NAME] [--json]
//
// Each cell warms up for S seconds (0.3), then is measured for S seconds
// (phased: 5 S) on a map prefilled with 10,000 keys, N times (3), and
// reports the median.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <tbb/concurrent_hash_map.h>
#if __has_include(<libcuckoo/cuckoohash_map.hh>)
#include <libcuckoo/cuckoohash_map.hh>
#define HAVE_CUCKOO 1
#endif

#include "mapguard/guarded.h"

namespace {

using Map = std::unordered_map<long, long>;
constexpr long kKeys = 10000;

// One operation of a workload, picked per op from a per-thread generator.
enum Op { kFind, kWrite, kIterate };

struct Workload {
  const char *name;
  // The op for random bits `r` in phase 0, 1 or 2 (thirds of the run).
  std::function<Op(uint64_t r, int phase)> op;
  std::function<long(uint64_t r)> key;
  bool phased = false;  // scored by the harmonic mean of its phases' rates
};

long UniformKey(uint64_t r) { return long(r % kKeys); }
// 90% of operations on 4 keys.
long HotKey(uint64_t r) { return (r >> 32) % 10 < 9 ? long(r % 4) : long(r % kKeys); }

const std::vector<Workload> &Workloads() {
  static const std::vector<Workload> w = {
      {"read-only", [](uint64_t, int) { return kFind; }, UniformKey},
      {"95/5", [](uint64_t r, int) { return (r >> 40) % 100 < 95 ? kFind : kWrite; }, UniformKey},
      {"50/50", [](uint64_t r, int) { return (r >> 40) % 100 < 50 ? kFind : kWrite; }, UniformKey},
      {"write-heavy", [](uint64_t r, int) { return (r >> 40) % 100 < 10 ? kFind : kWrite; }, UniformKey},
      {"hot-keys", [](uint64_t r, int) { return (r >> 40) % 100 < 50 ? kFind : kWrite; }, HotKey},
      {"iteration", [](uint64_t r, int) {
         unsigned p = (r >> 40) % 1000;
         return p < 2 ? kIterate : p < 3 ? kWrite : kFind;
       }, UniformKey},
      // A cache: only read, then rebuilt (half writes) in the middle third,
      // then only read again. Each phase has a different best strategy.
      {"phased", [](uint64_t r, int phase) {
         return phase != 1 || (r >> 40) % 2 ? kFind : kWrite;
       }, UniformKey, true},
  };
  return w;
}

// Each implementation: find, write (insert_or_assign), iterate (sum of
// values; 0 if the implementation cannot iterate safely while others write).
struct Impl {
  virtual ~Impl() = default;
  virtual long Find(long k) = 0;
  virtual void Write(long k, long v) = 0;
  virtual long Iterate() = 0;
  virtual bool CanIterate() const { return true; }
  virtual void Fill() {
    for (long k = 0; k < kKeys; k++) Write(k, k);
  }
  virtual std::string Note() const { return ""; }
};

struct GuardedImpl : Impl {
  mapguard::guarded<Map> g;
  explicit GuardedImpl(mapguard::Strategy s) : g(s) {}
  long Find(long k) override {
    auto v = g.find(k);
    return v ? *v : 0;
  }
  void Write(long k, long v) override { g.insert_or_assign(k, v); }
  void Fill() override {  // one whole-map write: a copy-on-write guard copies once
    g.write([](Map &m) {
      for (long k = 0; k < kKeys; k++) m[k] = k;
    });
  }
  long Iterate() override {
    return g.read([](const Map &m) {
      long s = 0;
      for (const auto &kv : m) s += kv.second;
      return s;
    });
  }
  std::string Note() const override {
    return std::string(mapguard::StrategyName(g.strategy())) + ", " + std::to_string(g.switches()) +
           " switches";
  }
};

// A std::unordered_map under one lock: readers take ReadLock, writers
// std::unique_lock (std::mutex: both exclusive; std::shared_mutex: readers share).
template <class Mutex, class ReadLock>
struct LockedImpl : Impl {
  Mutex mu;
  Map m;
  long Find(long k) override {
    ReadLock g(mu);
    auto it = m.find(k);
    return it == m.end() ? 0 : it->second;
  }
  void Write(long k, long v) override {
    std::unique_lock<Mutex> g(mu);
    m.insert_or_assign(k, v);
  }
  long Iterate() override {
    ReadLock g(mu);
    long s = 0;
    for (const auto &kv : m) s += kv.second;
    return s;
  }
};
using MutexImpl = LockedImpl<std::mutex, std::lock_guard<std::mutex>>;
using SharedMutexImpl = LockedImpl<std::shared_mutex, std::shared_lock<std::shared_mutex>>;

struct TbbImpl : Impl {
  tbb::concurrent_hash_map<long, long> m;
  long Find(long k) override {
    tbb::concurrent_hash_map<long, long>::const_accessor a;
    return m.find(a, k) ? a->second : 0;
  }
  void Write(long k, long v) override {
    tbb::concurrent_hash_map<long, long>::accessor a;
    m.insert(a, k);
    a->second = v;
  }
  // Its traversal is not safe while others insert or erase (TBB's docs).
  long Iterate() override { return 0; }
  bool CanIterate() const override { return false; }
};

#ifdef HAVE_CUCKOO
struct CuckooImpl : Impl {
  libcuckoo::cuckoohash_map<long, long> m;
  long Find(long k) override {
    long v = 0;
    m.find(k, v);
    return v;
  }
  void Write(long k, long v) override { m.insert_or_assign(k, v); }
  long Iterate() override {
    auto lt = m.lock_table();  // takes every lock
    long s = 0;
    for (const auto &kv : lt) s += kv.second;
    return s;
  }
};
#endif

struct ImplKind {
  const char *name;
  std::function<std::unique_ptr<Impl>()> make;
};

const std::vector<ImplKind> &Impls() {
  using S = mapguard::Strategy;
  static const std::vector<ImplKind> v = {
      {"guarded adaptive", [] { return std::make_unique<GuardedImpl>(S::kAdaptive); }},
      {"guarded mutex", [] { return std::make_unique<GuardedImpl>(S::kMutex); }},
      {"guarded reader-writer", [] { return std::make_unique<GuardedImpl>(S::kReaderWriter); }},
      {"guarded sharded", [] { return std::make_unique<GuardedImpl>(S::kSharded); }},
      {"guarded copy-on-write", [] { return std::make_unique<GuardedImpl>(S::kCopyOnWrite); }},
      {"std::mutex", [] { return std::make_unique<MutexImpl>(); }},
      {"std::shared_mutex", [] { return std::make_unique<SharedMutexImpl>(); }},
      {"tbb::concurrent_hash_map", [] { return std::make_unique<TbbImpl>(); }},
#ifdef HAVE_CUCKOO
      {"libcuckoo", [] { return std::make_unique<CuckooImpl>(); }},
#endif
  };
  return v;
}

// Mops/s of `threads` threads over `seconds`, after `warmup` seconds.
double Run(const Workload &w, const ImplKind &kind, int threads, double seconds, double warmup,
           std::string *note) {
  std::unique_ptr<Impl> impl = kind.make();
  if (!impl->CanIterate() && std::strcmp(w.name, "iteration") == 0) return -1;
  impl->Fill();
  std::atomic<int> ready{0}, phase{0};
  std::atomic<bool> go{false}, stop{false};
  std::atomic<long> sink{0}, total{0}, counted{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++)
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(uint64_t(t) * 0x9e3779b97f4a7c15ULL + 1);
      long local = 0, n = 0;
      ready++;
      while (!go.load(std::memory_order_acquire)) {
      }
      while (!stop.load(std::memory_order_relaxed)) {
        const int ph = phase.load(std::memory_order_relaxed);
        if (n) counted.fetch_add(64, std::memory_order_relaxed);
        for (int b = 0; b < 64; b++, n++) {
          uint64_t r = rng();
          switch (w.op(r, ph)) {
            case kFind: local += impl->Find(w.key(r)); break;
            case kWrite: impl->Write(w.key(r), n); break;
            case kIterate: local += impl->Iterate(); break;
          }
        }
      }
      sink += local;
      total += n;
    });
  while (ready.load() != threads) {
  }
  // A warm-up in the first phase's mix, not measured, for every
  // implementation alike: the adaptive guard finds its strategy here, as it
  // would early in a long-running program.
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  const long before = counted.load();
  auto t0 = std::chrono::steady_clock::now();
  // Each phase's own rate. A workload whose phases differ is scored as if
  // each phase had the same work to do: the harmonic mean of the phase
  // rates (time-weighted throughput would let a strategy that all but stops
  // in one phase win on the others).
  double rates[3];
  long mark = before;
  auto phase_start = t0;
  for (int ph = 0; ph < 3; ph++) {
    phase.store(ph);
    std::this_thread::sleep_until(t0 + std::chrono::duration<double>(seconds * (ph + 1) / 3));
    const long now_ops = counted.load();
    const auto now = std::chrono::steady_clock::now();
    rates[ph] = double(now_ops - mark) / std::chrono::duration<double>(now - phase_start).count() / 1e6;
    mark = now_ops;
    phase_start = now;
  }
  const long done_ops = counted.load() - before;
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  for (auto &th : ts) th.join();
  *note = impl->Note();
  if (w.phased) {
    double inv = 0;
    for (double r : rates) inv += 1 / std::max(r, 1e-6);
    return 3 / inv;
  }
  return double(done_ops) / s / 1e6;
}

}  // namespace

int main(int argc, char **argv) {
  double seconds = 0.3;
  int repeat = 3;
  std::vector<int> threads = {1, 2, 4};
  std::string only_workload, only_impl;
  bool json = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "guarded_bench: error: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seconds") seconds = std::atof(value().c_str());
    else if (a == "--repeat") repeat = std::atoi(value().c_str());
    else if (a == "--threads") {
      threads.clear();
      std::string v = value();
      for (size_t p = 0; p < v.size();) {
        size_t c = v.find(',', p);
        threads.push_back(std::atoi(v.substr(p, c - p).c_str()));
        p = c == std::string::npos ? v.size() : c + 1;
      }
    } else if (a == "--workload") only_workload = value();
    else if (a == "--impl") only_impl = value();
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr, "guarded_bench: error: unknown argument '%s' (--seconds S, --repeat N, --threads 1,2,4, "
                   "--workload NAME, --impl NAME, --json)\n", a.c_str());
      return 2;
    }
  }
  if (seconds <= 0 || repeat <= 0 || threads.empty()) {
    std::fprintf(stderr, "guarded_bench: error: --seconds, --repeat and --threads must be positive\n");
    return 2;
  }
  for (const Workload &w : Workloads()) {
    if (!only_workload.empty() && only_workload != w.name) continue;
    // Phases long enough to matter: a phase of a real program lasts longer
    // than one exploration of the adaptive guard (about 0.1 s).
    const double cell = std::strcmp(w.name, "phased") == 0 ? seconds * 5 : seconds;
    for (int t : threads) {
      std::vector<const ImplKind *> kinds;
      for (const ImplKind &k : Impls())
        if (only_impl.empty() || only_impl == k.name) kinds.push_back(&k);
      // Round-robin: each repetition runs every implementation once, so a
      // slow moment of the machine falls on all of them alike.
      std::vector<std::vector<double>> runs(kinds.size());
      std::vector<std::string> notes(kinds.size());
      for (int i = 0; i < repeat; i++)
        for (size_t k = 0; k < kinds.size(); k++) runs[k].push_back(Run(w, *kinds[k], t, cell, seconds, &notes[k]));
      for (size_t k = 0; k < kinds.size(); k++) {
        std::sort(runs[k].begin(), runs[k].end());
        double mops = runs[k][runs[k].size() / 2];
        if (json)
          std::printf("{\"workload\":\"%s\",\"threads\":%d,\"impl\":\"%s\",\"mops\":%.3f,\"note\":\"%s\"}\n",
                      w.name, t, kinds[k]->name, mops, notes[k].c_str());
        else
          std::printf("%-12s %d  %-26s %8.2f Mops/s  %s\n", w.name, t, kinds[k]->name, mops, notes[k].c_str());
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
