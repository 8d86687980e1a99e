// oneTBB's task arenas and flow graphs (Debian's prebuilt libtbb) hand work
// over inside the library too: task_arena::enqueue and a flow graph's
// submit hand a task over (the catalogue releases on it; the task's
// execute() acquires), and task_arena::execute, when the caller cannot join
// the arena, runs the functor on a worker and waits for it (the catalogue's
// `wait@1=execute` and `entry ... run=operator()`: the delegate's body
// acquires at entry and releases at every exit, thrown or returned, and the
// caller acquires after the call, thrown or returned). Before these lines,
// every quiet mode below but arena-group was reported: execute and
// execute-throws and enqueue in every run, graph in about 1 run in 5.
// group-throws and graph-throws: a task that a worker runs throws, and the
// caller's task_group::wait or wait_for_all rethrows it once the task is
// done; their r1::wait call is reached through an inline wrapper that has
// no landing pad, so the plugin gives it one that acquires (reported in
// every run before).
// Racy twins: the same hand-offs with one access left outside them.
// RUN: %clangxx_mg -O0 %s -ltbb -o %t.O0
// RUN: %clangxx_mg -O2 %s -ltbb -o %t.O2
// RUN: for m in execute execute-throws group-throws graph-throws; do %t.O0 $m; %t.O2 $m; done 2>&1 | FileCheck %s --check-prefix=DELEGATED
// RUN: for i in 1 2 3 4 5; do for m in enqueue arena-group graph; do %t.O0 $m; %t.O2 $m; done; done 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy-execute 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy-execute 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O0 racy-enqueue 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy-enqueue 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O0 racy-graph 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy-graph 2>&1 | FileCheck %s --check-prefix=RACY
// DELEGATED-NOT: fatal error
// DELEGATED-COUNT-8: delegated to another thread: yes
// CLEAN-NOT: fatal error
// CLEAN: DONE
// RACY: fatal error: {{concurrent|unsynchronized}} map writes
// RACY: SUMMARY: mapguard
#include <tbb/flow_graph.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <thread>

std::map<int, int> g, g2;
std::atomic<int> g_in{0};

// Both sides of a racy twin are in before either writes (relaxed: no edge).
void wait_for_partner() {
  g_in.fetch_add(1, std::memory_order_relaxed);
  for (int i = 0; i < 2000 && g_in.load(std::memory_order_relaxed) < 2; i++) usleep(1000);
}

// task_arena::execute from a thread that cannot join the arena: its one
// external slot is held by `holder` (inside an execute of its own), its one
// worker slot by a worker busy with an enqueued task until `release` is
// set; `holder` stays until the caller's execute is over. The functor is
// delegated to that worker, and the caller waits.
int delegated_execute(bool throws, bool racy) {
  tbb::task_arena a(2, 1);
  std::atomic<int> holding{0}, worker_busy{0}, release{0}, caller_done{0};
  std::thread holder([&] {
    a.execute([&] {
      a.enqueue([&] {
        worker_busy = 1;
        while (!release) usleep(100);
      });
      holding = 1;
      if (racy) {
        wait_for_partner();
        g[4] = 4;  // not ordered with the delegated functor's write
      } else {
        while (!caller_done) usleep(100);
      }
    });
  });
  while (!holding || !worker_busy) usleep(100);
  std::thread::id caller = std::this_thread::get_id();
  bool other = false;
  g[1] = 1;
  std::thread releaser([&] {
    usleep(20000);
    release = 1;
  });
  auto body = [&] {
    other = std::this_thread::get_id() != caller;
    if (racy) wait_for_partner();
    g[2] = 2;
    if (throws) throw std::runtime_error("thrown in the arena");
  };
  try {
    a.execute(body);
  } catch (const std::exception &) {
  }
  caller_done = 1;
  g[3] = 3;
  releaser.join();
  holder.join();
  std::printf("delegated to another thread: %s\n", other ? "yes" : "no");
  return 0;
}

// A task that a worker took (the caller waits until it has started before
// it waits itself, so it cannot run the task) writes the map and throws;
// the caller's wait rethrows, and the caller writes the map after it.
void worker_throws(bool graph) {
  std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> started{0};
  bool other = false;
  auto body = [&] {
    other = std::this_thread::get_id() != caller;
    started = 1;
    g[2] = 2;
    throw std::runtime_error("thrown by a task");
  };
  // The group and the graph outlive the try: their destructors would wait
  // again (normal path), which orders by itself.
  tbb::task_group tg;
  tbb::flow::graph gr;
  tbb::flow::function_node<int, int> node(gr, tbb::flow::serial, [&](int v) {
    body();
    return v;
  });
  g[1] = 1;
  try {
    if (graph) {
      node.try_put(1);
      while (!started) usleep(100);
      gr.wait_for_all();
    } else {
      tg.run(body);
      while (!started) usleep(100);
      tg.wait();
    }
  } catch (const std::exception &) {
  }
  g[3] = 3;
  std::printf("delegated to another thread: %s\n", other ? "yes" : "no");
}

int main(int argc, char **argv) {
  const char *m = argv[1];
  if (!std::strcmp(m, "execute")) {
    delegated_execute(false, false);
  } else if (!std::strcmp(m, "execute-throws")) {
    delegated_execute(true, false);
  } else if (!std::strcmp(m, "group-throws") || !std::strcmp(m, "graph-throws")) {
    worker_throws(m[1] == 'r');
  } else if (!std::strcmp(m, "racy-execute")) {
    delegated_execute(false, true);
  } else if (!std::strcmp(m, "enqueue") || !std::strcmp(m, "racy-enqueue")) {
    // A task enqueued into an arena; the caller waits for its flag.
    bool racy = m[0] == 'r';
    tbb::task_arena a(2, 0);
    for (int round = 0; round < (racy ? 1 : 50); round++) {
      std::atomic<int> done{0};
      g[round] = round;
      a.enqueue([&, round] {
        if (racy) wait_for_partner();
        g[round + 1000] = 1;
        done.store(1, racy ? std::memory_order_relaxed : std::memory_order_release);
      });
      if (racy) {
        wait_for_partner();
        g[-1] = 1;  // before the task is known to be done
      }
      while (!done.load(racy ? std::memory_order_relaxed : std::memory_order_acquire)) usleep(100);
      if (!racy) g.erase(round + 1000);
    }
  } else if (!std::strcmp(m, "arena-group")) {
    // A task group run and waited for inside an arena.
    tbb::task_arena a(2);
    tbb::task_group tg;
    for (int round = 0; round < 50; round++) {
      g[round] = round;
      a.execute([&] { tg.run([&] { g[round + 1000] = 1; }); });
      a.execute([&] { tg.wait(); });
      g.erase(round + 1000);
    }
  } else if (!std::strcmp(m, "graph")) {
    // Two serial nodes in a chain, each with a map of its own; the caller
    // fills both before the puts and reads both after wait_for_all.
    using namespace tbb::flow;
    for (int round = 0; round < 30; round++) {
      graph gr;
      function_node<int, int> first(gr, serial, [](int v) {
        g[v] = 1;
        return v + 1;
      });
      function_node<int, int> second(gr, serial, [](int v) {
        g2[v] = 2;
        return v;
      });
      make_edge(first, second);
      g[-1] = round;
      g2[-1] = round;
      for (int i = 0; i < 8; i++) first.try_put(i * 10);
      gr.wait_for_all();
      g.clear();
      g2.clear();
    }
  } else if (!std::strcmp(m, "racy-graph")) {
    // An unlimited node whose bodies write one map on two threads.
    using namespace tbb::flow;
    graph gr;
    function_node<int, int> node(gr, unlimited, [](int v) {
      wait_for_partner();
      g[v] = v;
      return v;
    });
    node.try_put(1);
    node.try_put(2);
    gr.wait_for_all();
  }
  std::printf("DONE\n");
}
