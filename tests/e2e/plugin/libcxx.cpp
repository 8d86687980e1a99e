// libc++ (-stdlib=libc++, std::__1) containers are tracked like libstdc++'s.
// RUN: %clangxx_mg -stdlib=libc++ -O0 %s -o %t.O0 && %expect_exit 66 %t.O0 2>&1 | FileCheck %s
// RUN: %clangxx_mg -stdlib=libc++ -O2 %s -o %t.O2 && %expect_exit 66 %t.O2 2>&1 | FileCheck %s
// CHECK: fatal error: concurrent map writes
// CHECK: Map: std::unordered_map<int, std::string, mg_test::BlockingHash> 'names' at
// CHECK: Write (operator[]) by thread T2
// CHECK: Write (emplace) in progress in thread T1
#include <string>
#include <unordered_map>
#include "test_sync.h"
int main() {
  std::unordered_map<int, std::string, mg_test::BlockingHash> names;
  mg_test::race([&] { names.emplace(mg_test::kBlockKey, "x"); }, [&] { names[2] = "y"; });
}
