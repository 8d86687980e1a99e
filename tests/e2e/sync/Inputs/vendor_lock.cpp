// A lock in a prebuilt vendor library: compiled without the plugin, so the
// atomics it synchronizes with are invisible to mapguard.
#include "vendor_lock.h"

#include <sched.h>

namespace vendor {
void SpinLock::acquire() {
  while (held_.exchange(true, std::memory_order_acquire)) sched_yield();
}
bool SpinLock::try_acquire() { return !held_.exchange(true, std::memory_order_acquire); }
void SpinLock::release() { held_.store(false, std::memory_order_release); }
}  // namespace vendor
