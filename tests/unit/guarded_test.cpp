// mapguard::guarded: each strategy's operations, switching with contents
// kept, the adaptive choice for clear patterns, and the linearizability
// stress (tests/guarded/stress.h).
#include "mapguard/guarded.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

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

INSTANTIATE_TEST_SUITE_P(Strategies, EachStrategy, ::testing::ValuesIn(kPinned),
                         [](const auto &info) {
                           std::string n = mapguard::StrategyName(info.param);
                           for (char &c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(Guarded, WorksWithAnOrderedMapToo) {
  mapguard::guarded<std::map<int, int>> g(Strategy::kSharded);
  for (int i = 0; i < 10; i++) g.insert_or_assign(i, i * i);
  EXPECT_EQ(g.read([](const auto &m) { return m.rbegin()->second; }), 81);
}

// One thread alone never waits: adaptive stays on (or goes back to) a mutex.
TEST(Guarded, AdaptiveStaysOnAMutexWhenNothingWaits) {
  Guard g;
  g.pin(Strategy::kSharded);
  g.pin(Strategy::kAdaptive);
  for (int i = 0; i < 200000; i++) g.update("k" + std::to_string(i % 64), [](int &v) { v++; });
  EXPECT_EQ(g.strategy(), Strategy::kMutex);
  auto d = g.decisions();
  ASSERT_FALSE(d.empty());
  EXPECT_EQ(d.back().to, Strategy::kMutex);
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

TEST(Guarded, LinearizableWhileStrategiesSwitch) {
  for (unsigned seed = 1; seed <= 3; seed++) EXPECT_EQ(guarded_stress::Run(8, 20000, seed), 0);
}

}  // namespace
