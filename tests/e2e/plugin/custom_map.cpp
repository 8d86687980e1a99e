// A user's own map class, annotated with MAPGUARD_MAP: const members are
// reads, others writes, unless a member is annotated otherwise. Calls made
// inside the class's own members are its implementation and not counted.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %expect_exit 66 %t.O0 writes 2>&1 | FileCheck %s --check-prefix=WRITES
// RUN: %expect_exit 66 %t.O2 writes 2>&1 | FileCheck %s --check-prefix=WRITES
// RUN: %expect_exit 66 %t.O0 read-override 2>&1 | FileCheck %s --check-prefix=READOVERRIDE
// RUN: %expect_exit 66 %t.O2 read-override 2>&1 | FileCheck %s --check-prefix=READOVERRIDE
// RUN: %t.O0 ignored 2>&1 | FileCheck %s --check-prefix=IGNORED
// RUN: %t.O2 ignored 2>&1 | FileCheck %s --check-prefix=IGNORED
// RUN: %t.O0 readers 2>&1 | FileCheck %s --check-prefix=READERS
#include <cstring>
#include <string>
#include <vector>

#include "mapguard/annotations.h"
#include "test_sync.h"

namespace store {
class MAPGUARD_MAP FlatMap {
 public:
  void put(int k, int v) {
    mg_test::maybe_block(k);
    for (auto &e : items_)
      if (e.first == k) { e.second = v; return; }
    items_.push_back({k, v});
  }
  int get(int k) const {
    mg_test::maybe_block(k);
    for (const auto &e : items_)
      if (e.first == k) return e.second;
    return -1;
  }
  // Non-const, but only reads: says so.
  MAPGUARD_READ int *find_mut(int k) {
    for (auto &e : items_)
      if (e.first == k) return &e.second;
    return nullptr;
  }
  // Statistics counters the class synchronizes itself.
  MAPGUARD_IGNORE void touch(int k) { mg_test::maybe_block(k); }

 private:
  std::vector<std::pair<int, int>> items_;
};
}  // namespace store

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  store::FlatMap fm;
  fm.put(1, 1);
  if (!strcmp(mode, "writes"))
    mg_test::race([&] { fm.put(mg_test::kBlockKey, 1); }, [&] { fm.put(2, 2); });
  // WRITES: fatal error: concurrent map writes
  // WRITES: Map: store::FlatMap 'fm' at
  // WRITES: Write (put) by thread T2
  // WRITES: Write (put) in progress in thread T1
  if (!strcmp(mode, "read-override"))
    mg_test::race([&] { fm.put(mg_test::kBlockKey, 1); }, [&] { (void)fm.find_mut(1); });
  // READOVERRIDE: fatal error: concurrent map read and map write
  // READOVERRIDE: Read (find_mut) by thread T2
  if (!strcmp(mode, "ignored")) {
    mg_test::race([&] { fm.touch(mg_test::kBlockKey); }, [&] { fm.put(3, 3); });
    std::printf("DONE ignored\n");
  }
  // IGNORED-NOT: fatal error
  // IGNORED: DONE ignored
  if (!strcmp(mode, "readers")) {
    mg_test::race([&] { (void)fm.get(mg_test::kBlockKey); }, [&] { (void)fm.get(1); });
    std::printf("DONE readers\n");
  }
  // READERS-NOT: fatal error
  // READERS: DONE readers
  return 0;
}
