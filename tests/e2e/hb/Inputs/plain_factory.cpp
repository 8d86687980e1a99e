// Built without the plugin: a factory that makes and destroys maps, and
// hands them over with its own (uninstrumented) synchronization, as a
// prebuilt library would.
#include <atomic>
#include <unordered_map>

#include "plain_factory.h"

struct Handle {
  std::unordered_map<int, int> map;
  std::atomic<int> released{0};
};

Handle *make_handle() { return new Handle; }
std::unordered_map<int, int> &map_of(Handle *h) { return h->map; }
void release_handle(Handle *h) { h->released.store(1, std::memory_order_release); }
void destroy_when_released(Handle *h) {
  while (!h->released.load(std::memory_order_acquire)) {
  }
  delete h;
}
