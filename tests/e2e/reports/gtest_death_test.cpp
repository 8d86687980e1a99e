// The recipe from docs/usage.md: a GoogleTest death test asserts that a
// scenario is stopped by mapguard.
// Two unlocked writers that nothing forces to overlap get "concurrent map
// writes" in some runs and "unsynchronized map writes" in others; the rule
// id in brackets, [map-writes], is the same in both, so the documented
// matcher passes on every run (20 repetitions here).
// RUN: %clangxx_mg -O1 %s -o %t -lgtest -lgtest_main && %t --gtest_repeat=20 2>&1 | FileCheck %s
// CHECK-COUNT-20: [  PASSED  ] 3 tests.
// CHECK-NOT: FAILED
#include <gtest/gtest.h>

#include <thread>
#include <unordered_map>

#include "test_sync.h"

// No forced interleaving: whether the two writes overlap depends on timing.
static void unforced_writers() {
  std::unordered_map<int, int> m;
  std::thread a([&] {
    for (int i = 0; i < 1000; i++) m[i] = i;
  });
  std::thread b([&] {
    for (int i = 0; i < 1000; i++) m[-i] = i;
  });
  a.join();
  b.join();
}

TEST(MapguardRecipe, StableRuleId) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(unforced_writers(), ::testing::ExitedWithCode(66), "map-writes");
}

static void racy_scenario() {
  std::unordered_map<int, int, mg_test::BlockingHash> m;
  mg_test::race([&] { m[mg_test::kBlockKey] = 1; }, [&] { m[2] = 2; });
}

TEST(MapguardRecipe, ExpectDeath) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(racy_scenario(), "concurrent map writes");
}

TEST(MapguardRecipe, ExpectExitWithMapguardsCode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(racy_scenario(), ::testing::ExitedWithCode(66), "fatal error: concurrent map writes");
}
