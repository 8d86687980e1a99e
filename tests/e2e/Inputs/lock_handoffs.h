// Hand-offs of a map between threads through a lock or a signal, in an order
// the test forces with relaxed atomics (which order nothing): only the lock
// or signal under test can order the accesses. Shared by the tests of the
// catalogue's sync lines (tests/e2e/sync/absl_sync.cpp, qt_sync.cpp).
#ifndef MAPGUARD_LOCK_HANDOFFS_H
#define MAPGUARD_LOCK_HANDOFFS_H

#include <atomic>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <thread>

namespace mg_handoff {

using Table = std::map<int, int>;

// Two threads take turns, strictly alternating, each writing under
// `locked(body)`, which runs body while holding the lock.
template <typename Locked>
void take_turns(Table &table, Locked locked) {
  std::atomic<int> turn{0};
  auto worker = [&](int me) {
    for (int i = 0; i < 200; i++) {
      while (turn.load(std::memory_order_relaxed) % 2 != me) std::this_thread::yield();
      locked([&] { table[i % 7] += me + 1; });
      turn.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
}

// The writer writes, then hands over through `handoff`; the reader starts
// after the write, waits for it (`wait`) and reads.
template <typename Handoff, typename Wait>
void hand_over(Table &table, Handoff handoff, Wait wait) {
  std::atomic<bool> written{false};
  std::thread writer([&] {
    table[1] = 1;
    written.store(true, std::memory_order_relaxed);
    handoff();
  });
  std::thread reader([&] {
    while (!written.load(std::memory_order_relaxed)) std::this_thread::yield();
    wait();
    if (table.count(1) != 1) std::abort();
  });
  writer.join();
  reader.join();
}

// The reader takes the lock and blocks in `wait` (which gives the lock up
// and takes it back) before the writer writes under the lock and calls
// `wake`: only the wait's return orders the write before the read.
template <typename Lock, typename Unlock, typename Wait, typename Wake>
void wait_then_read(Table &table, Lock lock, Unlock unlock, Wait wait, Wake wake) {
  std::atomic<bool> waiting{false};
  std::thread reader([&] {
    lock();
    waiting.store(true, std::memory_order_relaxed);
    wait();
    if (table.count(1) != 1) std::abort();
    unlock();
  });
  std::thread writer([&] {
    while (!waiting.load(std::memory_order_relaxed)) std::this_thread::yield();
    lock();  // granted once the reader waits
    table[1] = 1;
    wake();
    unlock();
  });
  writer.join();
  reader.join();
}

// Readers under `read_locked` after a writer under `write_locked`, then a
// writer after the readers, each step started once the one before is done.
template <typename WriteLocked, typename ReadLocked>
void readers_between_writers(Table &table, WriteLocked write_locked, ReadLocked read_locked) {
  std::atomic<int> step{0};
  auto await_step = [&](int s) {
    while (step.load(std::memory_order_relaxed) < s) std::this_thread::yield();
  };
  std::thread w1([&] { write_locked([&] { table[2] = 2; }); step = 1; });
  std::thread r1([&] { await_step(1); read_locked([&] { (void)table.count(2); }); step += 1; });
  std::thread r2([&] { await_step(1); read_locked([&] { (void)table.count(2); }); step += 1; });
  std::thread w2([&] { await_step(3); write_locked([&] { table[2] = 3; }); });
  for (std::thread *t : {&w1, &r1, &r2, &w2}) t->join();
}

}  // namespace mg_handoff

#endif  // MAPGUARD_LOCK_HANDOFFS_H
