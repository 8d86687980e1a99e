// format=sarif writes one SARIF 2.1.0 log that Microsoft's SARIF multitool
// validates: one rule per conflict kind, the current access as the result's
// location, the other in relatedLocations and codeFlows, repository-relative
// paths, and partialFingerprints that are the same on every run.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: rm -f %t.run1.* %t.run2.* %t.run3.* %t.first.sarif %t.third.sarif
// RUN: cd %S && env MAPGUARD_OPTIONS=format=sarif:log_path=%t.run1 %expect_exit 66 %t
// RUN: cd %S && env MAPGUARD_OPTIONS=format=sarif:log_path=%t.run2 %expect_exit 66 %t
// RUN: cd %S && env MAPGUARD_OPTIONS=format=sarif:halt_on_error=0:report_wait_ms=200:log_path=%t.run3 %expect_exit 66 %t twice
// RUN: rm -f %t.validation.sarif %t.validation3.sarif
// RUN: cp %t.run1.* %t.first.sarif && cp %t.run3.* %t.third.sarif
// RUN: %sarif_multitool validate %t.first.sarif -o %t.validation.sarif > %t.validate.out 2>&1
// RUN: FileCheck %s --check-prefix=VALID < %t.validate.out
// RUN: %sarif_multitool validate %t.third.sarif -o %t.validation3.sarif > %t.validate3.out 2>&1
// RUN: FileCheck %s --check-prefix=VALID < %t.validate3.out
// RUN: python3 %S/../Inputs/check_sarif.py %t.run1.* %t.run2.* %t.run3.*
// VALID-NOT: {{error|skipped}}
// VALID: Analysis completed successfully.
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "test_sync.h"

std::unordered_map<int, int, mg_test::BlockingHash> sessions;

__attribute__((noinline)) void open_session(int k) { sessions[k] = 1; }
__attribute__((noinline)) void close_session(int k) { sessions.erase(k); }

int main(int argc, char **argv) {
  mg_test::race([] { open_session(mg_test::kBlockKey); }, [] { close_session(3); });
  if (argc > 1 && !strcmp(argv[1], "twice"))  // a second, different pair of locations
    mg_test::race([] { open_session(mg_test::kBlockKey); }, [] { open_session(4); });
  std::printf("DONE\n");
}
