// Inline functions that an instrumented and a plain object both emit
// (link_order.cpp): the linker keeps one copy of each.
#include <atomic>
#include <future>
#include <unordered_map>

#include "test_sync.h"

using Table = std::unordered_map<int, int, mg_test::BlockingHash>;

inline void put(Table &m, int k) { m[k] = k; }

struct Flag {
  std::atomic<int> v{0};
  void set() { v.store(1, std::memory_order_release); }
  bool get() { return v.load(std::memory_order_acquire) == 1; }
};

inline void hand_over(std::promise<void> &p) { p.set_value(); }
inline void wait_for(std::future<void> &f) { f.get(); }

// Defined in the plain object: uses every inline function above.
void plain_side(Table &m, Flag &flag);
