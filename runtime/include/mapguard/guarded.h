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
// How it stays linearizable across a switch. The guard's state is one
// Strategy object (an `Impl`) behind an atomic pointer. Every operation loads
// it, takes the lock its strategy needs (a copy-on-write read takes none),
// and checks `retired` under that lock: a retired Impl is never used, the
// operation starts again on the current one. A switch, serialized by
// `switch_mu_`, takes every lock of the current Impl exclusively, moves the
// contents into the new Impl, sets `retired` BEFORE it publishes the new
// one, and only then lets the old locks go. So:
//  - no write is lost: a write either ran before the switch took the old
//    locks (and its result moved over), or finds `retired` and redoes
//    itself on the new Impl;
//  - no read sees the past: a copy-on-write read checks `retired` after
//    reading its snapshot; if it was not retired yet, the new Impl was not
//    published, so no write had gone past the snapshot it read.
// Retired Impls stay allocated (their maps emptied) until the guard dies:
// a lock-free reader may still be looking at one. Hysteresis keeps switches
// rare (see Controller), so that is a few hundred bytes each.
#ifndef MAPGUARD_GUARDED_H
#define MAPGUARD_GUARDED_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace mapguard {

enum class Strategy : uint8_t {
  kAdaptive,      // measure and switch (the default)
  kMutex,         // one std::mutex
  kReaderWriter,  // one std::shared_mutex: readers share it
  kSharded,       // shards by key hash, one mutex each; whole-map work takes them all
  kCopyOnWrite,   // readers read an immutable snapshot with no lock; a write copies
};

inline const char *StrategyName(Strategy s) {
  switch (s) {
    case Strategy::kAdaptive: return "adaptive";
    case Strategy::kMutex: return "mutex";
    case Strategy::kReaderWriter: return "reader-writer";
    case Strategy::kSharded: return "sharded";
    case Strategy::kCopyOnWrite: return "copy-on-write";
  }
  return "?";
}

// What the guard saw in its last measuring window, and why it switched.
struct GuardedDecision {
  Strategy from, to;
  uint64_t reads, writes, whole_reads, whole_writes, waits;  // sampled, scaled up
  size_t size;
  const char *why;
};

namespace guarded_detail {

// Sampling: one operation in kSampleEvery is counted, per thread, whatever
// guard it is on: the counters cost a thread-local increment otherwise.
constexpr unsigned kSampleEvery = 32;
inline bool SampleThisOne() {
  thread_local unsigned tick = 0;
  return ++tick % kSampleEvery == 0;
}

template <class Mutex>
bool LockCountingWait(Mutex &m) {  // true if it had to wait
  if (m.try_lock()) return false;
  m.lock();
  return true;
}
template <class Mutex>
bool LockSharedCountingWait(Mutex &m) {
  if (m.try_lock_shared()) return false;
  m.lock_shared();
  return true;
}

// Which hash picks a key's shard: the map's own hasher, or std::hash for an
// ordered map.
template <class Map, class = void>
struct ShardHashOf {
  using type = std::hash<typename Map::key_type>;
};
template <class Map>
struct ShardHashOf<Map, std::void_t<typename Map::hasher>> {
  using type = typename Map::hasher;
};
template <class Map>
using ShardHash = typename ShardHashOf<Map>::type;

}  // namespace guarded_detail

template <class Map, size_t kShards = 16>
class guarded {
  static_assert(kShards >= 2 && (kShards & (kShards - 1)) == 0, "kShards: a power of two");

 public:
  using map_type = Map;
  using key_type = typename Map::key_type;
  using mapped_type = typename Map::mapped_type;
  using Callback = std::function<void(const GuardedDecision &)>;

  explicit guarded(Strategy pinned = Strategy::kAdaptive) : pinned_(pinned) {
    Strategy first = pinned == Strategy::kAdaptive ? Strategy::kMutex : pinned;
    impl_.store(Keep(MakeImpl(first)), std::memory_order_release);
  }
  guarded(const guarded &) = delete;
  guarded &operator=(const guarded &) = delete;

  // ---- whole-map operations: `fn` gets the map; it must not keep it ----
  // fn(const Map&). Sharded: the shards are merged into one map for fn.
  template <class Fn>
  auto read(Fn fn) const {
    Note(kWholeRead);
    for (;;) {
      Impl *im = impl_.load(std::memory_order_acquire);
      switch (im->strategy) {
        case Strategy::kCopyOnWrite: {
          std::shared_ptr<const Map> snap = LoadSnapshot(im);
          if (Retired(im)) continue;
          return fn(*snap);
        }
        case Strategy::kReaderWriter: {
          std::shared_lock<std::shared_mutex> g(im->rw);
          if (Retired(im)) continue;
          return fn(im->one);
        }
        case Strategy::kSharded: {
          AllShards all(im);
          if (Retired(im)) continue;
          Map merged = MergedCopy(im);
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

  // fn(Map&). Sharded: the shards are merged for fn and split again after.
  template <class Fn>
  auto write(Fn fn) {
    Note(kWholeWrite);
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
    Note(kWrite);
    return Mutate([&](Map &m) { return m.insert_or_assign(k, std::forward<V>(v)).second; }, &k);
  }
  // Returns whether the key was there.
  bool erase(const key_type &k) {
    Note(kWrite);
    return Mutate([&](Map &m) { return m.erase(k) != 0; }, &k);
  }
  // fn(mapped_type&) on the key's value, default-constructed if missing;
  // atomic with respect to every other operation.
  template <class Fn>
  auto update(const key_type &k, Fn fn) {
    Note(kWrite);
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
  // Pins a strategy (switching to it now), or kAdaptive to measure again.
  void pin(Strategy s) {
    std::lock_guard<std::mutex> g(switch_mu_);
    pinned_.store(s, std::memory_order_relaxed);
    if (s != Strategy::kAdaptive && s != strategy())
      SwitchLocked(s, GuardedDecision{strategy(), s, 0, 0, 0, 0, 0, 0, "pinned"});
  }
  // Called (under the guard's switch lock, not its map locks) at each switch.
  void on_switch(Callback cb) {
    std::lock_guard<std::mutex> g(switch_mu_);
    callback_ = std::move(cb);
  }
  uint64_t switches() const { return switches_.load(std::memory_order_relaxed); }
  std::vector<GuardedDecision> decisions() const {
    std::lock_guard<std::mutex> g(switch_mu_);
    return history_;
  }

  ~guarded() {
    for (Impl *im : all_impls_) delete im;
  }

 private:
  enum Kind { kRead, kWrite, kWholeRead, kWholeWrite, kKinds };

  struct alignas(64) Shard {
    std::mutex mu;
    Map map;
  };
  struct Impl {
    explicit Impl(Strategy s) : strategy(s) {}
    const Strategy strategy;
    std::atomic<bool> retired{false};
    std::mutex mu;          // kMutex; kCopyOnWrite's writers
    std::shared_mutex rw;   // kReaderWriter
    Map one;                // kMutex, kReaderWriter
    std::unique_ptr<Shard[]> shards;  // kSharded
#if __cplusplus >= 202002L
    std::atomic<std::shared_ptr<const Map>> snap;  // kCopyOnWrite
#else
    std::shared_ptr<const Map> snap;  // through std::atomic_load/store
#endif
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

  static std::shared_ptr<const Map> LoadSnapshot(Impl *im) {
#if __cplusplus >= 202002L
    return im->snap.load(std::memory_order_acquire);
#else
    return std::atomic_load_explicit(&im->snap, std::memory_order_acquire);
#endif
  }
  static void StoreSnapshot(Impl *im, std::shared_ptr<const Map> s) {
#if __cplusplus >= 202002L
    im->snap.store(std::move(s), std::memory_order_release);
#else
    std::atomic_store_explicit(&im->snap, std::move(s), std::memory_order_release);
#endif
  }

  static size_t ShardOf(const key_type &k) {
    uint64_t h = uint64_t(guarded_detail::ShardHash<Map>()(k));
    h ^= h >> 33;  // the low bits of std::hash<int> are the key itself
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return size_t(h & (kShards - 1));
  }

  // A retired Impl is left alone: wait for its successor and start again.
  bool Retired(Impl *im) const {
    if (!im->retired.load(std::memory_order_acquire)) return false;
    while (impl_.load(std::memory_order_acquire) == im) std::this_thread::yield();
    return true;
  }

  Impl *MakeImpl(Strategy s) {
    Impl *im = new Impl(s);
    if (s == Strategy::kSharded) im->shards.reset(new Shard[kShards]);
    if (s == Strategy::kCopyOnWrite) StoreSnapshot(im, std::make_shared<const Map>());
    return im;
  }
  Impl *Keep(Impl *im) {
    all_impls_.push_back(im);
    return im;
  }

  static Map MergedCopy(Impl *im) {
    Map merged;
    for (size_t s = 0; s < kShards; s++)
      for (const auto &kv : im->shards[s].map) merged.insert(kv);
    return merged;
  }

  template <class Fn>
  auto ReadKey(const key_type &k, Fn fn) const {
    Note(kRead);
    for (;;) {
      Impl *im = impl_.load(std::memory_order_acquire);
      bool waited = false;
      switch (im->strategy) {
        case Strategy::kCopyOnWrite: {
          std::shared_ptr<const Map> snap = LoadSnapshot(im);
          if (Retired(im)) continue;
          return fn(*snap);
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
          auto next = std::make_shared<Map>(*LoadSnapshot(im));
          auto result = fn(*next);
          NoteSize(next->size());
          StoreSnapshot(im, std::shared_ptr<const Map>(std::move(next)));
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
            for (size_t s = 0; s < kShards; s++) {
              merged.merge(im->shards[s].map);
              im->shards[s].map.clear();
            }
            auto result = fn(merged);
            NoteSize(merged.size());
            Split(im, std::move(merged));
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

  // fn(Map&) as a function that returns something (a void fn returns a
  // token the caller drops), so Mutate can hold its result.
  struct Nothing {};
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

  static void Split(Impl *im, Map &&all) {
    while (!all.empty()) {
      auto node = all.extract(all.begin());
      im->shards[ShardOf(node.key())].map.insert(std::move(node));
    }
  }

  // ---- switching (under switch_mu_) ----
  void SwitchLocked(Strategy to, GuardedDecision why) {
    Impl *old = impl_.load(std::memory_order_acquire);
    if (old->strategy == to) return;
    Impl *next = MakeImpl(to);
    // Every lock of the old Impl, exclusively: no operation is inside it.
    std::unique_lock<std::mutex> mu(old->mu);
    std::unique_lock<std::shared_mutex> rw(old->rw);
    std::optional<AllShards> all;
    if (old->strategy == Strategy::kSharded) all.emplace(old);
    Map contents;
    switch (old->strategy) {
      case Strategy::kSharded:
        for (size_t s = 0; s < kShards; s++) contents.merge(old->shards[s].map);
        break;
      case Strategy::kCopyOnWrite:
        // Copied, not emptied yet: a reader without a lock may be reading it
        // and must not see it empty before it can see `retired`.
        contents = *LoadSnapshot(old);
        break;
      default:
        contents = std::move(old->one);
        old->one.clear();
        break;
    }
    switch (to) {
      case Strategy::kSharded: Split(next, std::move(contents)); break;
      case Strategy::kCopyOnWrite:
        StoreSnapshot(next, std::make_shared<const Map>(std::move(contents)));
        break;
      default: next->one = std::move(contents); break;
    }
    old->retired.store(true, std::memory_order_release);  // before `next` is seen
    if (old->strategy == Strategy::kCopyOnWrite)
      StoreSnapshot(old, std::make_shared<const Map>());  // a reader now also sees `retired`
    impl_.store(Keep(next), std::memory_order_release);
    switches_.fetch_add(1, std::memory_order_relaxed);
    why.from = old->strategy;
    why.to = to;
    history_.push_back(why);
    if (callback_) callback_(why);
  }

  // ---- measuring (adaptive) ----
  void Note(Kind k) const {
    if (!guarded_detail::SampleThisOne()) return;
    counts_[k].fetch_add(1, std::memory_order_relaxed);
    if (samples_.fetch_add(1, std::memory_order_relaxed) + 1 == kWindow)
      const_cast<guarded *>(this)->Decide();
  }
  void NoteSize(size_t n) { approx_size_.store(n, std::memory_order_relaxed); }
  void NoteWait(bool waited) const {
    if (waited) waits_.fetch_add(1, std::memory_order_relaxed);
  }

  // A window is kWindow sampled operations. A strategy must win two windows
  // in a row before the guard switches to it (hysteresis), so a burst does
  // not flip it back and forth.
  static constexpr uint64_t kWindow = 256;

  void Decide() {
    std::unique_lock<std::mutex> g(switch_mu_, std::try_to_lock);
    uint64_t c[kKinds];
    for (int i = 0; i < kKinds; i++) c[i] = counts_[i].exchange(0, std::memory_order_relaxed);
    const uint64_t waits = waits_.exchange(0, std::memory_order_relaxed);
    samples_.store(0, std::memory_order_relaxed);
    if (!g.owns_lock() || pinned_.load(std::memory_order_relaxed) != Strategy::kAdaptive) return;
    const Strategy now = strategy();
    const size_t size = ApproxSize();
    const char *why = "";
    const Strategy best = Choose(c, waits * guarded_detail::kSampleEvery, size, now, &why);
    if (best == now) {
      candidate_ = now;
      return;
    }
    if (candidate_ != best) {  // first window for it: wait for a second
      candidate_ = best;
      return;
    }
    constexpr uint64_t s = guarded_detail::kSampleEvery;
    SwitchLocked(best, GuardedDecision{now, best, c[kRead] * s, c[kWrite] * s, c[kWholeRead] * s,
                                       c[kWholeWrite] * s, waits, size, why});
  }

  // The strategy for one window's numbers. Waits are counted on every
  // operation (not sampled); ops and waits both per window.
  static Strategy Choose(const uint64_t *c, uint64_t waits_scaled, size_t size, Strategy now,
                         const char **why) {
    const uint64_t reads = c[kRead] + c[kWholeRead], writes = c[kWrite] + c[kWholeWrite];
    const uint64_t total = reads + writes;
    if (!total) return now;
    // Few waits (under 2% of operations): the cheapest lock is best,
    // whatever the mix.
    const uint64_t ops = total * guarded_detail::kSampleEvery;
    const uint64_t waits = waits_scaled / guarded_detail::kSampleEvery;
    if (waits * 50 < ops) {
      *why = "uncontended: one mutex is cheapest";
      return Strategy::kMutex;
    }
    // Copy-on-write: a write copies the map, so only when reads dominate by
    // more than the copy costs (size elements per write) and no whole-map
    // write needs the copy either.
    if (writes * 100 <= total && writes * (size + 1) <= reads * 4) {
      *why = "read-mostly and contended, writes rare enough to copy the map";
      return Strategy::kCopyOnWrite;
    }
    if (writes * 10 <= total) {
      *why = "read-mostly and contended: readers share the lock";
      return Strategy::kReaderWriter;
    }
    if ((c[kWholeRead] + c[kWholeWrite]) * 100 <= total) {
      *why = "writes contended on per-key operations: shards";
      return Strategy::kSharded;
    }
    *why = "contended, with whole-map operations: one mutex";
    return Strategy::kMutex;
  }

  size_t ApproxSize() const {
    Impl *im = impl_.load(std::memory_order_acquire);
    if (im->strategy == Strategy::kCopyOnWrite) return LoadSnapshot(im)->size();
    return approx_size_.load(std::memory_order_relaxed);
  }

  std::atomic<Impl *> impl_{nullptr};
  std::atomic<Strategy> pinned_;
  mutable std::mutex switch_mu_;  // switches, the callback, the history
  Strategy candidate_ = Strategy::kAdaptive;
  Callback callback_;
  std::vector<GuardedDecision> history_;
  std::vector<Impl *> all_impls_;  // under switch_mu_ (or the constructor)
  std::atomic<uint64_t> switches_{0};
  mutable std::atomic<uint64_t> counts_[kKinds] = {};
  mutable std::atomic<uint64_t> samples_{0};
  mutable std::atomic<uint64_t> waits_{0};
  std::atomic<size_t> approx_size_{0};
};

}  // namespace mapguard

#endif  // MAPGUARD_GUARDED_H
