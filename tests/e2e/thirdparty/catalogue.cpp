// The catalogue of third-party maps: each class is tracked out of the box,
// through whichever base declares the member called. For each map: two
// threads that only read it (find, count, iteration; non-const members
// included) and two that write it under a mutex are quiet; a write and a read
// ordered only by a relaxed flag are reported, naming the map's type.
// RUN: %clangxx_mg -O0 -std=c++17 -idirafter/usr/lib/llvm-19/include %s -o %t.O0 %{thirdparty_libs}
// RUN: %clangxx_mg -O2 -std=c++17 -idirafter/usr/lib/llvm-19/include %s -o %t.O2 %{thirdparty_libs}
// RUN: for m in absl_flat absl_flat_set absl_node absl_btree boost_unordered boost_flat \
// RUN:     tsl_hopscotch google_dense google_sparse llvm_densemap llvm_smalldensemap \
// RUN:     llvm_stringmap derived_absl; do \
// RUN:   %t.O0 $m clean 2>&1 | FileCheck %s --check-prefix=CLEAN -DMODE=$m && \
// RUN:   %t.O2 $m clean 2>&1 | FileCheck %s --check-prefix=CLEAN -DMODE=$m && \
// RUN:   %expect_exit 66 %t.O0 $m racy 2>&1 | FileCheck %s --check-prefix=RACY && \
// RUN:   %expect_exit 66 %t.O2 $m racy 2>&1 | FileCheck %s --check-prefix=RACY || exit 1; done
// flat_hash_set::count is raw_hash_set's: the map is still named by its own type.
// clang 16's type printer keeps a default template argument that is an alias
// template (absl's DefaultHashContainerHash<T>); documented in docs/usage.md.
// RUN: %expect_exit 66 %t.O0 absl_flat_set racy 2>&1 | FileCheck %s --check-prefix=%if type-names-keep-alias-defaults %{NAMED_FULL%} %else %{NAMED%}
// Switched off, the same race goes unseen.
// RUN: %clangxx_mg -O0 -std=c++17 -Xclang -plugin-arg-mapguard -Xclang catalogue=off -idirafter/usr/lib/llvm-19/include %s -o %t.off %{thirdparty_libs}
// RUN: %t.off absl_flat racy 2>&1 | FileCheck %s --check-prefix=CLEAN -DMODE=absl_flat
// A track-file (or catalogue) line that cannot be read: one line naming the file and line.
// RUN: printf 'ns::Index api=std\nns::Cache api=sorted\n' > %t.bad
// RUN: not %clangxx_mg -c -idirafter/usr/lib/llvm-19/include -Xclang -plugin-arg-mapguard -Xclang track-file=%t.bad %s -o %t.o 2>&1 | FileCheck %s --check-prefix=BADFILE
// BADFILE: error: mapguard: {{.*}}.bad:2: unknown field 'api=sorted' (known: api=std, read=, write=, ignore=)
// CLEAN-NOT: fatal error
// CLEAN: DONE [[MODE]]
// RACY: fatal error: unsynchronized map read and map write [map-read-write]
// RACY: Read ({{find|count}}) by thread
// RACY: Previous Write ({{operator\[\]|insert}}) by thread
// RACY-NOT: DONE
// NAMED: Map: absl::flat_hash_set<int> 's' at
// NAMED_FULL: Map: absl::flat_hash_set<int, absl::hash_internal::Hash<int>> 's' at
#include <absl/container/btree_map.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/container/node_hash_map.h>
#include <boost/container/flat_map.hpp>
#include <boost/unordered_map.hpp>
#include <google/dense_hash_map>
#include <google/sparse_hash_map>
#include <llvm/ADT/DenseMap.h>
#include <llvm/ADT/StringMap.h>
#include <tsl/hopscotch_map.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

namespace {

std::atomic<int> g_step{0};
void wait_for(int step) {
  while (g_step.load(std::memory_order_relaxed) < step) std::this_thread::yield();
}

// Key and value spellings for maps keyed by int and by string.
template <typename M> struct Keys {
  static int key(int i) { return i; }
};
template <typename V> struct Keys<llvm::StringMap<V>> {
  static std::string key(int i) { return std::to_string(i); }
};

template <typename M>
void run(M &m, bool racy) {
  using K = Keys<M>;
  for (int i = 0; i < 8; i++) m[K::key(i)] = i;
  if (racy) {
    std::thread writer([&] {
      m[K::key(100)] = 1;
      g_step.store(1, std::memory_order_relaxed);
    });
    std::thread reader([&] {
      wait_for(1);
      if (m.find(K::key(3)) == m.end()) std::puts("missing");
    });
    writer.join();
    reader.join();
    return;
  }
  // Readers only: non-const find, count, iteration, on two threads at once.
  long sum = 0;
  auto read = [&] {
    long local = 0;
    for (int r = 0; r < 100; r++) {
      auto it = m.find(K::key(r % 8));
      if (it != m.end()) local += m.count(K::key(r % 8));
      for (auto &entry : m) local += entry.second;
    }
    return local;
  };
  std::thread a([&] { sum += read(); });
  long b_sum = read();
  a.join();
  sum += b_sum;
  // Writers under one mutex.
  std::mutex mu;
  auto write = [&](int base) {
    for (int i = 0; i < 50; i++) {
      std::lock_guard<std::mutex> lock(mu);
      m[K::key(base + i)] = i;
    }
  };
  std::thread w(write, 1000);
  write(2000);
  w.join();
  if (sum < 0) std::puts("impossible");
}

template <typename S>
void run_set(S &s, bool racy) {
  for (int i = 0; i < 8; i++) s.insert(i);
  if (racy) {
    std::thread writer([&] {
      s.insert(100);
      g_step.store(1, std::memory_order_relaxed);
    });
    std::thread reader([&] {
      wait_for(1);
      if (s.count(3) != 1) std::puts("missing");
    });
    writer.join();
    reader.join();
    return;
  }
  std::thread a([&] {
    for (int r = 0; r < 100; r++) (void)s.find(r % 8);
  });
  for (int r = 0; r < 100; r++) (void)s.count(r % 8);
  a.join();
}

// A user's map class deriving from a catalogue map is that map.
struct Index : absl::flat_hash_map<int, int> {};

}  // namespace

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  std::string mode = argv[1];
  bool racy = !strcmp(argv[2], "racy");
  if (mode == "absl_flat") {
    absl::flat_hash_map<int, int> m;
    run(m, racy);
  } else if (mode == "absl_flat_set") {
    absl::flat_hash_set<int> s;
    run_set(s, racy);
  } else if (mode == "absl_node") {
    absl::node_hash_map<int, int> m;
    run(m, racy);
  } else if (mode == "absl_btree") {
    absl::btree_map<int, int> m;
    run(m, racy);
  } else if (mode == "boost_unordered") {
    boost::unordered_map<int, int> m;
    run(m, racy);
  } else if (mode == "boost_flat") {
    boost::container::flat_map<int, int> m;
    run(m, racy);
  } else if (mode == "tsl_hopscotch") {
    tsl::hopscotch_map<int, int> m;
    run(m, racy);
  } else if (mode == "google_dense") {
    google::dense_hash_map<int, int> m;
    m.set_empty_key(-1);
    run(m, racy);
  } else if (mode == "google_sparse") {
    google::sparse_hash_map<int, int> m;
    run(m, racy);
  } else if (mode == "llvm_densemap") {
    llvm::DenseMap<int, int> m;
    run(m, racy);
  } else if (mode == "llvm_smalldensemap") {
    llvm::SmallDenseMap<int, int, 4> m;
    run(m, racy);
  } else if (mode == "llvm_stringmap") {
    llvm::StringMap<int> m;
    run(m, racy);
  } else if (mode == "derived_absl") {
    Index m;
    run(m, racy);
  } else {
    return 2;
  }
  std::printf("DONE %s\n", mode.c_str());
  return 0;
}
