// mapguard::guarded: each strategy's operations, switching with contents
// kept, the adaptive choice for clear patterns, and the linearizability
// stress (tests/guarded/stress.h).
#include "mapguard/guarded.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../e2e/Inputs/test_sync.h"
#include "../guarded/stress.h"

namespace {

using mapguard::Strategy;
using Guard = mapguard::guarded<std::unordered_map<std::string, int>>;

const Strategy kPinned[] = {Strategy::kMutex, Strategy::kReaderWriter, Strategy::kSharded,
                            Strategy::kCopyOnWrite};

class EachStrategy : public ::testing::TestWithParam<Strategy> {};

TEST_P(EachStrategy, PerKeyAndWholeMapOperations) {
  Guard g(GetParam());
  EXPECT_EQ(g.strategy(), GetParam());
  EXPECT_TRUE(g.insert_or_assign("a", 1));
  EXPECT_FALSE(g.insert_or_assign("a", 2));
  EXPECT_EQ(g.find("a"), std::optional<int>(2));
  EXPECT_FALSE(g.find("b").has_value());
  EXPECT_TRUE(g.contains("a"));
  g.update("b", [](int &v) { v += 5; });
  EXPECT_EQ(g.update("b", [](int &v) { return ++v; }), 6);
  EXPECT_EQ(g.size(), 2u);
  g.write([](auto &m) {
    for (int i = 0; i < 100; i++) m["k" + std::to_string(i)] = i;
  });
  EXPECT_EQ(g.size(), 102u);
  EXPECT_EQ(g.find("k42"), std::optional<int>(42));
  int sum = g.read([](const auto &m) {
    int s = 0;
    for (const auto &kv : m) s += kv.second;
    return s;
  });
  EXPECT_EQ(sum, 2 + 6 + 4950);
  EXPECT_TRUE(g.erase("a"));
  EXPECT_FALSE(g.erase("a"));
  EXPECT_EQ(g.size(), 101u);
}

TEST_P(EachStrategy, SwitchingKeepsEveryEntry) {
  Guard g(GetParam());
  for (int i = 0; i < 1000; i++) g.insert_or_assign(std::to_string(i), i);
  for (Strategy to : kPinned) {
    g.pin(to);
    EXPECT_EQ(g.strategy(), to);
    EXPECT_EQ(g.size(), 1000u);
    for (int i = 1; i < 1000; i += 97) EXPECT_EQ(g.find(std::to_string(i)), std::optional<int>(i));
    g.update("0", [](int &v) { v++; });
  }
  EXPECT_EQ(g.find("0"), std::optional<int>(4));
}

TEST_P(EachStrategy, ConcurrentIncrementsAreNotLost) {
  Guard g(GetParam());
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([&] {
      for (int i = 0; i < 5000; i++) g.update("k" + std::to_string(i % 8), [](int &v) { v++; });
    });
  for (auto &t : ts) t.join();
  int sum = g.read([](const auto &m) {
    int s = 0;
    for (const auto &kv : m) s += kv.second;
    return s;
  });
  EXPECT_EQ(sum, 20000);
}

// Whatever the strategy, a whole-map write whose fn throws never loses the
// map (sharded: the shards are merged for fn, and split back on the throw).
TEST_P(EachStrategy, AThrowingWholeMapWriteLosesNothing) {
  Guard g(GetParam());
  for (int i = 0; i < 100; i++) g.insert_or_assign(std::to_string(i), i);
  EXPECT_THROW(g.write([](auto &) { throw std::runtime_error("no"); }), std::runtime_error);
  EXPECT_EQ(g.size(), 100u);
  EXPECT_THROW(g.update("7", [](int &) -> int { throw std::runtime_error("no"); }), std::runtime_error);
  EXPECT_EQ(g.find("42"), std::optional<int>(42));
  // A read whose fn throws gives its hazard slot back (copy-on-write): many
  // of them, then readers still run.
  for (int i = 0; i < 100; i++)
    EXPECT_THROW(g.read([](const auto &) -> int { throw std::runtime_error("no"); }), std::runtime_error);
  EXPECT_EQ(g.find("1"), std::optional<int>(1));
}

INSTANTIATE_TEST_SUITE_P(Strategies, EachStrategy, ::testing::ValuesIn(kPinned),
                         [](const auto &info) {
                           std::string n = mapguard::StrategyName(info.param);
                           for (char &c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// An ordered map's comparator decides which keys are equal, and no hash can
// follow it: such a guard is never sharded. Its key needs no std::hash.
struct CaseInsensitiveLess {
  bool operator()(const std::string &a, const std::string &b) const {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                        [](char x, char y) { return std::tolower(x) < std::tolower(y); });
  }
};
TEST(Guarded, AnOrderedMapIsNeverSharded) {
  mapguard::guarded<std::map<std::string, int, CaseInsensitiveLess>> g(Strategy::kSharded);
  EXPECT_NE(g.strategy(), Strategy::kSharded);
  EXPECT_FALSE(g.pin(Strategy::kSharded));
  EXPECT_NE(g.strategy(), Strategy::kSharded);
  g.insert_or_assign("Foo", 1);
  EXPECT_EQ(g.find("foo"), std::optional<int>(1));
  mapguard::guarded<std::map<std::pair<int, int>, int>> pairs;  // no std::hash<pair>
  pairs.insert_or_assign({1, 2}, 3);
  EXPECT_EQ(pairs.read([](const auto &m) { return m.begin()->second; }), 3);
}

// The switch callback runs after the map locks are given up: it may read
// the guard and its history.
TEST(Guarded, TheCallbackMayUseTheGuard) {
  Guard g(Strategy::kMutex);
  g.insert_or_assign("a", 1);
  size_t seen = 0, history = 0;
  g.on_switch([&](const mapguard::GuardedDecision &) {
    seen = g.size();
    history = g.decisions().size();
  });
  g.pin(Strategy::kReaderWriter);
  EXPECT_EQ(seen, 1u);
  EXPECT_EQ(history, 1u);
}

// A write-heavy map never tries copy-on-write (each write would copy it):
// whatever the measurements, the exploration keeps to the locks.
TEST(Guarded, AdaptiveNeverTriesCopyOnWriteForWrites) {
  Guard g;
  for (int i = 0; i < 2000; i++) g.insert_or_assign("k" + std::to_string(i), i);
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  for (int i = 0; std::chrono::steady_clock::now() < until; i++)
    g.update("k" + std::to_string(i % 2000), [](int &v) { v++; });
  EXPECT_NE(g.strategy(), Strategy::kCopyOnWrite);
  for (const auto &d : g.decisions()) EXPECT_NE(d.to, Strategy::kCopyOnWrite) << d.why;
}

// Read-only from two threads: the guard explores, copy-on-write among the
// candidates (no write to copy for), and settles on the fastest it measured.
// Which one that is depends on the machine (benchmarks say; not this test).
TEST(Guarded, AdaptiveExploresCopyOnWriteForReadOnlyAndSettles) {
  Guard g;
  g.write([](auto &m) {
    for (int i = 0; i < 1000; i++) m["k" + std::to_string(i)] = i;
  });
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; t++)
    ts.emplace_back([&] {
      long sum = 0;
      for (int i = 0; !stop.load(std::memory_order_relaxed); i++) sum += g.find("k" + std::to_string(i % 1000)).value_or(0);
      EXPECT_GT(sum, 0);
    });
  auto settled = [&] {
    for (const auto &d : g.decisions())
      if (std::string(d.why).rfind("fastest measured", 0) == 0) return true;
    return false;
  };
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!settled() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stop = true;
  for (auto &t : ts) t.join();
  ASSERT_TRUE(settled());
  bool tried_cow = false;
  for (const auto &d : g.decisions()) tried_cow |= d.to == Strategy::kCopyOnWrite;
  EXPECT_TRUE(tried_cow);
}

TEST(Guarded, TheCallbackHearsEachSwitch) {
  Guard g(Strategy::kMutex);
  std::vector<std::string> heard;
  g.on_switch([&](const mapguard::GuardedDecision &d) {
    heard.push_back(std::string(mapguard::StrategyName(d.from)) + "->" + mapguard::StrategyName(d.to) +
                    ": " + d.why);
  });
  g.pin(Strategy::kCopyOnWrite);
  g.pin(Strategy::kSharded);
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[0], "mutex->copy-on-write: pinned");
  EXPECT_EQ(heard[1], "copy-on-write->sharded: pinned");
  EXPECT_EQ(g.switches(), 2u);
}

// A guard keeps at most one Impl per strategy and reuses it: switching
// thousands of times does not grow memory (each switch used to keep its
// retired Impl, shards and all, until the guard died).
TEST(Guarded, SwitchingOftenKeepsMemoryBounded) {
  Guard g(Strategy::kMutex);
  for (int i = 0; i < 1000; i++) g.insert_or_assign(std::to_string(i), i);
  const Strategy cycle[] = {Strategy::kSharded, Strategy::kCopyOnWrite, Strategy::kReaderWriter,
                            Strategy::kMutex};
  for (int i = 0; i < 400; i++) g.pin(cycle[i % 4]);  // warm up the allocator
  const long before = mg_test::rss_kb();
  for (int i = 0; i < 20000; i++) g.pin(cycle[i % 4]);
  const long grown = mg_test::rss_kb() - before;
  EXPECT_LT(grown, 4096) << "KiB grown over 20000 switches";
  EXPECT_EQ(g.size(), 1000u);
  EXPECT_EQ(g.find("999"), std::optional<int>(999));
}

TEST(Guarded, LinearizableWhileStrategiesSwitch) {
  for (unsigned seed = 1; seed <= 3; seed++) EXPECT_EQ(guarded_stress::Run(8, 20000, seed), 0);
}

}  // namespace
