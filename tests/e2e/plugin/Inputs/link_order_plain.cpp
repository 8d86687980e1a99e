// Compiled without the plugin by link_order.cpp.
#include "link_order.h"

void plain_side(Table &m, Flag &flag) {
  put(m, 1000);
  flag.set();
  (void)flag.get();
  std::promise<void> p;
  std::future<void> f = p.get_future();
  hand_over(p);
  wait_for(f);
}
