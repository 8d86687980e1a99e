// The runtime's region state machine, driven through the same C ABI the
// plugin's code calls. Conflicts end the process, so they are death tests.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <pthread.h>

#include <chrono>
#include <thread>
#include <vector>

#include "mapguard/interface.h"
#include "mg_access.h"
#include "mg_fast_path.h"
#include "mg_hb.h"
#include "mg_report.h"
#include "mg_vector_clock.h"
#include "mg_shadow.h"
#include "mg_stack.h"

namespace {

mg_site Site(mg_access_kind kind, const char *op, unsigned line) {
  return mg_site{op, "unit.cpp", line, 3, "test_function()", "std::map<int, int>", "m", uint32_t(kind),
                 MG_ABI_VERSION};
}
const mg_site kRead = Site(MG_READ, "find", 10);
const mg_site kWrite = Site(MG_WRITE, "insert", 20);
const mg_site kIter = Site(MG_ITERATE, "range-for", 30);
const mg_site kCtor = Site(MG_CONSTRUCT, "constructor", 40);
const mg_site kDtor = Site(MG_DESTROY, "destructor", 50);

uint64_t StateOf(void *map) { return mapguard::g_shadow.Get(map)->state.load(); }
uint32_t OwnerOf(void *map) { return mapguard::g_shadow.Get(map)->owner.load(); }
// As if a second thread had used the map: every region is counted in state.
void Share(void *map) { mapguard::g_shadow.Get(map)->owner.store(mapguard::kOwnerShared); }

// Runs `in_region` on another thread between begin(map) and end(map).
template <typename Fn>
void WithOtherThreadInside(void (*begin)(void *, const mg_site *), const mg_site *site, void *map,
                           Fn in_region) {
  std::atomic<bool> inside{false}, done{false};
  std::thread t([&] {
    begin(map, site);
    inside = true;
    while (!done) std::this_thread::yield();
  });
  while (!inside) std::this_thread::yield();
  in_region();
  done = true;
  t.join();
}

class RuntimeState : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  alignas(64) char map_[64] = {};
  void *map() { return map_; }
};

// The inlined fast path's token (mg_fast_path.h): the begin hands the end
// the index of its owned region. A second thread that reads the map in
// between revokes the ownership and counts that region in the state word
// (R3); the token end must see it (E3) and give the count back, or the map
// keeps a phantom reader and its next correct write is reported.
TEST_F(RuntimeState, ATokenEndGivesBackWhatARevokerCounted) {
  __mapguard_construct(map(), &kCtor);
  ASSERT_EQ(OwnerOf(map()), mapguard::CurrentThread()->slot + 1);
  const long token = mapguard::OwnedBeginFast(map(), &kRead, mapguard::state::kReaderOne, 0);
  ASSERT_GE(token, 0);
  std::thread other([&] {
    __mapguard_read_begin(map(), &kRead);  // revokes: our region is counted now
    __mapguard_read_end(map(), &kRead);
  });
  other.join();
  EXPECT_EQ(mapguard::state::Readers(StateOf(map())), 1u) << "the revoker counted our read";
  mapguard::TokenEndFast(map(), &kRead, false, token);
  EXPECT_EQ(StateOf(map()) & ~mapguard::state::kAnnounce, 0u);
  EXPECT_EQ(mapguard::CurrentThread()->regions.Depth(), 0);
}

// A token end whose region is not on top (regions ended out of order)
// tombstones it and leaves the pop to the region above.
TEST_F(RuntimeState, ATokenEndBelowAnotherRegionLeavesATombstone) {
  alignas(64) static char other_map[64];
  __mapguard_construct(map(), &kCtor);
  const long token = mapguard::OwnedBeginFast(map(), &kRead, mapguard::state::kReaderOne, 0);
  ASSERT_GE(token, 0);
  __mapguard_read_begin(other_map, &kRead);
  mapguard::TokenEndFast(map(), &kRead, false, token);
  EXPECT_EQ(mapguard::CurrentThread()->regions.Depth(), 2) << "the other region is still open";
  __mapguard_read_end(other_map, &kRead);
  EXPECT_EQ(mapguard::CurrentThread()->regions.Depth(), 0);
}

TEST_F(RuntimeState, RegionsLeaveNoStateBehind) {
  Share(map());
  __mapguard_read_begin(map(), &kRead);
  EXPECT_EQ(mapguard::state::Readers(StateOf(map())), 1u);
  __mapguard_read_end(map(), &kRead);
  __mapguard_write_begin(map(), &kWrite);
  EXPECT_NE(mapguard::state::Writer(StateOf(map())), 0u);
  __mapguard_write_end(map(), &kWrite);
  __mapguard_iter_begin(map(), &kIter);
  EXPECT_EQ(mapguard::state::Iterators(StateOf(map())), 1u);
  __mapguard_iter_end(map(), &kIter);
  EXPECT_EQ(StateOf(map()), 0u);
}

TEST_F(RuntimeState, OneThreadNestingOnItsOwnMapIsNotAConflict) {
  Share(map());
  __mapguard_iter_begin(map(), &kIter);
  __mapguard_read_begin(map(), &kRead);
  __mapguard_write_begin(map(), &kWrite);  // insert while iterating: same thread
  __mapguard_write_begin(map(), &kWrite);  // nested write (e.g. a callback)
  __mapguard_write_end(map(), &kWrite);
  EXPECT_NE(mapguard::state::Writer(StateOf(map())), 0u) << "outer write must keep the flag";
  __mapguard_write_end(map(), &kWrite);
  __mapguard_read_end(map(), &kRead);
  __mapguard_iter_end(map(), &kIter);
  EXPECT_EQ(StateOf(map()), 0u);
}

TEST_F(RuntimeState, EndsWithoutBeginsAreIgnored) {
  __mapguard_read_end(map(), &kRead);
  __mapguard_write_end(map(), &kWrite);
  __mapguard_iter_end(map(), &kIter);
  __mapguard_iter_end(nullptr, &kIter);
  __mapguard_read_end(nullptr, &kRead);
  EXPECT_EQ(StateOf(map()), 0u);
}

TEST_F(RuntimeState, SequentialAccessesFromTwoThreadsDoNotOverlap) {
  std::thread([&] {
    __mapguard_write_begin(map(), &kWrite);
    __mapguard_write_end(map(), &kWrite);
  }).join();
  __mapguard_write_begin(map(), &kWrite);
  __mapguard_write_end(map(), &kWrite);
  EXPECT_EQ(StateOf(map()), 0u);
}

TEST_F(RuntimeState, AMapOneThreadUsesIsOwnedAndCostsNoStateUpdates) {
  __mapguard_iter_begin(map(), &kIter);
  __mapguard_write_begin(map(), &kWrite);
  EXPECT_EQ(StateOf(map()), 0u) << "an owned map's regions live on the owner's stack only";
  EXPECT_NE(OwnerOf(map()), 0u);
  __mapguard_write_end(map(), &kWrite);
  __mapguard_iter_end(map(), &kIter);
  EXPECT_EQ(StateOf(map()), 0u);
}

// The first access by a second thread revokes ownership: the owner, inside
// its read region, counts it into the state word from a signal handler.
TEST_F(RuntimeState, RevocationCountsTheOwnersOpenRegions) {
  __mapguard_read_begin(map(), &kRead);  // this thread owns the map
  ASSERT_EQ(StateOf(map()), 0u);
  std::thread other([&] {
    __mapguard_read_begin(map(), &kRead);
    EXPECT_EQ(mapguard::state::Readers(StateOf(map())), 2u);
    EXPECT_EQ(OwnerOf(map()), mapguard::kOwnerShared);
    __mapguard_read_end(map(), &kRead);
  });
  other.join();
  EXPECT_EQ(mapguard::state::Readers(StateOf(map())), 1u);
  __mapguard_read_end(map(), &kRead);
  // The two reads overlapped: the map is read-shared now, nothing counted.
  EXPECT_EQ(StateOf(map()), mapguard::state::kAnnounce);
  // Shared for good: this thread's regions are counted now.
  __mapguard_write_begin(map(), &kWrite);
  EXPECT_NE(mapguard::state::Writer(StateOf(map())), 0u);
  __mapguard_write_end(map(), &kWrite);
}

TEST_F(RuntimeState, ConcurrentReadersAreFine) {
  WithOtherThreadInside(__mapguard_read_begin, &kRead, map(), [&] {
    __mapguard_read_begin(map(), &kRead);
    EXPECT_EQ(mapguard::state::Readers(StateOf(map())), 2u);
    __mapguard_read_end(map(), &kRead);
  });
}

// Steps A0-A5 and W1-W3 (mg_ownership.cpp): once two reads of a shared map
// overlap, reads announce themselves on their own stack instead of counting
// in the map's state word, until the next write.
TEST_F(RuntimeState, OverlappingReadsTurnASharedMapReadShared) {
  Share(map());
  WithOtherThreadInside(__mapguard_read_begin, &kRead, map(), [&] {
    __mapguard_read_begin(map(), &kRead);  // counted, and finds the other read
    EXPECT_EQ(mapguard::state::Readers(StateOf(map())), 2u);
    EXPECT_NE(StateOf(map()) & mapguard::state::kAnnounce, 0u);
    __mapguard_read_end(map(), &kRead);
    __mapguard_read_begin(map(), &kRead);  // announced: not counted
    EXPECT_EQ(mapguard::state::Readers(StateOf(map())), 1u);
    __mapguard_read_end(map(), &kRead);
    EXPECT_EQ(mapguard::state::Readers(StateOf(map())), 1u);
  });
  EXPECT_EQ(StateOf(map()), mapguard::state::kAnnounce);
  __mapguard_write_begin(map(), &kWrite);  // W1 turns it counted again
  EXPECT_EQ(StateOf(map()) & mapguard::state::kAnnounce, 0u);
  EXPECT_NE(mapguard::state::Writer(StateOf(map())), 0u);
  __mapguard_write_end(map(), &kWrite);
  EXPECT_EQ(StateOf(map()), 0u);
  __mapguard_read_begin(map(), &kRead);  // counted again
  EXPECT_EQ(mapguard::state::Readers(StateOf(map())), 1u);
  __mapguard_read_end(map(), &kRead);
}

TEST_F(RuntimeState, WriteDuringAnnouncedReadDies) {
  Share(map());
  mapguard::g_shadow.Get(map())->state.store(mapguard::state::kAnnounce);
  EXPECT_EXIT(WithOtherThreadInside(__mapguard_read_begin, &kRead, map(),
                                    [&] {
                                      if (StateOf(map()) != mapguard::state::kAnnounce) _exit(3);
                                      __mapguard_write_begin(map(), &kWrite);
                                    }),
              ::testing::ExitedWithCode(66),
              "fatal error: concurrent map read and map write(.|\n)*Read \\(find\\) in progress in thread T");
}

TEST_F(RuntimeState, AnnouncedReadDuringWriteDies) {
  Share(map());
  mapguard::g_shadow.Get(map())->state.store(mapguard::state::kAnnounce);
  EXPECT_EXIT(WithOtherThreadInside(__mapguard_write_begin, &kWrite, map(),
                                    [&] { __mapguard_read_begin(map(), &kRead); }),
              ::testing::ExitedWithCode(66), "fatal error: concurrent map read and map write");
}

TEST_F(RuntimeState, DestroyRetiresTheShadow) {
  __mapguard_construct(map(), &kCtor);
  EXPECT_EQ(mapguard::g_shadow.Get(map())->created_site.load(), &kCtor);
  __mapguard_destroy_begin(map(), &kDtor);
  __mapguard_destroy_end(map(), &kDtor);
  EXPECT_EQ(StateOf(map()), 0u);
  EXPECT_EQ(mapguard::g_shadow.Get(map())->created_site.load(), nullptr);
}

TEST_F(RuntimeState, TwoWritersDie) {
  EXPECT_EXIT(WithOtherThreadInside(__mapguard_write_begin, &kWrite, map(),
                                    [&] { __mapguard_write_begin(map(), &kWrite); }),
              ::testing::ExitedWithCode(66),
              "fatal error: concurrent map writes(.|\n)*Write \\(insert\\) in progress in thread T");
}

// The window a timed race hits 1 run in 100 (SoftHSMv2, libhttpserver,
// OpenMOC): a read's count finds a writer, and that writer leaves, and its
// thread exits, before the reader's slow path looks again. The reader
// reports from what the map remembers and never asks the gone thread (or
// a null one) for its stack: before, SIGSEGV in RequestStackOf(nullptr).
// The reader's side: its begin up to its count, which finds the writer;
// then the writer ends and its thread exits; then the reader's slow path.
void ReadAfterTheWriterLeft(void *map) {
  std::atomic<bool> inside{false};
  std::atomic<bool> leave{false};
  std::thread writer([&] {
    __mapguard_write_begin(map, &kWrite);
    inside = true;
    while (!leave) std::this_thread::yield();
    __mapguard_write_end(map, &kWrite);
  });
  while (!inside) std::this_thread::yield();
  mapguard::MapShadow *s = mapguard::g_shadow.Get(map);
  mapguard::ThreadState *me = mapguard::CurrentThread();
  me->regions.Push(map, &kRead, mapguard::kRegionCounted, false, 0);
  const uint64_t seen = s->state.fetch_add(mapguard::state::kReaderOne);
  if (!mapguard::state::Writer(seen)) _exit(3);
  leave = true;
  writer.join();
  mapguard::ReadBeginSlow(me, s, map, &kRead, seen);
  _exit(4);
}

TEST_F(RuntimeState, AWriterThatLeftBeforeTheReaderLooksIsReportedFromHistory) {
  Share(map());
  EXPECT_EXIT(ReadAfterTheWriterLeft(map()), ::testing::ExitedWithCode(66),
              "fatal error: concurrent map read and map write(.|\n)*Write \\(insert\\) (by|in "
              "progress in) thread T[0-9]+(.|\n)*stack unavailable: the thread had left the map");
}

TEST_F(RuntimeState, WriteDuringReadDies) {
  EXPECT_EXIT(WithOtherThreadInside(__mapguard_read_begin, &kRead, map(),
                                    [&] { __mapguard_write_begin(map(), &kWrite); }),
              ::testing::ExitedWithCode(66), "fatal error: concurrent map read and map write");
}

TEST_F(RuntimeState, ReadDuringWriteDies) {
  EXPECT_EXIT(WithOtherThreadInside(__mapguard_write_begin, &kWrite, map(),
                                    [&] { __mapguard_read_begin(map(), &kRead); }),
              ::testing::ExitedWithCode(66), "fatal error: concurrent map read and map write");
}

TEST_F(RuntimeState, WriteDuringIterationDies) {
  EXPECT_EXIT(WithOtherThreadInside(__mapguard_iter_begin, &kIter, map(),
                                    [&] { __mapguard_write_begin(map(), &kWrite); }),
              ::testing::ExitedWithCode(66), "fatal error: concurrent map iteration and map write");
}

TEST_F(RuntimeState, DestroyDuringReadDies) {
  EXPECT_EXIT(WithOtherThreadInside(__mapguard_read_begin, &kRead, map(),
                                    [&] { __mapguard_destroy_begin(map(), &kDtor); }),
              ::testing::ExitedWithCode(66), "Destruction \\(destructor\\) by thread");
}

TEST_F(RuntimeState, ExitcodeOptionIsHonoured) {
  EXPECT_EXIT(
      {
        setenv("MAPGUARD_OPTIONS", "exitcode=42", 1);
        mapguard::InitFlags();
        WithOtherThreadInside(__mapguard_write_begin, &kWrite, map(),
                              [&] { __mapguard_write_begin(map(), &kWrite); });
      },
      ::testing::ExitedWithCode(42), "concurrent map writes");
}

TEST_F(RuntimeState, BadOptionsStopWithOneClearLine) {
  EXPECT_EXIT(
      {
        setenv("MAPGUARD_OPTIONS", "exitcode=66:no_such_option=1", 1);
        mapguard::InitFlags();
      },
      ::testing::ExitedWithCode(64), "mapguard: error: unknown option 'no_such_option'");
  EXPECT_EXIT(
      {
        setenv("MAPGUARD_OPTIONS", "halt_on_error=maybe", 1);
        mapguard::InitFlags();
      },
      ::testing::ExitedWithCode(64), "option 'halt_on_error' is a boolean: 1/0, true/false or yes/no, got 'maybe'");
  EXPECT_EXIT(
      {
        setenv("MAPGUARD_OPTIONS", "stack_depth=abc", 1);
        mapguard::InitFlags();
      },
      ::testing::ExitedWithCode(64), "option 'stack_depth' needs an integer, got 'abc'");
  EXPECT_EXIT(
      {
        setenv("MAPGUARD_OPTIONS", "verbosity", 1);
        mapguard::InitFlags();
      },
      ::testing::ExitedWithCode(64), "option 'verbosity' has no value");
  EXPECT_EXIT(
      {
        setenv("MAPGUARD_OPTIONS", "stack_depth=0", 1);
        mapguard::InitFlags();
      },
      ::testing::ExitedWithCode(64), "option 'stack_depth' must be between 1 and 128");
  EXPECT_EXIT(
      {
        setenv("MAPGUARD_OPTIONS", "exitcode=300", 1);
        mapguard::InitFlags();
      },
      ::testing::ExitedWithCode(64), "option 'exitcode' must be between 0 and 255");
  EXPECT_EXIT(
      {
        setenv("MAPGUARD_OPTIONS", "report_wait_ms=-5", 1);
        mapguard::InitFlags();
      },
      ::testing::ExitedWithCode(64), "option 'report_wait_ms' must not be negative");
  EXPECT_EXIT(
      {
        setenv("MAPGUARD_OPTIONS", "usdt_read_sample=0", 1);
        mapguard::InitFlags();
      },
      ::testing::ExitedWithCode(64), "option 'usdt_read_sample' must be at least 1");
  EXPECT_EXIT(
      {
        setenv("MAPGUARD_OPTIONS", "detect=fast", 1);
        mapguard::InitFlags();
      },
      ::testing::ExitedWithCode(64), "option 'detect' must be hb or overlap, got 'fast'");
}

TEST_F(RuntimeState, HaltOnErrorZeroKeepsGoingAndCounts) {
  setenv("MAPGUARD_OPTIONS", "halt_on_error=0:report_wait_ms=100", 1);
  mapguard::InitFlags();
  int before = mapguard::g_reports.load();
  WithOtherThreadInside(__mapguard_write_begin, &kWrite, map(), [&] {
    __mapguard_write_begin(map(), &kWrite);
    __mapguard_write_end(map(), &kWrite);
  });
  EXPECT_EQ(mapguard::g_reports.load(), before + 1);
  unsetenv("MAPGUARD_OPTIONS");
  mapguard::InitFlags();
  mapguard::g_reports.store(before);  // this test's report is expected
}

TEST(VectorClockTest, JoinCopyAndGrow) {
  mapguard::VectorClock a, b;
  a.Set(0, 5);
  a.Set(3, 1);
  b.Set(1, 7);
  b.Set(3, 4);
  b.Set(40, 2);  // grows past the initial capacity
  a.Join(b);
  EXPECT_EQ(a.Get(0), 5u);
  EXPECT_EQ(a.Get(1), 7u);
  EXPECT_EQ(a.Get(3), 4u);
  EXPECT_EQ(a.Get(40), 2u);
  EXPECT_EQ(a.Get(1000), 0u);
  mapguard::VectorClock c;
  c.Set(50, 9);
  c.CopyFrom(b);
  EXPECT_EQ(c.Get(50), 0u) << "CopyFrom must clear entries the source lacks";
  EXPECT_EQ(c.Get(1), 7u);
  a.Free();
  b.Free();
  c.Free();
}

// Happens-before: a write on one thread and a write on another, ordered
// only by a relaxed flag, are reported however far apart they are.
TEST_F(RuntimeState, UnorderedWritesAreReportedWithoutOverlap) {
  EXPECT_EXIT(
      {
        std::atomic<bool> done{false};
        std::thread t([&] {
          __mapguard_write_begin(map(), &kWrite);
          __mapguard_write_end(map(), &kWrite);
          done.store(true, std::memory_order_relaxed);
        });
        while (!done.load(std::memory_order_relaxed)) std::this_thread::yield();
        __mapguard_write_begin(map(), &kWrite);
        t.join();
      },
      ::testing::ExitedWithCode(66), "fatal error: unsynchronized map writes(.|\n)*Previous Write \\(insert\\) by thread T");
}

TEST_F(RuntimeState, ReleaseAcquireOrdersTheWrites) {
  static char channel;
  std::atomic<bool> done{false};
  std::thread t([&] {
    __mapguard_write_begin(map(), &kWrite);
    __mapguard_write_end(map(), &kWrite);
    __mapguard_happens_before(&channel);
    done.store(true, std::memory_order_relaxed);
  });
  while (!done.load(std::memory_order_relaxed)) std::this_thread::yield();
  __mapguard_happens_after(&channel);
  __mapguard_write_begin(map(), &kWrite);
  __mapguard_write_end(map(), &kWrite);
  t.join();
  EXPECT_EQ(StateOf(map()), 0u);
}

TEST_F(RuntimeState, ConcurrentReadersThenAWriterAfterJoiningOnlyOne) {
  // Two unordered readers; the writer joined only the first: the second
  // reader's read is unordered with the write.
  EXPECT_EXIT(
      {
        std::atomic<bool> second_done{false};
        std::thread r1([&] { __mapguard_read_begin(map(), &kRead); __mapguard_read_end(map(), &kRead); });
        std::thread r2([&] {
          __mapguard_read_begin(map(), &kRead);
          __mapguard_read_end(map(), &kRead);
          second_done.store(true, std::memory_order_relaxed);
        });
        r1.join();
        while (!second_done.load(std::memory_order_relaxed)) std::this_thread::yield();
        __mapguard_write_begin(map(), &kWrite);
        r2.join();
      },
      ::testing::ExitedWithCode(66), "unsynchronized map read and map write");
}

TEST_F(RuntimeState, ConstructionForgetsTheAddressHistory) {
  std::thread([&] {
    __mapguard_write_begin(map(), &kWrite);
    __mapguard_write_end(map(), &kWrite);
  }).detach();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // A new map is built here (as after free + malloc in another thread).
  __mapguard_construct(map(), &kCtor);
  __mapguard_write_begin(map(), &kWrite);
  __mapguard_write_end(map(), &kWrite);
  EXPECT_EQ(StateOf(map()), 0u);
}

}  // namespace

// Read-set protocol (mg_hb.h), step R: a reader whose entry holds an earlier
// epoch of its own refreshes it without the map's lock. The refreshed read
// must count: a writer ordered after the reader's first read only races
// with its second.
TEST_F(RuntimeState, ARefreshedReadIsRecorded) {
  EXPECT_EXIT(
      {
        static char first_read_done;
        Share(map());
        std::atomic<int> step{0};
        std::thread r1([&] {
          __mapguard_read_begin(map(), &kRead);
          __mapguard_read_end(map(), &kRead);
          step.store(1);
          while (step.load() != 2) std::this_thread::yield();
          __mapguard_happens_before(&first_read_done);  // a release: the next read is a new epoch
          __mapguard_read_begin(map(), &kRead);
          __mapguard_read_end(map(), &kRead);
          step.store(3);
        });
        while (step.load() != 1) std::this_thread::yield();
        // A second reader, unordered with the first: the map gets a read set.
        std::thread([&] {
          __mapguard_read_begin(map(), &kRead);
          __mapguard_read_end(map(), &kRead);
        }).join();
        uint64_t r = mapguard::g_shadow.Get(map())->hb_read.load();
        if (!mapguard::IsReadSet(r)) _exit(3);
        step.store(2);
        while (step.load() != 3) std::this_thread::yield();
        // Ordered after r1's release, so after its first read, not its second.
        __mapguard_happens_after(&first_read_done);
        __mapguard_write_begin(map(), &kWrite);
        r1.join();
      },
      ::testing::ExitedWithCode(66), "unsynchronized map read and map write");
}

// Step R against step G under random delays at every step: readers keep
// refreshing their entries while later readers join and the set grows
// (3, 7, 14 entries). After each round every reader's latest epoch must be
// in the set, and every step (including R redone after G) must have run.
namespace read_set_stress {
std::atomic<uint64_t> g_steps[4];
thread_local uint32_t t_rng = 1;
void RandomDelay(mapguard::ReadSetStep step) {
  g_steps[int(step)].fetch_add(1, std::memory_order_relaxed);
  t_rng = t_rng * 1664525u + 1013904223u;
  uint32_t r = t_rng >> 8;
  if (step == mapguard::ReadSetStep::kGrowRetired) {
    // Holding hb_lock: long enough that refreshing readers run meanwhile.
    for (int i = 0; i < 20; i++) std::this_thread::yield();
  } else if (r % 4 == 0) {
    std::this_thread::yield();
  } else {
    for (volatile uint32_t i = 0; i < r % 2000; i++) {
    }
  }
}
}  // namespace read_set_stress

TEST_F(RuntimeState, ReadSetRefreshSurvivesGrowthUnderRandomDelays) {
  using namespace read_set_stress;
  constexpr int kRounds = 40, kReaders = 12, kReads = 60;
  static char released[kReaders];
  mapguard::g_read_set_step_hook = RandomDelay;
  for (int round = 0; round < kRounds; round++) {
    __mapguard_construct(map(), &kCtor);  // forgets the last round's reads
    Share(map());
    uint32_t slot[kReaders];
    uint64_t last_epoch[kReaders];
    std::atomic<int> joined{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < kReaders; t++)
      readers.emplace_back([&, t] {
        t_rng = uint32_t(round * kReaders + t + 1);
        // Join in turn, so the set grows while the earlier readers refresh.
        while (joined.load() < t) std::this_thread::yield();
        for (int i = 0; i < kReads; i++) {
          __mapguard_read_begin(map(), &kRead);
          __mapguard_read_end(map(), &kRead);
          if (i == 0) joined.fetch_add(1);
          last_epoch[t] = mapguard::CurrentEpoch(mapguard::t_thread);
          __mapguard_happens_before(&released[t]);  // a new epoch for the next read
        }
        slot[t] = mapguard::t_thread->slot;
      });
    for (auto &r : readers) r.join();
    uint64_t r = mapguard::g_shadow.Get(map())->hb_read.load();
    ASSERT_TRUE(mapguard::IsReadSet(r)) << "round " << round;
    mapguard::ReadSet *rs = mapguard::AsReadSet(r);
    ASSERT_EQ(rs->count.load(), uint32_t(kReaders)) << "round " << round;
    for (int t = 0; t < kReaders; t++) {
      int i = rs->Find(slot[t], rs->count.load());
      ASSERT_GE(i, 0) << "round " << round << " reader " << t;
      EXPECT_EQ(rs->At(uint32_t(i)).epoch.load(), last_epoch[t]) << "round " << round << " reader " << t;
    }
  }
  mapguard::g_read_set_step_hook = nullptr;
  using mapguard::ReadSetStep;
  for (auto step : {ReadSetStep::kRefreshFound, ReadSetStep::kRefreshExchanged, ReadSetStep::kGrowRetired,
                    ReadSetStep::kRefreshRedone})
    EXPECT_GT(g_steps[int(step)].load(), 0u) << "step " << int(step) << " never ran";
  std::printf("read-set steps: found %lu exchanged %lu grown %lu redone %lu\n",
              (unsigned long)g_steps[0].load(), (unsigned long)g_steps[1].load(),
              (unsigned long)g_steps[2].load(), (unsigned long)g_steps[3].load());
}

// A thread's history stacks go through a one-entry cache (StackDepotPutHistory):
// each stack must still get its own depot id, whatever came before it, and a
// record nested in another (a signal handler's) must not use the cache.
TEST_F(RuntimeState, HistoryStackCacheGivesEachStackItsOwnId) {
  mapguard::ThreadState *thr = mapguard::CurrentThread();
  auto trace = [](std::initializer_list<uintptr_t> pcs) {
    mapguard::StackTrace st;
    st.size = 0;
    for (uintptr_t pc : pcs) st.pc[st.size++] = pc;
    return st;
  };
  const mapguard::StackTrace a = trace({0x401000, 0x402000, 0x403000});
  const mapguard::StackTrace a_other_caller = trace({0x401000, 0x402000, 0x403100});
  const mapguard::StackTrace a_deeper = trace({0x401000, 0x402000, 0x403000, 0x404000});
  const mapguard::StackTrace b = trace({0x405000});
  const mapguard::StackTrace order[] = {a, a, a_other_caller, a, a_deeper, a, b, b, a};
  for (const mapguard::StackTrace &st : order) {
    uint32_t id = mapguard::StackDepotPutHistory(thr, st);
    EXPECT_NE(id, 0u);
    EXPECT_EQ(id, mapguard::StackDepotPut(st));
  }
  // Nested in an update (busy): the depot is asked directly, the cache is left alone.
  EXPECT_EQ(mapguard::StackDepotPutHistory(thr, a), mapguard::StackDepotPut(a));
  thr->history_busy = 1;
  EXPECT_EQ(mapguard::StackDepotPutHistory(thr, b), mapguard::StackDepotPut(b));
  thr->history_busy = 0;
  EXPECT_EQ(thr->history_size, a.size) << "a nested record changed the cache";
  EXPECT_EQ(thr->history_pc[2], a.pc[2]);
}

// A SyncVar's covered_by lets the thread it names skip the join at its next
// acquire. Any other thread's release must take that away: the acquire after
// it has to learn that release, or the write it orders is a false report.
TEST_F(RuntimeState, AnAcquireLearnsAnotherThreadsReleaseAfterItsOwnAcquire) {
  EXPECT_EXIT(
      {
        static char channel;  // __mapguard_happens_*: an object without a lock of its own
        static char mutex;    // Acquire/Release held exclusively: as a mutex's
        mapguard::ThreadState *me = mapguard::CurrentThread();
        for (int round = 0; round < 2; round++) {
          const void *sync = round == 0 ? static_cast<const void *>(&channel) : &mutex;
          bool exclusive = round == 1;
          // This thread releases (the object's first use makes its SyncVar),
          // then acquires (and, as a lock holder would, releases): covered by it.
          mapguard::Release(me, sync, exclusive);
          mapguard::Acquire(me, sync, exclusive);
          if (exclusive) mapguard::Release(me, sync, true);
          std::atomic<bool> done{false};
          std::thread t([&] {
            mapguard::ThreadState *thr = mapguard::CurrentThread();
            if (exclusive) mapguard::Acquire(thr, sync, true);
            __mapguard_write_begin(map(), &kWrite);
            __mapguard_write_end(map(), &kWrite);
            mapguard::Release(thr, sync, exclusive);
            done.store(true, std::memory_order_relaxed);
          });
          while (!done.load(std::memory_order_relaxed)) std::this_thread::yield();
          mapguard::Acquire(me, sync, exclusive);  // must join t's release
          __mapguard_write_begin(map(), &kWrite);
          __mapguard_write_end(map(), &kWrite);
          if (exclusive) mapguard::Release(me, sync, true);
          t.join();
        }
        std::fprintf(stderr, "ordered\n");
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "ordered");
}

extern void (*g_barrier_step_hook)();

// A barrier orders round k's arrivals before round k's returns, and nothing
// later: a thread slow to leave round k must not learn what the other did
// after leaving it (released at its round k+1 arrival). The hook holds the
// slow thread between glibc's return and the acquire.
TEST_F(RuntimeState, ABarrierRoundLearnsNothingOfTheNextRound) {
  EXPECT_EXIT(
      {
        static pthread_barrier_t b;
        pthread_barrier_init(&b, nullptr, 2);
        static mapguard::ThreadState *fast;
        static std::atomic<uint32_t> fast_before_next{0};
        static thread_local bool slow_thread = false;
        g_barrier_step_hook = [] {
          static std::atomic<int> calls{0};
          if (slow_thread && calls.fetch_add(1) == 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        };
        fast = mapguard::CurrentThread();
        uint32_t seen = 0;
        std::thread slow([&] {
          slow_thread = true;
          pthread_barrier_wait(&b);  // round 0, held in the hook
          seen = mapguard::CurrentThread()->vc.Get(fast->slot);
          pthread_barrier_wait(&b);  // round 1
        });
        pthread_barrier_wait(&b);  // round 0
        fast_before_next = fast->vc.Get(fast->slot);
        pthread_barrier_wait(&b);  // round 1: released while slow is held
        slow.join();
        std::fprintf(stderr, "slow saw %u, fast was at %u before round 1\n", seen,
                     fast_before_next.load());
        _exit(seen < fast_before_next.load() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "slow saw");
}

// A barrier freed by the other thread while this one is out of glibc's wait
// but not yet past its acquire: the acquire still learns what the other
// released on arrival (the clock was pinned for the wait). The hook holds
// the slow thread there until the barrier is destroyed and freed.
TEST_F(RuntimeState, ABarrierFreedBeforeTheAcquireStillOrders) {
  EXPECT_EXIT(
      {
        static std::atomic<bool> freed{false};  // the test's own, unseen
        static thread_local bool slow_thread = false;
        g_barrier_step_hook = [] {
          if (!slow_thread) return;
          while (!freed.load(std::memory_order_acquire)) std::this_thread::yield();
        };
        auto *b = static_cast<pthread_barrier_t *>(malloc(sizeof(pthread_barrier_t)));
        pthread_barrier_init(b, nullptr, 2);
        mapguard::ThreadState *fast = mapguard::CurrentThread();
        const uint32_t fast_slot = fast->slot;
        std::atomic<uint32_t> released{0};
        std::atomic<uint32_t> seen{0};
        std::thread slow([&] {
          slow_thread = true;
          pthread_barrier_wait(b);  // held in the hook until b is freed
          seen = mapguard::CurrentThread()->vc.Get(fast_slot);
        });
        released = fast->vc.Get(fast_slot);  // what the arrival below releases
        pthread_barrier_wait(b);
        pthread_barrier_destroy(b);  // glibc's waits until both left its wait
        free(b);
        freed.store(true, std::memory_order_release);
        slow.join();
        std::fprintf(stderr, "fast released %u, slow saw %u\n", released.load(), seen.load());
        _exit(seen >= released ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "slow saw");
}

// A clock belongs to one object: two atomics in one 8-byte granule have one
// each, and freeing memory empties the clocks and map history in it.
static bool ClocksFollowTheirObjects(void *map) {
  mapguard::ThreadState *me = mapguard::CurrentThread();
  alignas(8) static char pair[8];
  char *block = static_cast<char *>(malloc(64));
  uint32_t via_neighbour = 0, via_flag = 0, via_freed = 0;
  std::atomic<bool> go{false};  // relaxed: no edge
  // Started first: its creation orders nothing below before it.
  std::thread t([&] {
    while (!go.load(std::memory_order_relaxed)) std::this_thread::yield();
    mapguard::ThreadState *thr = mapguard::CurrentThread();
    mapguard::Acquire(thr, &pair[1]);
    via_neighbour = thr->vc.Get(me->slot);
    mapguard::Acquire(thr, block);
    via_freed = thr->vc.Get(me->slot);
    mapguard::Acquire(thr, &pair[0]);
    via_flag = thr->vc.Get(me->slot);
  });
  mapguard::Release(me, &pair[0]);
  mapguard::Release(me, block);
  __mapguard_write_begin(block + 16, &kWrite);
  __mapguard_write_end(block + 16, &kWrite);
  const uint32_t mine = me->vc.Get(me->slot);
  free(block);  // the runtime's free: the block's shadow is reset
  const uint64_t write_after_free = mapguard::g_shadow.Get(block + 16)->hb_write.load();
  go.store(true, std::memory_order_relaxed);
  t.join();
  std::fprintf(stderr, "clock %u: neighbour %u, freed %u, flag %u, write %lu\n", mine,
               via_neighbour, via_freed, via_flag, (unsigned long)write_after_free);
  (void)map;
  return via_neighbour < via_flag && via_freed < via_flag && via_flag + 2 >= mine &&
         write_after_free == 0;
}

TEST_F(RuntimeState, ClocksAreKeyedByExactAddressAndDieWithTheirMemory) {
  EXPECT_EXIT({ _exit(ClocksFollowTheirObjects(map()) ? 0 : 1); }, ::testing::ExitedWithCode(0),
              "clock");
}

// A synchronization object lives in the sync table (8 bytes per granule),
// not in the maps' 128-byte shadow: a release into an atomic in memory that
// never held a map maps no map shadow. Its page is marked used while its
// clock holds something, and giving the memory back empties the clock and
// clears the mark.
TEST_F(RuntimeState, ASyncObjectTakesNoMapShadowAndDiesWithItsMemory) {
  constexpr size_t kRegion = size_t(1) << mapguard::ShadowTable::kRegionBits;
  char *raw = static_cast<char *>(mmap(nullptr, 3 * kRegion, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(raw, MAP_FAILED);
  char *region = reinterpret_cast<char *>((reinterpret_cast<uintptr_t>(raw) + kRegion - 1) &
                                          ~uintptr_t(kRegion - 1));
  auto *flag = reinterpret_cast<std::atomic<int> *>(region + 4096 + 4);
  const uintptr_t a = reinterpret_cast<uintptr_t>(flag);
  ASSERT_EQ(mapguard::g_shadow.Find(flag), nullptr);
  mapguard::Release(mapguard::CurrentThread(), flag);
  EXPECT_EQ(mapguard::g_shadow.Find(flag), nullptr) << "a sync object mapped map shadow";
  EXPECT_NE(mapguard::g_sync_table.Find(flag), nullptr);
  EXPECT_TRUE(mapguard::g_sync_table.MaybeUsed(a, a + 4));
  EXPECT_TRUE(mapguard::AnySyncsInRange(a & ~uintptr_t(4095), (a & ~uintptr_t(4095)) + 4096));
  munmap(region, 4096 * 2);  // gives the flag's memory back (the interceptor)
  EXPECT_FALSE(mapguard::g_sync_table.MaybeUsed(a, a + 4));
  EXPECT_FALSE(mapguard::AnySyncsInRange(a & ~uintptr_t(4095), (a & ~uintptr_t(4095)) + 4096));
  munmap(raw, 3 * kRegion);
}

// A thread between a wait's return and its acquire keeps the clock it
// pinned before the wait, even when the other party frees the object then
// (absl::Barrier::Block: the last thread out deletes the barrier). Once the
// last pin goes the clock is emptied, as the free asked, unless a release
// into the next object at that address came first (then it keeps both).
static bool PinnedClocksOutliveTheirObject() {
  mapguard::ThreadState *me = mapguard::CurrentThread();
  char *barrier = static_cast<char *>(malloc(64));
  // The test's own hand-offs: plain C++ atomics the runtime does not see.
  std::atomic<int> step{0};
  std::atomic<uint32_t> their_slot{0}, theirs{0}, after_last_pin{~0u};
  // Started first: its creation orders nothing below before it.
  std::thread late([&] {
    while (step.load(std::memory_order_acquire) != 2) std::this_thread::yield();
    mapguard::Acquire(mapguard::CurrentThread(), barrier);
    after_last_pin = mapguard::CurrentThread()->vc.Get(their_slot);
  });
  void *my_pin = __mapguard_sync_wait_begin(barrier, 1);
  std::thread other([&] {
    mapguard::ThreadState *thr = mapguard::CurrentThread();
    void *pin = __mapguard_sync_wait_begin(barrier, 1);  // arrives second
    their_slot = thr->slot;
    theirs = thr->vc.Get(thr->slot) - 1;  // what it released
    __mapguard_sync_wait_end(pin, 1);
    free(barrier);  // last out: deletes the barrier while `me` is still in
    step.store(1, std::memory_order_release);
  });
  while (step.load(std::memory_order_acquire) != 1) std::this_thread::yield();
  __mapguard_sync_wait_end(my_pin, 1);
  const uint32_t learned = me->vc.Get(their_slot);
  step.store(2, std::memory_order_release);
  late.join();
  other.join();
  std::fprintf(stderr, "pinned clock: released %u, learned %u; after the last pin: %u\n",
               theirs.load(), learned, after_last_pin.load());
  return theirs > 0 && learned >= theirs && after_last_pin == 0;
}

// The next object at a freed, still pinned address is a lock (a mutex
// from the same malloc'd block): its holder's release, made without the
// SyncVar's lock as held locks do, must survive the last pin's let-go, which
// empties the clock only if nothing was released into it since the free.
static bool ALockAtAPinnedAddressKeepsItsRelease() {
  mapguard::ThreadState *me = mapguard::CurrentThread();
  char *block = static_cast<char *>(malloc(64));
  std::atomic<int> step{0};  // the test's own hand-offs, unseen by the runtime
  std::atomic<uint32_t> seen{0};
  std::thread late([&] {
    while (step.load(std::memory_order_acquire) != 2) std::this_thread::yield();
    mapguard::Acquire(mapguard::CurrentThread(), block, /*held_exclusively=*/true);  // locks it
    seen = mapguard::CurrentThread()->vc.Get(me->slot);
  });
  std::thread pinned([&] {
    void *pin = __mapguard_sync_wait_begin(block, 1);
    step.store(1, std::memory_order_release);
    while (step.load(std::memory_order_acquire) != 3) std::this_thread::yield();
    __mapguard_sync_wait_end(pin, 1);  // last pin: empties the clock only if nothing came in
    step.store(2, std::memory_order_release);
  });
  while (step.load(std::memory_order_acquire) != 1) std::this_thread::yield();
  free(block);  // deferred: `pinned` still holds the clock
  // A mutex at the same address, locked and unlocked by this thread.
  mapguard::Acquire(me, block, /*held_exclusively=*/true);
  const uint32_t mine = me->vc.Get(me->slot);
  mapguard::Release(me, block, /*held_exclusively=*/true);
  step.store(3, std::memory_order_release);
  pinned.join();
  late.join();
  std::fprintf(stderr, "lock at a pinned address: released %u, the next holder saw %u\n", mine,
               seen.load());
  return seen >= mine;
}

TEST_F(RuntimeState, ALockAtAPinnedAddressKeepsItsRelease) {
  EXPECT_EXIT({ _exit(ALockAtAPinnedAddressKeepsItsRelease() ? 0 : 1); },
              ::testing::ExitedWithCode(0), "lock at a pinned address");
}

TEST_F(RuntimeState, APinnedClockOutlivesAFreeUntilLetGo) {
  EXPECT_EXIT({ _exit(PinnedClocksOutliveTheirObject() ? 0 : 1); },
              ::testing::ExitedWithCode(0), "pinned clock");
}

// A joined thread's slot goes to its joiner's next thread: however many
// threads come and go one at a time, no new slot is needed, and an access
// of the old thread stays ordered before the new one (the join's edge).
TEST_F(RuntimeState, AJoinedThreadsSlotIsReusedWithItsEdges) {
  EXPECT_EXIT(
      {
        std::vector<std::thread> wide;
        for (int i = 0; i < 70; i++) wide.emplace_back([] {});
        for (auto &t : wide) t.join();
        const uint32_t limit = mapguard::ThreadSlotLimit();
        for (int i = 0; i < 500; i++) {
          std::thread t([&] {
            __mapguard_write_begin(map(), &kWrite);
            __mapguard_write_end(map(), &kWrite);
          });
          t.join();
        }
        std::fprintf(stderr, "slots %u -> %u\n", limit, mapguard::ThreadSlotLimit());
        _exit(mapguard::ThreadSlotLimit() == limit ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "slots");
}
