// mapguard::guarded<Map>: a map that can only be reached under its guard,
// and that picks its locking strategy while the program runs.
//
//   mapguard::guarded<std::unordered_map<std::string, int>> counts;
//   counts.update("hits", [](int &v) { v++; });
//   std::optional<int> v = counts.find("hits");
//   size_t n = counts.read([](const auto &m) { return m.size(); });
//
// Header-only, C++17, usable without the plugin. docs/guarded.md explains
// when to use it, the strategies and how it switches.
//
// Switching, and why every operation stays linearizable. The guard's state
// is one strategy object (an Impl) behind an atomic pointer. An operation
// loads it, takes the lock its strategy needs (a copy-on-write read takes
// none), and checks the Impl's `retired` flag under that lock: a retired
// Impl is never used, the operation starts again on the current one. A
// switch, serialized by switch_mu_, takes every lock of the current Impl
// exclusively, copies the contents into the new Impl, sets `retired` BEFORE
// it publishes the new Impl, and only then lets the old locks go. So:
//  - no write is lost or reordered: a write either ran before the switch
//    took the old locks (and its result moved over) or finds `retired` and
//    runs on the new Impl, after everything that moved;
//  - no read sees the past: a copy-on-write read checks `retired` after
//    reading its snapshot; not retired yet means the new Impl was not
//    published, so no write had gone past the snapshot it read.
//
// Copy-on-write snapshots are reclaimed with hazard slots: a reader
// publishes the snapshot it reads in its slot (seq_cst) and checks it is
// still current; a writer that replaced a snapshot frees it once no slot
// names it (else it waits in `limbo_` for a later write or switch). A read
// touches only its own slot's cache line: readers do not slow each other.
// Retired Impls stay allocated (emptied) until the guard dies, since a
// reader may still be looking at one; hysteresis keeps switches rare.
#ifndef MAPGUARD_GUARDED_H
#define MAPGUARD_GUARDED_H

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "mapguard/interface.h"

// Weak: without the runtime the pointer is null and nothing is reported.
extern "C" void __mapguard_guarded_switch(const void *guard, unsigned from, unsigned to,
                                          const char *why) __attribute__((weak));

namespace mapguard {

// The order is the runtime's too (mapguard_guarded_strategy_name).
enum class Strategy : uint8_t {
  kAdaptive,      // measure and switch (the default)
  kMutex,         // one std::mutex
  kReaderWriter,  // one std::shared_mutex: readers share it
  kSharded,       // shards by key hash, one mutex each; whole-map work takes them all
  kCopyOnWrite,   // readers read an immutable snapshot with no lock; a write copies
};

inline const char *StrategyName(Strategy s) { return mapguard_guarded_strategy_name(unsigned(s)); }

// A switch, and what the guard saw in the window that decided it (counts
// are sampled and scaled up; all zero for a pinned switch).
struct GuardedDecision {
  Strategy from, to;
  uint64_t reads, writes, whole_reads, whole_writes, waits, threads;
  size_t size;
  const char *why;
};

namespace guarded_detail {

// Sampling: one operation in kSampleEvery on average is counted, per
// thread, whatever guard it is on; the others cost a thread-local
// decrement. The gaps are random (1 to 2 * kSampleEvery - 1): a fixed period
// would alias with a loop doing a power of two of operations per turn and
// always count the same one (a `contains` and never the `insert` after it).
constexpr unsigned kSampleEvery = 32;
struct ThreadToken {
  unsigned countdown;
  uint32_t rng;
  unsigned id;  // small and distinct per thread (a hazard slot, a thread bit)
  ThreadToken() {
    static std::atomic<unsigned> next{0};
    id = next.fetch_add(1, std::memory_order_relaxed);
    rng = 0x9e3779b9u * (id + 1);
    countdown = NextGap();
  }
  unsigned NextGap() {  // xorshift32
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return 1 + rng % (2 * kSampleEvery - 1);
  }
  bool Sample() {
    sampled = --countdown == 0;
    if (sampled) countdown = NextGap();
    return sampled;
  }
  bool sampled = false;    // the operation under way is counted
  bool in_switch = false;  // running a switch's callback: no controller
};
inline ThreadToken &Me() {
  thread_local ThreadToken t;
  return t;
}

// Takes the lock; true if it had to wait. Only a counted operation tries
// first: under contention the extra try costs one more round trip of the
// lock's cache line, which every operation would pay.
template <class Lock, class TryLock>
bool CountingWait(Lock lock, TryLock try_lock) {
  if (Me().sampled && try_lock()) return false;
  lock();
  return Me().sampled;
}
template <class Mutex>
bool LockCountingWait(Mutex &m) {
  return CountingWait([&] { m.lock(); }, [&] { return m.try_lock(); });
}
template <class Mutex>
bool LockSharedCountingWait(Mutex &m) {
  return CountingWait([&] { m.lock_shared(); }, [&] { return m.try_lock_shared(); });
}

// Which hash picks a key's shard: the map's own hasher, or std::hash for an
// ordered map.
// Shards need the map's own hasher: a key's shard must follow the map's
// idea of equal keys, which an ordered map's comparator defines and no hash
// can follow. Ordered maps are therefore never sharded.
template <class Map, class = void>
struct HasHasher : std::false_type {};
template <class Map>
struct HasHasher<Map, std::void_t<typename Map::hasher>> : std::true_type {};

}  // namespace guarded_detail

template <class Map, size_t kShards = 16>
class guarded {
  static_assert(kShards >= 2 && (kShards & (kShards - 1)) == 0, "kShards: a power of two");

 public:
  using map_type = Map;
  using key_type = typename Map::key_type;
  using mapped_type = typename Map::mapped_type;
  using Callback = std::function<void(const GuardedDecision &)>;

  // kSharded on an ordered map starts as kMutex, adaptive (see pin).
  explicit guarded(Strategy pinned = Strategy::kAdaptive)
      : pinned_(pinned == Strategy::kSharded && !kCanShard ? Strategy::kAdaptive : pinned) {
    Strategy first = pinned_.load() == Strategy::kAdaptive ? Strategy::kMutex : pinned;
    impl_.store(pool_[unsigned(first)] = MakeImpl(first), std::memory_order_release);
  }
  guarded(const guarded &) = delete;
  guarded &operator=(const guarded &) = delete;
  ~guarded() {
    for (Impl *im : pool_) {
      if (!im) continue;
      delete im->snap.load(std::memory_order_relaxed);
      delete im;
    }
    for (const Map *m : limbo_) delete m;
  }

  // ---- whole-map operations: `fn` gets the map and must not keep it ----
  // fn(const Map&). Sharded: the shards are merged into one map for fn.
  template <class Fn>
  auto read(Fn fn) const {
    Note(kWholeRead, nullptr);
    auto r = ReadWhole(ConstReturning(fn));
    if constexpr (std::is_same_v<decltype(r), Nothing>) return;
    else return r;
  }

  // fn(Map&). Sharded: the shards are merged for fn and split again after.
  template <class Fn>
  auto write(Fn fn) {
    Note(kWholeWrite, nullptr);
    auto r = Mutate(Returning(fn), nullptr);
    if constexpr (std::is_same_v<decltype(r), Nothing>) return;
    else return r;
  }

  // ---- per-key operations ----
  std::optional<mapped_type> find(const key_type &k) const {
    return ReadKey(k, [&](const Map &m) -> std::optional<mapped_type> {
      auto it = m.find(k);
      if (it == m.end()) return std::nullopt;
      return it->second;
    });
  }
  bool contains(const key_type &k) const {
    return ReadKey(k, [&](const Map &m) { return m.find(k) != m.end(); });
  }
  // Returns true if the key was new.
  template <class V>
  bool insert_or_assign(const key_type &k, V &&v) {
    Note(kWrite, &k);
    return Mutate([&](Map &m) { return m.insert_or_assign(k, std::forward<V>(v)).second; }, &k);
  }
  // Returns whether the key was there.
  bool erase(const key_type &k) {
    Note(kWrite, &k);
    return Mutate([&](Map &m) { return m.erase(k) != 0; }, &k);
  }
  // fn(mapped_type&) on the key's value, default-constructed if missing, as
  // one atomic step; returns what fn returns.
  template <class Fn>
  auto update(const key_type &k, Fn fn) {
    Note(kWrite, &k);
    auto on_value = [&](Map &m) { return fn(m[k]); };
    auto r = Mutate(Returning(on_value), &k);
    if constexpr (std::is_same_v<decltype(r), Nothing>) return;
    else return r;
  }
  size_t size() const {
    return read([](const Map &m) { return m.size(); });
  }

  // ---- strategy ----
  Strategy strategy() const { return impl_.load(std::memory_order_acquire)->strategy; }
  // Pins a strategy (switching to it now), or kAdaptive to measure again
  // (from scratch). False, and nothing changes, for kSharded on an ordered
  // map (see HasHasher).
  bool pin(Strategy s) {
    if (s == Strategy::kSharded && !kCanShard) return false;
    std::lock_guard<std::mutex> g(switch_mu_);
    if (s != Strategy::kAdaptive && s != strategy())
      SwitchLocked(s, GuardedDecision{strategy(), s, 0, 0, 0, 0, 0, 0, 0, "pinned"});
    pinned_.store(s, std::memory_order_relaxed);  // only once it holds
    ResetController();
    return true;
  }
  // Called at each switch (trials of an exploration included), after the map
  // locks are given up but under the guard's switch lock: it may use the
  // guard and call decisions(), not pin() or on_switch(). It must not throw.
  void on_switch(Callback cb) {
    std::lock_guard<std::mutex> g(switch_mu_);
    callback_ = std::move(cb);
  }
  uint64_t switches() const { return switches_.load(std::memory_order_relaxed); }
  // The latest decisions and switches, oldest first (from == to: the guard
  // measured and stayed).
  std::vector<GuardedDecision> decisions() const {
    std::lock_guard<std::mutex> g(history_mu_);
    return history_;
  }

 private:
  enum Kind { kRead, kWrite, kWholeRead, kWholeWrite, kKinds };
  static constexpr size_t kHazards = 32;

  struct alignas(64) Shard {
    std::mutex mu;
    Map map;
  };
  struct alignas(64) Hazard {
    std::atomic<const Map *> p{nullptr};
  };
  struct Impl {
    explicit Impl(Strategy s) : strategy(s) {}
    const Strategy strategy;
    std::atomic<bool> retired{false};
    std::mutex mu;          // kMutex; kCopyOnWrite's writers
    std::shared_mutex rw;   // kReaderWriter
    Map one;                // kMutex, kReaderWriter
    std::unique_ptr<Shard[]> shards;       // kSharded
    std::atomic<const Map *> snap{nullptr};  // kCopyOnWrite
  };

  // Takes every shard's lock, in order.
  struct AllShards {
    Impl *im;
    explicit AllShards(Impl *i) : im(i) {
      for (size_t s = 0; s < kShards; s++) im->shards[s].mu.lock();
    }
    ~AllShards() {
      for (size_t s = kShards; s-- > 0;) im->shards[s].mu.unlock();
    }
  };

  struct Nothing {};
  // fn(Map&) as a function that returns something (a void fn returns a
  // token the caller drops), so Mutate can hold its result.
  template <class Fn>
  static auto Returning(Fn &fn) {
    return [&fn](Map &m) {
      if constexpr (std::is_void_v<decltype(fn(m))>) {
        fn(m);
        return Nothing{};
      } else {
        return fn(m);
      }
    };
  }
  template <class Fn>
  static auto ConstReturning(Fn &fn) {
    return [&fn](const Map &m) {
      if constexpr (std::is_void_v<decltype(fn(m))>) {
        fn(m);
        return Nothing{};
      } else {
        return fn(m);
      }
    };
  }

  template <class Fn>
  auto ReadWhole(Fn fn) const {
    for (;;) {
      Impl *im = impl_.load(std::memory_order_acquire);
      switch (im->strategy) {
        case Strategy::kCopyOnWrite: {
          std::optional<decltype(fn(std::declval<const Map &>()))> r;
          if (!ReadSnapshot(im, [&](const Map &m) { r.emplace(fn(m)); })) continue;
          return std::move(*r);
        }
        case Strategy::kReaderWriter: {
          std::shared_lock<std::shared_mutex> g(im->rw);
          if (Retired(im)) continue;
          return fn(static_cast<const Map &>(im->one));
        }
        case Strategy::kSharded: {
          AllShards all(im);
          if (Retired(im)) continue;
          Map merged;
          for (size_t s = 0; s < kShards; s++)
            merged.insert(im->shards[s].map.begin(), im->shards[s].map.end());
          return fn(static_cast<const Map &>(merged));
        }
        default: {
          std::lock_guard<std::mutex> g(im->mu);
          if (Retired(im)) continue;
          return fn(static_cast<const Map &>(im->one));
        }
      }
    }
  }

  static constexpr bool kCanShard = guarded_detail::HasHasher<Map>::value;

  static size_t ShardOf(const key_type &k) {
    if constexpr (!kCanShard) {
      (void)k;
      return 0;
    } else {
      return ShardOfHashed(k);
    }
  }
  template <class K>
  static size_t ShardOfHashed(const K &k) {
    uint64_t h = uint64_t(typename Map::hasher()(k));
    h ^= h >> 33;  // std::hash<int> is the identity: mix before taking bits
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return size_t(h & (kShards - 1));
  }

  // A retired Impl is left alone: wait for its successor and start again.
  bool Retired(Impl *im) const {
    if (!im->retired.load(std::memory_order_acquire)) return false;
    // Until its successor is published (or it is current again, reused).
    while (impl_.load(std::memory_order_acquire) == im && im->retired.load(std::memory_order_acquire))
      std::this_thread::yield();
    return true;
  }

  Impl *MakeImpl(Strategy s) {
    Impl *im = new Impl(s);
    if (s == Strategy::kSharded) im->shards.reset(new Shard[kShards]);
    if (s == Strategy::kCopyOnWrite) im->snap.store(new Map(), std::memory_order_release);  // owned by im
    return im;
  }

  // ---- copy-on-write ----
  // Runs fn once on the current snapshot of `im` under a hazard slot; false,
  // without running fn, if `im` is retired (the caller starts again). The
  // retired check comes after the snapshot is validated and before fn: not
  // retired then means no write had gone to the successor, so the snapshot
  // is the current state (and a retired Impl's emptied snapshot is never
  // what fn sees: it is emptied after `retired` is set).
  template <class Fn>
  bool ReadSnapshot(Impl *im, Fn fn) const {
    const unsigned me = guarded_detail::Me().id;
    struct Release {  // the slot is given back even if fn throws
      Hazard *h = nullptr;
      ~Release() {
        if (h) h->p.store(nullptr, std::memory_order_release);
      }
    };
    for (;;) {
      const Map *p = im->snap.load(std::memory_order_acquire);
      Hazard *h = nullptr;
      for (size_t i = 0; i < kHazards && !h; i++) {
        Hazard &c = hazards_[(me + i) % kHazards];
        const Map *none = nullptr;
        if (c.p.compare_exchange_strong(none, p, std::memory_order_seq_cst)) h = &c;
      }
      if (!h) {  // more readers than slots: read under the writers' lock
        std::lock_guard<std::mutex> g(im->mu);
        if (Retired(im)) return false;
        fn(*im->snap.load(std::memory_order_relaxed));
        return true;
      }
      Release held{h};
      if (im->snap.load(std::memory_order_seq_cst) != p) continue;  // replaced meanwhile
      if (Retired(im)) return false;
      // Once more after the check: an Impl reused by a switch gets its new
      // snapshot before `retired` is cleared, so a reader that saw it cleared
      // and still holds the old (empty) snapshot sees the change here.
      if (im->snap.load(std::memory_order_seq_cst) != p) continue;
      fn(*p);
      return true;
    }
  }
  // Replaces the snapshot of `im` (its writers' lock held) and frees the
  // old one, now or when no reader holds it.
  // A throw (no memory for limbo_) leaves the snapshot as it was.
  void Publish(Impl *im, std::unique_ptr<const Map> next) {
    std::lock_guard<std::mutex> g(limbo_mu_);
    limbo_.reserve(limbo_.size() + 1);
    const Map *old = im->snap.exchange(next.release(), std::memory_order_seq_cst);
    limbo_.push_back(old);
    limbo_.erase(std::remove_if(limbo_.begin(), limbo_.end(),
                                [&](const Map *m) {
                                  for (const Hazard &h : hazards_)
                                    if (h.p.load(std::memory_order_seq_cst) == m) return false;
                                  delete m;
                                  return true;
                                }),
                 limbo_.end());
  }

  template <class Fn>
  auto ReadKey(const key_type &k, Fn fn) const {
    Note(kRead, &k);
    for (;;) {
      Impl *im = impl_.load(std::memory_order_acquire);
      bool waited = false;
      switch (im->strategy) {
        case Strategy::kCopyOnWrite: {
          std::optional<decltype(fn(std::declval<const Map &>()))> r;
          if (!ReadSnapshot(im, [&](const Map &m) { r.emplace(fn(m)); })) continue;
          return std::move(*r);
        }
        case Strategy::kReaderWriter: {
          waited = guarded_detail::LockSharedCountingWait(im->rw);
          std::shared_lock<std::shared_mutex> g(im->rw, std::adopt_lock);
          NoteWait(waited);
          if (Retired(im)) continue;
          return fn(static_cast<const Map &>(im->one));
        }
        case Strategy::kSharded: {
          Shard &sh = im->shards[ShardOf(k)];
          waited = guarded_detail::LockCountingWait(sh.mu);
          std::lock_guard<std::mutex> g(sh.mu, std::adopt_lock);
          NoteWait(waited);
          if (Retired(im)) continue;
          return fn(static_cast<const Map &>(sh.map));
        }
        default: {
          waited = guarded_detail::LockCountingWait(im->mu);
          std::lock_guard<std::mutex> g(im->mu, std::adopt_lock);
          NoteWait(waited);
          if (Retired(im)) continue;
          return fn(static_cast<const Map &>(im->one));
        }
      }
    }
  }

  // fn(Map&) on the map that holds `key` (null: the whole map).
  template <class Fn>
  auto Mutate(Fn fn, const key_type *key) {
    for (;;) {
      Impl *im = impl_.load(std::memory_order_acquire);
      bool waited = false;
      switch (im->strategy) {
        case Strategy::kCopyOnWrite: {
          waited = guarded_detail::LockCountingWait(im->mu);
          std::lock_guard<std::mutex> g(im->mu, std::adopt_lock);
          NoteWait(waited);
          if (Retired(im)) continue;
          std::unique_ptr<Map> next(new Map(*im->snap.load(std::memory_order_relaxed)));
          auto result = fn(*next);  // a throw leaves the snapshot as it was
          NoteSize(next->size());
          Publish(im, std::move(next));
          return result;
        }
        case Strategy::kReaderWriter: {
          waited = guarded_detail::LockCountingWait(im->rw);
          std::unique_lock<std::shared_mutex> g(im->rw, std::adopt_lock);
          NoteWait(waited);
          if (Retired(im)) continue;
          auto result = fn(im->one);
          NoteSize(im->one.size());
          return result;
        }
        case Strategy::kSharded: {
          if (!key) {
            AllShards all(im);
            if (Retired(im)) continue;
            Map merged;
            size_t n = 0;
            for (size_t s = 0; s < kShards; s++) n += im->shards[s].map.size();
            Reserve(merged, n);  // no rehash (and no throw) inside the merge
            struct SplitBack {  // even if fn throws: the map is never lost
              Impl *im;
              Map &m;
              ~SplitBack() { Split(im, std::move(m)); }
            } split_back{im, merged};
            for (size_t s = 0; s < kShards; s++) merged.merge(im->shards[s].map);
            auto result = fn(merged);
            NoteSize(merged.size());
            return result;
          }
          Shard &sh = im->shards[ShardOf(*key)];
          waited = guarded_detail::LockCountingWait(sh.mu);
          std::lock_guard<std::mutex> g(sh.mu, std::adopt_lock);
          NoteWait(waited);
          if (Retired(im)) continue;
          auto result = fn(sh.map);
          NoteSize(sh.map.size() * kShards);
          return result;
        }
        default: {
          waited = guarded_detail::LockCountingWait(im->mu);
          std::lock_guard<std::mutex> g(im->mu, std::adopt_lock);
          NoteWait(waited);
          if (Retired(im)) continue;
          auto result = fn(im->one);
          NoteSize(im->one.size());
          return result;
        }
      }
    }
  }

  static void Split(Impl *im, Map &&all) {
    while (!all.empty()) {
      auto node = all.extract(all.begin());
      try {
        im->shards[ShardOf(node.key())].map.insert(std::move(node));
      } catch (...) {  // the node is still ours: back where it came from (no growth there)
        if (!node.empty()) all.insert(std::move(node));
        throw;
      }
    }
  }

  // ---- switching (under switch_mu_) ----
  // Locks every lock of an Impl exclusively, for a switch.
  struct Exclusive {
    std::unique_lock<std::mutex> mu;
    std::unique_lock<std::shared_mutex> rw;
    std::optional<AllShards> all;
    explicit Exclusive(Impl *im) : mu(im->mu), rw(im->rw) {
      if (im->strategy == Strategy::kSharded) all.emplace(im);
    }
  };

  // At most one Impl per strategy ever exists: a switch back to a strategy
  // reuses its retired Impl (emptied when it was retired), so memory stays
  // bounded however often the guard switches. An operation still holding a
  // pointer to it is fine either way: it sees `retired` and starts again,
  // or, once the Impl is current again, `retired` clear and proceeds on it.
  void SwitchLocked(Strategy to, GuardedDecision why) {
    Impl *old = impl_.load(std::memory_order_acquire);
    if (old->strategy == to) return;
    // Everything that can throw happens before `retired` is set: a switch
    // that fails leaves the guard as it was.
    Impl *next = pool_[unsigned(to)];
    if (!next) next = pool_[unsigned(to)] = MakeImpl(to);  // owned by pool_ from here
    std::unique_ptr<const Map> emptied(old->strategy == Strategy::kCopyOnWrite ? new Map() : nullptr);
    {
      // Every lock of the old Impl (no operation is inside it; copy-on-write
      // readers hold none and check `retired`). Not the next one's: a reused
      // Impl is still retired while it is filled, so an operation that holds
      // one of its locks only reads `retired` and starts again; it proceeds
      // only after `retired` is cleared (a release it acquires), when the
      // Impl is complete and current. Taking its locks too would order
      // Impl locks differently from switch to switch (A then B, B then A):
      // no deadlock (switch_mu_ serializes switches) but a lock-order
      // report from ThreadSanitizer in every program that uses a guard.
      Exclusive old_locks(old);
      // What the switch costs the program: every operation waits from here.
      const auto started = std::chrono::steady_clock::now();
      {
        // Room for the snapshots the switch retires, taken while no writer
        // of `old` can publish: Publish below then cannot throw.
        std::lock_guard<std::mutex> g(limbo_mu_);
        limbo_.reserve(limbo_.size() + 2);
      }
      Map contents;
      switch (old->strategy) {
        case Strategy::kSharded: {
          size_t n = 0;
          for (size_t s = 0; s < kShards; s++) n += old->shards[s].map.size();
          Reserve(contents, n);  // no rehash (and no throw) inside the merge
          for (size_t s = 0; s < kShards; s++) contents.merge(old->shards[s].map);
          break;
        }
        case Strategy::kCopyOnWrite:  // copied: a reader may be in it
          contents = *old->snap.load(std::memory_order_relaxed);
          break;
        default:
          contents.swap(old->one);
          break;
      }
      try {
        switch (to) {
          case Strategy::kSharded: Split(next, std::move(contents)); break;
          case Strategy::kCopyOnWrite:
            Publish(next, std::unique_ptr<const Map>(new Map(std::move(contents))));
            break;
          default: next->one = std::move(contents); break;
        }
      } catch (...) {  // put back what was taken out
        if (to == Strategy::kSharded)
          for (size_t s = 0; s < kShards; s++) contents.merge(next->shards[s].map);
        if (old->strategy == Strategy::kSharded) Split(old, std::move(contents));
        else if (old->strategy != Strategy::kCopyOnWrite) old->one.swap(contents);
        throw;
      }
      // No throw from here on.
      old->retired.store(true, std::memory_order_seq_cst);  // before `next` is seen
      next->retired.store(false, std::memory_order_seq_cst);
      if (emptied) Publish(old, std::move(emptied));  // readers that see it see `retired`
      if (old->strategy == Strategy::kSharded)  // give back the shards' bucket arrays
        for (size_t s = 0; s < kShards; s++) Map().swap(old->shards[s].map);
      if (old->strategy != Strategy::kCopyOnWrite && old->strategy != Strategy::kSharded)
        Map().swap(old->one);
      impl_.store(next, std::memory_order_release);
      switches_.fetch_add(1, std::memory_order_relaxed);
      switch_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    }  // the locks go before anyone hears of the switch
    why.from = old->strategy;
    why.to = to;
    Remember(why);
    guarded_detail::ThreadToken &me = guarded_detail::Me();
    me.in_switch = true;  // a callback that uses a guard must not re-enter the controller
    // The runtime hears decisions, not every trial of an exploration.
    if (__mapguard_guarded_switch && why.why != kExploring)
      __mapguard_guarded_switch(this, unsigned(why.from), unsigned(to), why.why);
    if (callback_) callback_(why);
    me.in_switch = false;
  }

  // reserve(n) where the map has it (hash maps); nothing for ordered maps.
  template <class M>
  static auto ReserveImpl(M &m, size_t n, int) -> decltype(m.reserve(n), void()) {
    m.reserve(n);
  }
  template <class M>
  static void ReserveImpl(M &, size_t, long) {}
  static void Reserve(Map &m, size_t n) { ReserveImpl(m, n, 0); }

  void Remember(const GuardedDecision &d) {
    std::lock_guard<std::mutex> g(history_mu_);
    history_.push_back(d);
    if (history_.size() > kHistory) history_.erase(history_.begin());
  }

  // ---- measuring (adaptive) ----
  void Note(Kind k, const key_type *key) const {
    guarded_detail::ThreadToken &me = guarded_detail::Me();
    if (!me.Sample()) return;
    counts_[k].fetch_add(1, std::memory_order_relaxed);
    if (kCanShard && key) shard_hits_[ShardOf(*key)].fetch_add(1, std::memory_order_relaxed);
    const uint64_t bit = uint64_t(1) << (me.id % 64);
    if (!(thread_bits_.load(std::memory_order_relaxed) & bit))
      thread_bits_.fetch_or(bit, std::memory_order_relaxed);
    // Every 8 samples the window may close: on count (kWindow samples), or
    // on time when operations have become slow (a strategy that suits the
    // mix no more must not keep the controller waiting for its samples).
    if ((samples_.fetch_add(1, std::memory_order_relaxed) + 1) % 8 == 0)
      const_cast<guarded *>(this)->Decide();
  }
  void NoteWait(bool waited) const {
    if (waited) waits_.fetch_add(1, std::memory_order_relaxed);
  }
  void NoteSize(size_t n) { approx_size_.store(n, std::memory_order_relaxed); }

  // A window is at least kWindow sampled operations (kWindow * kSampleEvery
  // real ones) and at least kWindowTime: shorter than a scheduler time slice,
  // a window would see only the threads that happened to run.
  static constexpr uint64_t kWindow = 256;
  static constexpr std::chrono::milliseconds kWindowTime{10};
  static constexpr std::chrono::milliseconds kSlowWindowTime{50};  // closes with fewer samples
  // Each strategy tried is measured over this many windows (after the one in
  // which it was switched to); a settled guard explores again after
  // kSettledWindows, or as soon as its mix of operations changes.
  static constexpr int kTrialWindows = 2;
  static constexpr int kSettledWindows = 500;
  static constexpr size_t kHistory = 1000;  // decisions() keeps the latest

  struct Window {
    uint64_t c[kKinds];
    uint64_t waits, threads, hottest_shard, keyed;
    size_t size;
    double seconds;
  };

  // What kind of mix a window had. A change of the mix means the best
  // strategy may have changed: the write share or the whole-map share moved
  // by 3x or more (against a floor of 0.5%, so 1% vs 1.2% is noise, 1% vs
  // 10% is not), or one thread became several or back.
  struct Mix {
    double writes = -1, whole = 0;  // shares of the operations; -1: none yet
    bool many = false;
  };
  static Mix MixOf(const Window &w) {
    const uint64_t reads = w.c[kRead] + w.c[kWholeRead], writes = w.c[kWrite] + w.c[kWholeWrite];
    const uint64_t total = reads + writes;
    Mix m;
    if (!total) return m;
    m.writes = double(writes) / double(total);
    m.whole = double(w.c[kWholeRead] + w.c[kWholeWrite]) / double(total);
    m.many = w.threads > 1;
    return m;
  }
  static bool MixChanged(const Mix &a, const Mix &b) {
    if (a.writes < 0 || b.writes < 0) return a.writes != b.writes;
    auto far = [](double x, double y) {
      x += 0.005;
      y += 0.005;
      return x > 3 * y || y > 3 * x;
    };
    return a.many != b.many || far(a.writes, b.writes) || far(a.whole, b.whole);
  }

  void Decide() {
    if (guarded_detail::Me().in_switch) return;  // a switch callback using a guard
    const auto now_time = std::chrono::steady_clock::now();
    Window w{};
    {
      // One window closes at a time: its counts are taken under window_mu_.
      std::lock_guard<std::mutex> g(window_mu_);
      const auto age = now_time - window_start_;
      const uint64_t samples = samples_.load(std::memory_order_relaxed);
      if (age < kWindowTime || (samples < kWindow && age < kSlowWindowTime)) return;  // keep counting
      w.seconds = std::chrono::duration<double>(age).count();
      window_start_ = now_time;
      samples_.store(0, std::memory_order_relaxed);
      for (int i = 0; i < kKinds; i++) w.c[i] = counts_[i].exchange(0, std::memory_order_relaxed);
      for (auto &h : shard_hits_) {
        uint64_t n = h.exchange(0, std::memory_order_relaxed);
        w.keyed += n;
        w.hottest_shard = std::max(w.hottest_shard, n);
      }
      w.waits = waits_.exchange(0, std::memory_order_relaxed);
      // Threads seen in this window or the two before: threads blocked
      // behind a slow strategy (copy-on-write writers queued on its lock)
      // are still there.
      const uint64_t bits = thread_bits_.exchange(0, std::memory_order_relaxed);
      w.threads = uint64_t(__builtin_popcountll(bits | recent_thread_bits_[0] | recent_thread_bits_[1]));
      recent_thread_bits_[1] = recent_thread_bits_[0];
      recent_thread_bits_[0] = bits;
    }
    std::unique_lock<std::mutex> g(switch_mu_, std::try_to_lock);
    if (!g.owns_lock() || pinned_.load(std::memory_order_relaxed) != Strategy::kAdaptive) return;
    const Strategy now = strategy();
    w.size = now == Strategy::kCopyOnWrite ? CurrentSnapshotSize() : approx_size_.load();
    try {
      Explore(w, now);
    } catch (...) {  // a switch that could not allocate: the guard is as it was
      ResetController();
    }
  }

  // The controller: measure the strategies that can win this mix, one after
  // the other, keep the fastest (by operations per second), and settle.
  //   settled --(mix changed two windows in a row, or kSettledWindows x
  //             backoff)--> exploring, unless the last exploration's
  //             switches cost more than 1% of the time since it ended;
  //             --(mix changed and operations 4x slower)--> exploring at
  //             once, the current strategy counted as measured
  //   exploring --(every candidate measured)--> settled on the fastest;
  //             backoff doubles (to 64) when that is the strategy it had
  // The current strategy wins ties within 5%: a switch copies the map, and
  // on a large map a switch stalls every operation while it copies.
  void Explore(const Window &w, Strategy now) {
    const uint64_t total = (w.c[kRead] + w.c[kWrite] + w.c[kWholeRead] + w.c[kWholeWrite]);
    const double rate = double(total * guarded_detail::kSampleEvery) / w.seconds;
    const Mix mix = MixOf(w);
    if (!exploring_) {
      bool changed = MixChanged(mix, settled_mix_);
      changed_windows_ = changed ? changed_windows_ + 1 : 0;
      // A changed mix that also made operations 4x slower is acted on at once.
      const bool collapsed = changed && rate * 4 < settled_rate_;
      if (!collapsed && changed_windows_ < 2 && ++settled_windows_ < kSettledWindows * backoff_)
        return;
      if (!collapsed && std::chrono::steady_clock::now() < next_exploration_) return;
      // Start: the current strategy first (measured without a switch).
      switch_seconds_at_start_ = switch_seconds_;
      exploring_ = true;
      trials_.clear();
      for (Strategy s : Candidates(w)) trials_.push_back({s, 0, 0});
      for (size_t i = 1; i < trials_.size(); i++)
        if (trials_[i].s == now) std::swap(trials_[0], trials_[i]);
      trial_ = 0;
      skip_ = trials_.empty() || trials_[0].s != now;  // the window of a switch is not measured
      if (trials_.empty()) return;
      if (collapsed && trials_[0].s == now) {
        // Already measured, badly: go straight to the next candidate.
        trials_[0].rate = rate * kTrialWindows;
        trials_[0].windows = kTrialWindows;
        if (trials_.size() == 1) return;
        trial_ = 1;
        skip_ = true;
        SwitchLocked(trials_[1].s, Decision(w, now, trials_[1].s, kExploring));
        return;
      }
      if (trials_[0].s != now) SwitchLocked(trials_[0].s, Decision(w, now, trials_[0].s, kExploring));
      return;
    }
    Trial &t = trials_[trial_];
    if (skip_) {
      skip_ = false;
    } else if (now == t.s) {
      t.rate += rate;
      t.windows++;
    }
    if (t.windows < kTrialWindows) return;
    if (++trial_ < trials_.size()) {
      skip_ = true;
      SwitchLocked(trials_[trial_].s, Decision(w, now, trials_[trial_].s, kExploring));
      return;
    }
    // Every candidate measured: the fastest, the incumbent winning ties.
    const Trial *best = nullptr, *incumbent = nullptr;
    for (const Trial &c : trials_) {
      if (!best || c.rate > best->rate) best = &c;
      if (c.s == settled_) incumbent = &c;
    }
    Strategy pick = best->s;
    if (incumbent && incumbent->rate * 1.05 >= best->rate) pick = incumbent->s;
    backoff_ = pick == settled_ ? std::min(backoff_ * 2, 64) : 1;
    for (const Trial &c : trials_)
      if (c.s == pick) settled_rate_ = c.rate / std::max(c.windows, 1);
    exploring_ = false;
    settled_ = pick;
    settled_mix_ = mix;
    settled_windows_ = 0;
    changed_windows_ = 0;
    if (pick != strategy()) {
      SwitchLocked(pick, Decision(w, strategy(), pick, Why(w, pick)));
    } else {  // already on it (the last one measured): a decision, not a switch
      Remember(Decision(w, pick, pick, Why(w, pick)));
    }
    const double cost = switch_seconds_ - switch_seconds_at_start_;
    next_exploration_ = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(cost * 100));
  }

  // From scratch, settled on the current strategy (under switch_mu_).
  void ResetController() {
    exploring_ = false;
    trials_.clear();
    settled_ = strategy();
    settled_mix_ = Mix{};
    settled_rate_ = 0;
    settled_windows_ = changed_windows_ = 0;
    backoff_ = 1;
    next_exploration_ = {};
  }

  static constexpr const char *kExploring = "exploring: measuring this strategy";

  struct Trial {
    Strategy s;
    double rate;
    int windows;
  };

  // The strategies worth measuring for this mix: the locks always; shards
  // for per-key work from several threads; copy-on-write unless its copies
  // would cost more than 64 elements per read (hopeless, not worth a trial).
  static std::vector<Strategy> Candidates(const Window &w) {
    const uint64_t reads = w.c[kRead] + w.c[kWholeRead];
    const uint64_t writes = w.c[kWrite] + w.c[kWholeWrite];
    const uint64_t whole = w.c[kWholeRead] + w.c[kWholeWrite];
    std::vector<Strategy> v = {Strategy::kMutex, Strategy::kReaderWriter};
    if (kCanShard && w.threads > 1 && whole * 100 <= reads + writes) v.push_back(Strategy::kSharded);
    if ((writes + 1) * (w.size + 1) <= reads * 64) v.push_back(Strategy::kCopyOnWrite);
    return v;
  }

  // Why a measured winner suits the mix (for on_switch, print_stats).
  static const char *Why(const Window &w, Strategy s) {
    const uint64_t writes = w.c[kWrite] + w.c[kWholeWrite];
    const uint64_t total = writes + w.c[kRead] + w.c[kWholeRead];
    switch (s) {
      case Strategy::kMutex:
        return w.threads <= 1 ? "fastest measured: one thread, one mutex"
                              : "fastest measured: threads rarely wait, or whole-map work";
      case Strategy::kReaderWriter: return "fastest measured: readers share the lock";
      case Strategy::kSharded: return "fastest measured: per-key writes spread over shards";
      case Strategy::kCopyOnWrite:
        return writes * 100 < total ? "fastest measured: writes rare, readers take no lock"
                                    : "fastest measured: readers take no lock";
      default: return "fastest measured";
    }
  }

  GuardedDecision Decision(const Window &w, Strategy from, Strategy to, const char *why) const {
    constexpr uint64_t k = guarded_detail::kSampleEvery;
    return GuardedDecision{from, to, w.c[kRead] * k, w.c[kWrite] * k, w.c[kWholeRead] * k,
                           w.c[kWholeWrite] * k, w.waits * k, w.threads, w.size, why};
  }

  size_t CurrentSnapshotSize() const {
    Impl *im = impl_.load(std::memory_order_acquire);
    size_t n = 0;
    ReadSnapshot(im, [&](const Map &m) { n = m.size(); });
    return n;
  }

  std::atomic<Impl *> impl_{nullptr};
  std::atomic<Strategy> pinned_;
  mutable std::mutex switch_mu_;   // switches, the controller, the callback
  mutable std::mutex history_mu_;  // history_ (so a callback may read it)
  // The controller (Explore), under switch_mu_.
  bool exploring_ = false, skip_ = false;
  std::vector<Trial> trials_;
  size_t trial_ = 0;
  Strategy settled_ = Strategy::kMutex;
  Mix settled_mix_;
  int settled_windows_ = 0, changed_windows_ = 0, backoff_ = 1;
  double switch_seconds_ = 0, switch_seconds_at_start_ = 0;  // time spent switching
  double settled_rate_ = 0;  // operations per second measured for the settled strategy
  uint64_t recent_thread_bits_[2] = {0, 0};  // the two windows before
  std::chrono::steady_clock::time_point next_exploration_{};
  Callback callback_;
  std::vector<GuardedDecision> history_;
  Impl *pool_[5] = {};  // the Impl of each strategy, once made; under switch_mu_
  std::atomic<uint64_t> switches_{0};
  mutable Hazard hazards_[kHazards];
  std::mutex limbo_mu_;
  std::vector<const Map *> limbo_;  // replaced snapshots a reader may still hold
  mutable std::atomic<uint64_t> counts_[kKinds] = {};
  mutable std::atomic<uint64_t> shard_hits_[kShards] = {};
  mutable std::atomic<uint64_t> thread_bits_{0};
  mutable std::atomic<uint64_t> samples_{0};
  std::mutex window_mu_;
  std::chrono::steady_clock::time_point window_start_ = std::chrono::steady_clock::now();
  mutable std::atomic<uint64_t> waits_{0};
  std::atomic<size_t> approx_size_{0};
};

}  // namespace mapguard

#endif  // MAPGUARD_GUARDED_H
