// VectorClock: one logical clock per thread slot, sized by the highest slot
// in use (slots of finished threads are reused, so clocks stay as small as
// the peak number of live threads). Storage comes from the runtime arena, or
// starts in a few entries its owner lends (a SyncVar's own cache line).
#ifndef MAPGUARD_VECTOR_CLOCK_H
#define MAPGUARD_VECTOR_CLOCK_H

#include <stdint.h>
#include <string.h>

#include "mg_arena.h"

namespace mapguard {

class VectorClock {
 public:
  VectorClock() = default;
  // Starts on `n` entries at `storage`, which outlive the clock; a clock
  // that needs more moves to the arena.
  VectorClock(uint32_t *storage, uint32_t n) : cap_(n | kBorrowed), clk_(storage) {}
  VectorClock(const VectorClock &) = delete;
  VectorClock &operator=(const VectorClock &) = delete;

  uint32_t Get(uint32_t slot) const { return slot < size_ ? clk_[slot] : 0; }
  uint32_t Size() const { return size_; }
  void Set(uint32_t slot, uint32_t value) {
    if (slot >= size_) Grow(slot + 1);
    clk_[slot] = value;
  }
  // this = max(this, other), element-wise: everything `other` knows
  // happened before now happened before this clock's owner too.
  void Join(const VectorClock &other) {
    if (other.size_ > size_) Grow(other.size_);
    for (uint32_t i = 0; i < other.size_; i++)
      if (other.clk_[i] > clk_[i]) clk_[i] = other.clk_[i];
  }
  void CopyFrom(const VectorClock &other) {
    if (other.size_ > size_) Grow(other.size_);
    memcpy(clk_, other.clk_, other.size_ * sizeof(uint32_t));
    for (uint32_t i = other.size_; i < size_; i++) clk_[i] = 0;
  }
  void Free() {
    if (!(cap_ & kBorrowed)) ArenaFree(clk_, cap_ * sizeof(uint32_t));
    clk_ = nullptr;
    size_ = cap_ = 0;
  }
  void Reset() {
    if (clk_) memset(clk_, 0, size_ * sizeof(uint32_t));
  }
  // Empty again (Size() == 0), keeping its storage.
  void Clear() {
    Reset();
    size_ = 0;
  }

 private:
  static constexpr uint32_t kBorrowed = 1u << 31;  // in cap_: clk_ is lent storage
  void Grow(uint32_t need) {
    const uint32_t have = cap_ & ~kBorrowed;
    if (need > have) {
      uint32_t cap = have ? have : 8;
      while (cap < need) cap *= 2;
      uint32_t *fresh = static_cast<uint32_t *>(ArenaAlloc(cap * sizeof(uint32_t)));
      if (clk_) memcpy(fresh, clk_, size_ * sizeof(uint32_t));
      if (!(cap_ & kBorrowed)) ArenaFree(clk_, cap_ * sizeof(uint32_t));
      clk_ = fresh;
      cap_ = cap;
    }
    size_ = need;
  }
  uint32_t size_ = 0, cap_ = 0;
  uint32_t *clk_ = nullptr;
};

}  // namespace mapguard

#endif
