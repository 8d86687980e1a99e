// A class derived from a map with members of its own (a common legacy
// pattern): its own members are not map calls; the calls they make on the
// map through `this` are, with their real kinds. Before, the plugin tracked
// the derived class as if it declared the map's members: add() counted as a
// read and the operator[] inside it was not seen, so two threads calling
// add() with no lock were never reported (the program crashed natively).
// Clean: every call under one mutex. Racy: the second thread skips it.
// RUN: %clangxx_mg -O0 %s %{absl_libs_map} -o %t.O0
// RUN: %clangxx_mg -O2 %s %{absl_libs_map} -o %t.O2
// RUN: for m in umap-index umap-assign umap-erase map-index map-assign map-erase const-read absl; do %t.O0 $m clean; %t.O2 $m clean; done 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 umap-index racy 2>&1 | FileCheck %s --check-prefix=WRITES -DOP='operator[]' -DFN=add
// RUN: %expect_exit 66 %t.O2 umap-index racy 2>&1 | FileCheck %s --check-prefix=WRITES -DOP='operator[]' -DFN=add
// RUN: %expect_exit 66 %t.O0 umap-assign racy 2>&1 | FileCheck %s --check-prefix=WRITES -DOP=insert_or_assign -DFN=assign
// RUN: %expect_exit 66 %t.O2 umap-erase racy 2>&1 | FileCheck %s --check-prefix=WRITES -DOP=erase -DFN=remove
// RUN: %expect_exit 66 %t.O0 map-index racy 2>&1 | FileCheck %s --check-prefix=WRITES -DOP='operator[]' -DFN=add
// RUN: %expect_exit 66 %t.O2 map-assign racy 2>&1 | FileCheck %s --check-prefix=WRITES -DOP=insert_or_assign -DFN=assign
// RUN: %expect_exit 66 %t.O2 map-erase racy 2>&1 | FileCheck %s --check-prefix=WRITES -DOP=erase -DFN=remove
// RUN: %expect_exit 66 %t.O0 const-read racy 2>&1 | FileCheck %s --check-prefix=READWRITE
// RUN: %expect_exit 66 %t.O2 const-read racy 2>&1 | FileCheck %s --check-prefix=READWRITE
// RUN: %expect_exit 66 %t.O0 absl racy 2>&1 | FileCheck %s --check-prefix=ABSL
// RUN: %expect_exit 66 %t.O2 absl racy 2>&1 | FileCheck %s --check-prefix=ABSL
// CLEAN-NOT: fatal error
// CLEAN-COUNT-16: DONE
// WRITES: fatal error: {{concurrent|unsynchronized}} map writes
// WRITES: Write ([[OP]]) {{.*}} in Registry<{{.*}}>::[[FN]](
// WRITES: SUMMARY: mapguard
// READWRITE: fatal error: {{concurrent|unsynchronized}} map read and map write
// READWRITE: {{Read \(find\).* in Registry<.*>::get\(|Write \(operator\[\]\).* in Registry<.*>::add\(}}
// READWRITE: SUMMARY: mapguard
// ABSL: fatal error: {{concurrent|unsynchronized}} map writes
// ABSL: in Registry<absl::{{.*}}flat_hash_map<{{.*}}>::add(
#include <absl/container/flat_hash_map.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

template <typename Base>
struct Registry : Base {
  void add(const std::string &k, int v) { (*this)[k] = v; }
  void assign(const std::string &k, int v) { this->insert_or_assign(k, v); }
  void remove(const std::string &k) { this->erase(k); }
  int get(const std::string &k) const {
    auto it = this->find(k);
    return it == this->end() ? -1 : it->second;
  }
};

std::mutex mu;
volatile int sink;

template <typename R>
void run(const char *op, bool racy) {
  static R reg;
  auto work = [op](int id, bool locked) {
    for (int i = 0; i < 200; i++) {
      std::string k = std::to_string(i % 16);
      if (locked) mu.lock();
      if (std::strstr(op, "index") || std::strstr(op, "absl")) reg.add(k, id);
      else if (std::strstr(op, "assign")) reg.assign(k, id);
      else if (std::strstr(op, "erase")) {
        if (id == 1) reg.add(k, id);
        else reg.remove(k);
      } else if (id == 1) reg.add(k, id);
      else sink = reg.get(k);  // const-read: the second thread only reads
      if (locked) mu.unlock();
    }
  };
  std::thread a(work, 1, true), b(work, 2, !racy);
  a.join();
  b.join();
}

int main(int argc, char **argv) {
  const char *op = argv[1];
  bool racy = !std::strcmp(argv[2], "racy");
  if (!std::strncmp(op, "umap", 4) || !std::strcmp(op, "const-read"))
    run<Registry<std::unordered_map<std::string, int>>>(op, racy);
  else if (!std::strncmp(op, "map", 3))
    run<Registry<std::map<std::string, int>>>(op, racy);
  else
    run<Registry<absl::flat_hash_map<std::string, int>>>(op, racy);
  std::printf("DONE\n");
}
