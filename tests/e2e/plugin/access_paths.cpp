// The same race reached through every way code names a map: a member, a
// global, a pointer, a reference, an element of another container, a
// template, an iterator loop, std::erase_if and std::swap. Each report names
// the map as the code spells it.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %expect_exit 66 %t.O0 member 2>&1 | FileCheck %s --check-prefix=MEMBER
// RUN: %expect_exit 66 %t.O2 member 2>&1 | FileCheck %s --check-prefix=MEMBER
// RUN: %expect_exit 66 %t.O0 global 2>&1 | FileCheck %s --check-prefix=GLOBAL
// RUN: %expect_exit 66 %t.O2 global 2>&1 | FileCheck %s --check-prefix=GLOBAL
// RUN: %expect_exit 66 %t.O0 pointer 2>&1 | FileCheck %s --check-prefix=POINTER
// RUN: %expect_exit 66 %t.O2 pointer 2>&1 | FileCheck %s --check-prefix=POINTER
// RUN: %expect_exit 66 %t.O0 element 2>&1 | FileCheck %s --check-prefix=ELEMENT
// RUN: %expect_exit 66 %t.O2 element 2>&1 | FileCheck %s --check-prefix=ELEMENT
// RUN: %expect_exit 66 %t.O0 template 2>&1 | FileCheck %s --check-prefix=TEMPLATE
// RUN: %expect_exit 66 %t.O2 template 2>&1 | FileCheck %s --check-prefix=TEMPLATE
// RUN: %expect_exit 66 %t.O0 iterator-loop 2>&1 | FileCheck %s --check-prefix=ITERLOOP
// RUN: %expect_exit 66 %t.O2 iterator-loop 2>&1 | FileCheck %s --check-prefix=ITERLOOP
// RUN: %expect_exit 66 %t.O0 erase-if 2>&1 | FileCheck %s --check-prefix=ERASEIF
// RUN: %expect_exit 66 %t.O2 erase-if 2>&1 | FileCheck %s --check-prefix=ERASEIF
// RUN: %expect_exit 66 %t.O0 swap 2>&1 | FileCheck %s --check-prefix=SWAP
// RUN: %expect_exit 66 %t.O2 swap 2>&1 | FileCheck %s --check-prefix=SWAP
#include <cstring>
#include <map>
#include <unordered_map>
#include <vector>

#include "test_sync.h"

using Table = std::unordered_map<int, int, mg_test::BlockingHash>;

struct Service {
  Table sessions;
  __attribute__((noinline)) void open(int id) { sessions[id] = 1; }
};

Table g_cache;

template <typename M>
__attribute__((noinline)) void put_generic(M &m, int k) {
  m.emplace(k, 2);
}

__attribute__((noinline)) void write_through(Table *p, int k) { p->insert({k, 3}); }

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  Service svc;
  Table local;
  std::vector<Table> shards(4);
  Table *ptr = &local;
  Table &ref = local;
  auto block_on = [](Table &t) { t[mg_test::kBlockKey] = 0; };
  if (!strcmp(mode, "member"))
    mg_test::race([&] { svc.open(mg_test::kBlockKey); }, [&] { svc.open(5); });
  // MEMBER: fatal error: concurrent map writes
  // MEMBER: Map: std::unordered_map<int, int, mg_test::BlockingHash> 'sessions' at
  // MEMBER: Write (operator[]) by thread T2 {{.*}} at {{.*}}access_paths.cpp:{{[0-9]+}}:{{[0-9]+}} in Service::open(int)
  if (!strcmp(mode, "global"))
    mg_test::race([&] { block_on(g_cache); }, [&] { g_cache.erase(5); });
  // GLOBAL: Map: std::unordered_map<int, int, mg_test::BlockingHash> 'g_cache' at
  // GLOBAL: Write (erase) by thread T2 {{.*}} at {{.*}}access_paths.cpp:[[@LINE-2]]
  if (!strcmp(mode, "pointer"))
    mg_test::race([&] { block_on(ref); }, [&] { write_through(ptr, 5); });
  // POINTER: Map: {{.*}} 'p' at
  // POINTER: Write (insert) by thread T2 {{.*}} in write_through
  if (!strcmp(mode, "element"))
    mg_test::race([&] { block_on(shards[2]); }, [&] { shards[2].clear(); });
  // ELEMENT: Map: {{.*}} 'shards[2]' at
  // ELEMENT: Write (clear) by thread T2
  if (!strcmp(mode, "template"))
    mg_test::race([&] { block_on(local); }, [&] { put_generic(local, 5); });
  // TEMPLATE: Write (emplace) by thread T2 {{.*}} in void put_generic<std::unordered_map<int, int, mg_test::BlockingHash>>(std::unordered_map<int, int, mg_test::BlockingHash>&, int):
  if (!strcmp(mode, "iterator-loop"))
    mg_test::race(
        [&] {
          local[1] = 1;
          for (auto it = local.begin(); it != local.end(); ++it) mg_test::stay_inside();
        },
        [&] { local[5] = 5; });
  // ITERLOOP: fatal error: concurrent map iteration and map write
  // ITERLOOP: Iteration (iteration (begin)) in progress in thread T1 {{.*}} at {{.*}}access_paths.cpp:[[@LINE-4]]
  if (!strcmp(mode, "erase-if"))
    mg_test::race([&] { block_on(local); }, [&] { std::erase_if(local, [](auto &kv) { return kv.first == 1; }); });
  // ERASEIF: Map: std::unordered_map<int, int, mg_test::BlockingHash> 'local' at
  // ERASEIF: Write (std::erase_if) by thread T2
  if (!strcmp(mode, "swap"))
    mg_test::race([&] { block_on(local); }, [&] { Table other; std::swap(local, other); });
  // SWAP: Map: std::unordered_map<int, int, mg_test::BlockingHash> 'local' at
  // SWAP: Write (std::swap) by thread T2
  return 0;
}
