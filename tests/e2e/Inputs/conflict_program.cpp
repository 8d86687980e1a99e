// One racy program for every container family (-DFAMILY_<name>) and every
// conflict kind (argv[1]). Thread A enters a map operation and stays inside
// (a blocking hash, comparator or loop body); thread B then makes the
// conflicting call, which mapguard must stop.
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "test_sync.h"

struct BlockingHash {
  size_t operator()(int k) const {
    mg_test::maybe_block(k);
    return std::hash<int>()(k);
  }
};
struct BlockingLess {
  bool operator()(int a, int b) const {
    mg_test::maybe_block(a);
    mg_test::maybe_block(b);
    return a < b;
  }
};

#if defined(FAMILY_unordered_map)
using Map = std::unordered_map<int, int, BlockingHash>;
#elif defined(FAMILY_unordered_multimap)
using Map = std::unordered_multimap<int, int, BlockingHash>;
#elif defined(FAMILY_map)
using Map = std::map<int, int, BlockingLess>;
#elif defined(FAMILY_multimap)
using Map = std::multimap<int, int, BlockingLess>;
#elif defined(FAMILY_unordered_set)
using Map = std::unordered_set<int, BlockingHash>;
#elif defined(FAMILY_unordered_multiset)
using Map = std::unordered_multiset<int, BlockingHash>;
#elif defined(FAMILY_set)
using Map = std::set<int, BlockingLess>;
#elif defined(FAMILY_multiset)
using Map = std::multiset<int, BlockingLess>;
#else
#error "define FAMILY_<container>"
#endif

// What insert() takes: a pair for maps, the key for sets.
template <class T> struct ValueOf { static T of(int k) { return T{k, 0}; } };
template <> struct ValueOf<int> { static int of(int k) { return k; } };
Map::value_type value_of(int k) { return ValueOf<Map::value_type>::of(k); }

__attribute__((noinline)) void do_insert(Map &m, int k) {
  m.insert(value_of(k));  // MARK: INSERT
}

__attribute__((noinline)) size_t do_find(Map &m, int k) {
  return m.count(k);  // MARK: FIND
}

__attribute__((noinline)) int do_iterate(Map &m, bool block) {
  int n = 0;
  for (const auto &e : m) {  // MARK: ITERATE
    (void)e;
    n++;
    if (block) mg_test::stay_inside();
  }
  return n;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *mode = argv[1];
  Map m;
  do_insert(m, 1);  // before any thread: not a race
  std::thread a([&] {
    mg_test::t_armed = true;
    if (!strcmp(mode, "writes") || !strcmp(mode, "write-read") || !strcmp(mode, "write-iterate"))
      do_insert(m, mg_test::kBlockKey);
    else if (!strcmp(mode, "read-write"))
      do_find(m, mg_test::kBlockKey);
    else if (!strcmp(mode, "iterate-write"))
      do_iterate(m, true);
    // The unsynchronized modes: A finishes its access, then only a relaxed
    // flag and sleeps separate it from B's. No overlap, no happens-before.
    else if (!strcmp(mode, "unsync-writes") || !strcmp(mode, "unsync-write-read"))
      do_insert(m, 5), mg_test::g_inside.store(true, std::memory_order_relaxed);
    else if (!strcmp(mode, "unsync-read-write"))
      do_find(m, 5), mg_test::g_inside.store(true, std::memory_order_relaxed);
    else if (!strcmp(mode, "unsync-iterate-write"))
      do_iterate(m, false), mg_test::g_inside.store(true, std::memory_order_relaxed);
  });
  std::thread b([&] {
    mg_test::wait_until_inside();
    if (!strcmp(mode, "writes") || !strcmp(mode, "read-write") || !strcmp(mode, "iterate-write") ||
        !strcmp(mode, "unsync-writes") || !strcmp(mode, "unsync-read-write") ||
        !strcmp(mode, "unsync-iterate-write"))
      do_insert(m, 7);
    else if (!strcmp(mode, "write-read") || !strcmp(mode, "unsync-write-read"))
      do_find(m, 7);
    else if (!strcmp(mode, "write-iterate"))
      do_iterate(m, false);
  });
  a.join();
  b.join();
  std::printf("NO REPORT\n");
  return 0;
}
