// The recipe from docs/usage.md: a GoogleTest death test asserts that a
// scenario is stopped by mapguard.
// RUN: %clangxx_mg -O1 %s -o %t -lgtest -lgtest_main && %t 2>&1 | FileCheck %s
// CHECK: [  PASSED  ] 2 tests.
#include <gtest/gtest.h>

#include <unordered_map>

#include "test_sync.h"

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
