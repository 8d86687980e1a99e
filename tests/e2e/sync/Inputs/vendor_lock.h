#ifndef VENDOR_LOCK_H
#define VENDOR_LOCK_H
#include <atomic>

namespace vendor {
class SpinLock {
 public:
  void acquire();
  bool try_acquire();
  void release();

 private:
  std::atomic<bool> held_{false};
};
}  // namespace vendor
#endif
