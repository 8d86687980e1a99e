// The region stack (runtime/mg_region_stack.h) under "signal handlers" that
// interrupt every step of a push, a tombstone, a pop and a trim. The stack's
// test hook runs between any two of its stores; here it may run a handler,
// which begins and ends regions of its own (in order or not), all ended
// before it returns, as a real handler's are. After every operation of the
// interrupted code the stack must hold exactly what a model of it says, and
// the invariant of mg_region_stack.h (S2: nothing live at or above the
// depth) must hold.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "mg_rt.h"

namespace {

using mapguard::BasicRegionStack;
using mapguard::Region;
using mapguard::RegionMode;

mg_site MakeSite(mg_access_kind kind, unsigned line) {
  return mg_site{"op", "region_stack_test.cpp", line, 1, "f()", "std::map<int, int>", "m",
                 uint32_t(kind), MG_ABI_VERSION};
}
const mg_site kSites[3] = {MakeSite(MG_READ, 1), MakeSite(MG_WRITE, 2), MakeSite(MG_ITERATE, 3)};
char g_maps[4];  // four maps: their addresses are all that matters

struct Entry {
  int index;
  void *map;
  const mg_site *site;
  RegionMode mode;
};

// The hook: a handler at this step or not, decided by the test.
struct InjectHook {
  static void Step();
};
using TestStack = BasicRegionStack<InjectHook>;

TestStack *g_stack;
std::mt19937 g_rng;          // the interrupted code's choices
std::mt19937 g_handler_rng;  // the handlers' (so a handler leaves the script as it was)
int g_step;            // steps taken so far by the code being interrupted
int g_inject_at = -1;  // the step at which one handler runs (-1: random)
int g_inject_percent;  // with g_inject_at == -1: chance of a handler per step
int g_handler_depth;   // handlers running now (one may interrupt another)
int g_handlers_run;
int g_max_depth;       // pushes stop at this depth

// A model stack: what the code that owns it has pushed and not ended.
using Model = std::vector<Entry>;

// Checks the stack against `model` (the live entries, outermost first) and
// S2. `pending`: an entry of an interrupted push, which may or may not be
// published yet; it is skipped.
void ExpectMatches(const Model &model, const char *where) {
  TestStack &st = *g_stack;
  std::vector<Entry> live;
  st.ForEachLive(st.Depth(), [&](Region &r, int i) {
    live.push_back({i, r.map.load(), r.site.load(), RegionMode(r.mode.load())});
  });
  ASSERT_EQ(live.size(), model.size()) << where;
  for (size_t i = 0; i < live.size(); i++) {
    EXPECT_EQ(live[i].index, model[i].index) << where << " entry " << i;
    EXPECT_EQ(live[i].map, model[i].map) << where << " entry " << i;
    EXPECT_EQ(live[i].site, model[i].site) << where << " entry " << i;
    EXPECT_EQ(live[i].mode, model[i].mode) << where << " entry " << i;
  }
  // S2: entries at or above the depth are free.
  for (int i = st.Depth(); i < st.capacity() && i < g_max_depth + 8; i++)
    ASSERT_EQ(st.At(i)->map.load(), nullptr) << where << " index " << i;
}

// Begins a region on the stack, as the runtime does (Push), and records it.
void Begin(Model &model, std::mt19937 &rng = g_rng) {
  void *map = &g_maps[rng() % 4];
  const mg_site *site = &kSites[rng() % 3];
  RegionMode mode = RegionMode(rng() % 2 ? mapguard::kRegionOwned : mapguard::kRegionCounted);
  int index = g_stack->Push(map, site, mode, false, 0);
  model.push_back({index, map, site, mode});
}

// Ends one region: usually the innermost, sometimes one below it (regions of
// two maps ended out of order). Find must name the innermost live entry of
// that map and kind, which is the one the model removes.
void End(Model &model, std::mt19937 &rng = g_rng) {
  size_t pick = model.size() - 1;
  if (model.size() > 1 && rng() % 4 == 0) pick = rng() % model.size();
  void *map = model[pick].map;
  uint32_t kind = model[pick].site->kind;
  size_t innermost = pick;
  for (size_t i = model.size(); i-- > 0;)
    if (model[i].map == map && model[i].site->kind == kind) {
      innermost = i;
      break;
    }
  const int index = g_stack->Find(map, kind);
  ASSERT_EQ(index, model[innermost].index);
  g_stack->Tombstone(index);
  g_stack->Pop(index);
  model.erase(model.begin() + long(innermost));
}

// A signal handler: regions of its own, all ended before it returns. What it
// leaves must be what it found (the interrupted code's entries, whole).
void RunHandler() {
  g_handler_depth++;
  g_handlers_run++;
  Model mine;
  const int ops = 1 + int(g_handler_rng() % 6);
  for (int i = 0; i < ops; i++) {
    if (mine.empty() || (g_stack->Depth() < g_max_depth && g_handler_rng() % 2))
      Begin(mine, g_handler_rng);
    else
      End(mine, g_handler_rng);
  }
  while (!mine.empty()) End(mine, g_handler_rng);
  g_handler_depth--;
}

void InjectHook::Step() {
  if (g_handler_depth > 0) {
    // A handler's own steps may be interrupted too (nested signals), rarely.
    if (g_handler_depth < 3 && g_inject_at < 0 &&
        int(g_handler_rng() % 100) < g_inject_percent / 4)
      RunHandler();
    return;
  }
  const int step = g_step++;
  if (g_inject_at >= 0 ? step == g_inject_at : int(g_handler_rng() % 100) < g_inject_percent)
    RunHandler();
}

class RegionStackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = new TestStack();  // value-initialized: empty (S2)
    g_stack = stack_;
    g_step = 0;
    g_inject_at = -1;
    g_inject_percent = 0;
    g_handler_depth = 0;
    g_handlers_run = 0;
    g_max_depth = 40;  // across the inline / overflow boundary (32)
  }
  void TearDown() override { Destroy(stack_); }
  // A stack as a new thread's: empty, its overflow not mapped yet.
  void Renew() {
    Destroy(stack_);
    stack_ = new TestStack();
    g_stack = stack_;
  }
  static void Destroy(TestStack *st) {
    st->Clear();
    if (st->capacity() == TestStack::kCapacity)
      mapguard::UnmapRegionOverflow(st->At(TestStack::kInline),
                                    TestStack::kCapacity - TestStack::kInline);
    delete st;
  }
  TestStack *stack_;
};

// One scripted run: begins to `depth` (past the inline entries), ends half
// out of order, begins again, ends all. Returns the steps it took.
int ScriptedRun(unsigned seed, int depth) {
  g_rng.seed(seed);
  g_handler_rng.seed(seed + 1);
  Model model;
  for (int i = 0; i < depth; i++) {
    Begin(model);
    ExpectMatches(model, "after a begin");
  }
  for (int i = 0; i < depth / 2; i++) {
    End(model);
    ExpectMatches(model, "after an end");
  }
  for (int i = 0; i < depth / 2; i++) {
    Begin(model);
    ExpectMatches(model, "after a begin");
  }
  while (!model.empty()) {
    End(model);
    ExpectMatches(model, "after an end");
  }
  EXPECT_EQ(g_stack->Depth(), 0);
  return g_step;
}

// A handler at each step of the script in turn: every store of every push,
// tombstone, pop and trim, and the overflow's mapping, is interrupted once,
// with regions begun and ended there, inline and in the overflow.
TEST_F(RegionStackTest, AHandlerAtEveryStepLeavesTheInterruptedRegionsWhole) {
  const int steps = ScriptedRun(7, 36);
  ASSERT_GT(steps, 100);
  ASSERT_EQ(g_handlers_run, 0);
  for (int at = 0; at < steps; at++) {
    SCOPED_TRACE(testing::Message() << "handler at step " << at);
    Renew();  // the overflow's mapping is one of the steps
    g_step = 0;
    g_inject_at = at;
    g_handlers_run = 0;
    ScriptedRun(7, 36);
    ASSERT_EQ(g_handlers_run, 1);
    if (HasFatalFailure() || HasFailure()) return;
  }
}

// Random runs with handlers at random steps, nested handlers included.
TEST_F(RegionStackTest, RandomBeginsAndEndsWithRandomHandlers) {
  g_inject_percent = 20;
  for (unsigned seed = 1; seed <= 300; seed++) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    g_rng.seed(seed);
    g_handler_rng.seed(seed + 1000);
    Model model;
    for (int op = 0; op < 400; op++) {
      if (model.empty() || (stack_->Depth() < g_max_depth && g_rng() % 2)) Begin(model);
      else End(model);
      ExpectMatches(model, "random");
      if (HasFailure()) return;
    }
    while (!model.empty()) End(model);
    ASSERT_EQ(stack_->Depth(), 0);
  }
  EXPECT_GT(g_handlers_run, 1000);
}

// Past what the stack records (S6) regions are counted in the depth only:
// Count says unrecorded ones may hold more, an end takes the top one, and
// the recorded entries below are untouched.
TEST_F(RegionStackTest, PastTheCapacityRegionsAreCountedNotRecorded) {
  g_max_depth = 0;
  void *outer = &g_maps[0], *deep = &g_maps[1];
  stack_->Push(outer, &kSites[2], mapguard::kRegionCounted, false, 0);
  for (int i = 1; i < TestStack::kCapacity + 10; i++)
    stack_->Push(deep, &kSites[0], mapguard::kRegionCounted, false, 0);
  EXPECT_TRUE(stack_->HasUnrecorded());
  bool unrecorded = false;
  EXPECT_EQ(stack_->Count(outer, ~0u, 0, false, &unrecorded), 1);
  EXPECT_TRUE(unrecorded);
  // With counted_only, each unrecorded entry may be one of this map's.
  EXPECT_EQ(stack_->Count(outer, 1u << MG_ITERATE, 0, true), 1 + 10);
  for (int i = 0; i < 10; i++) {
    int index = stack_->Find(deep, MG_READ);
    EXPECT_EQ(index, stack_->Depth() - 1);
    EXPECT_EQ(stack_->At(index), nullptr);
    stack_->Tombstone(index);
    stack_->Pop(index);
  }
  EXPECT_FALSE(stack_->HasUnrecorded());
  // The recorded entries are whole, the deepest one (in the overflow) too.
  EXPECT_EQ(stack_->Find(deep, MG_READ), TestStack::kCapacity - 1);
  EXPECT_EQ(stack_->Find(outer, MG_ITERATE), 0);
  stack_->Count(outer, ~0u, 0, false, &unrecorded);
  EXPECT_FALSE(unrecorded);
  // A recorded region that ends below unrecorded ones (out of order; its
  // end knows its index, as a token end does) leaves a tombstone; the live
  // unrecorded ones above keep their places.
  for (int i = 0; i < 3; i++) stack_->Push(deep, &kSites[0], mapguard::kRegionCounted, false, 0);
  stack_->Tombstone(0);
  stack_->Pop(0);
  EXPECT_EQ(stack_->Depth(), TestStack::kCapacity + 3);
  while (stack_->Depth() > 1) {
    int index = stack_->Find(deep, MG_READ);
    ASSERT_GE(index, 1);
    stack_->Tombstone(index);
    stack_->Pop(index);
  }
  // The last pop, of the entry just above the outer tombstone, trims both.
  EXPECT_EQ(stack_->Depth(), 0);
}

// S3 seen from another thread (a reporter or a revoker): an entry whose map
// it reads with acquire shows that map's site, never a half-written entry.
TEST_F(RegionStackTest, AReaderNeverSeesAHalfWrittenEntry) {
  std::atomic<bool> stop{false};
  std::atomic<long> seen{0}, torn{0};
  std::thread reader([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      stack_->ForEachLive(stack_->DepthSeqCst(), [&](Region &r, int) {
        void *m = r.map.load(std::memory_order_acquire);
        const mg_site *site = r.site.load(std::memory_order_relaxed);
        if (r.map.load(std::memory_order_acquire) != m || !m) return;  // reused meanwhile
        seen.fetch_add(1, std::memory_order_relaxed);
        // Each map is always pushed with its own site here.
        if (site != &kSites[(static_cast<char *>(m) - g_maps) % 3]) torn.fetch_add(1);
      });
    }
  });
  g_rng.seed(99);
  std::vector<int> open;
  for (int op = 0; op < 2000000; op++) {
    if (open.empty() || (open.size() < 40 && g_rng() % 2)) {
      int m = int(g_rng() % 3);
      stack_->Push(&g_maps[m], &kSites[m], mapguard::kRegionCounted, false, 0);
      open.push_back(m);
    } else {
      int m = open.back();
      int index = stack_->Find(&g_maps[m], kSites[m].kind);
      stack_->Tombstone(index);
      stack_->Pop(index);
      open.pop_back();
    }
  }
  stop.store(true);
  reader.join();
  while (!open.empty()) {
    int m = open.back();
    int index = stack_->Find(&g_maps[m], kSites[m].kind);
    stack_->Tombstone(index);
    stack_->Pop(index);
    open.pop_back();
  }
  EXPECT_GT(seen.load(), 0);
  EXPECT_EQ(torn.load(), 0);
}

}  // namespace
