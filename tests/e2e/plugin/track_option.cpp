// Third-party map types are tracked without editing them:
// -fplugin-arg-mapguard-track=NAME or a list file. Bad plugin arguments are
// errors that name the problem.
// RUN: %clangxx_mg -O1 -fplugin-arg-mapguard-track=vendor::HashTable %s -o %t.arg
// RUN: %expect_exit 66 %t.arg 2>&1 | FileCheck %s
// RUN: echo "# maps from vendor code" > %t.list && echo "vendor::HashTable" >> %t.list
// RUN: %clangxx_mg -O1 -fplugin-arg-mapguard-track-file=%t.list %s -o %t.file
// RUN: %expect_exit 66 %t.file 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O1 %s -o %t.untracked && %t.untracked 2>&1 | FileCheck %s --check-prefix=UNTRACKED
// RUN: not %clangxx_mg -fplugin-arg-mapguard-bogus=1 %s -o %t.bad 2>&1 | FileCheck %s --check-prefix=BADARG
// RUN: not %clangxx_mg -fplugin-arg-mapguard-track-file=%t.missing %s -o %t.bad 2>&1 | FileCheck %s --check-prefix=BADFILE
// CHECK: fatal error: concurrent map writes
// CHECK: Map: vendor::HashTable 'table' at
// UNTRACKED: DONE
// BADARG: error: mapguard: unknown plugin argument 'bogus=1'
// BADFILE: error: mapguard: cannot read track-file '{{.*}}.missing'
#include <cstdio>
#include <vector>

#include "test_sync.h"

namespace vendor {
class HashTable {  // no annotation: vendor code we cannot edit
 public:
  void set(int k, int v) {
    mg_test::maybe_block(k);
    data_.push_back(v);
  }
 private:
  std::vector<int> data_;
};
}  // namespace vendor

int main() {
  vendor::HashTable table;
  mg_test::race([&] { table.set(mg_test::kBlockKey, 1); }, [&] { table.set(2, 2); });
  std::printf("DONE\n");
}
