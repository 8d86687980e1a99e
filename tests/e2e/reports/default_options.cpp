// A program sets its own defaults with __mapguard_default_options(); the
// environment overrides them; bad defaults are errors naming their source.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: %expect_exit 77 %t 2>&1 | FileCheck %s
// RUN: env MAPGUARD_OPTIONS=exitcode=78 %expect_exit 78 %t 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O1 -DBAD_DEFAULTS %s -o %t.bad
// RUN: %expect_exit 64 %t.bad 2>&1 | FileCheck %s --check-prefix=BAD
// CHECK: fatal error: concurrent map writes
// BAD: mapguard: error: unknown option 'exit_code' (in __mapguard_default_options())
#include <unordered_map>

#include "test_sync.h"

extern "C" const char *__mapguard_default_options() {
#ifdef BAD_DEFAULTS
  return "exit_code=77";
#else
  return "exitcode=77:report_wait_ms=500";
#endif
}

int main() {
  std::unordered_map<int, int, mg_test::BlockingHash> m;
  mg_test::race([&] { m[mg_test::kBlockKey] = 1; }, [&] { m[2] = 2; });
}
