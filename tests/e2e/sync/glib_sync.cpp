// GLib (Debian's libglib-2.0): GMutex and GCond wait in futexes inside the
// library, and g_once_init_leave publishes inside it, so maps they guard were
// reported (5 of 5 runs each). The catalogue's `sync -` line names those C
// functions; GRWLock is built on pthreads and was seen already. A writer that
// skips the mutex, and a reader that skips g_once_init_enter, are reported.
// RUN: %clangxx_mg -O0 $(pkg-config --cflags glib-2.0) %s $(pkg-config --libs glib-2.0) -o %t.O0
// RUN: %clangxx_mg -O2 $(pkg-config --cflags glib-2.0) %s $(pkg-config --libs glib-2.0) -o %t.O2
// RUN: %clangxx_mg -O2 -fplugin-arg-mapguard-catalogue=off $(pkg-config --cflags glib-2.0) %s $(pkg-config --libs glib-2.0) -o %t.off
// RUN: for m in mutex trylock rwlock cond once; do %t.O0 $m; %t.O2 $m; done 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.off mutex 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O0 racy-mutex 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy-mutex 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy-once 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN-COUNT-10: DONE
// RACY: fatal error: {{concurrent|unsynchronized}} map
// RACY: SUMMARY: mapguard
#include <glib.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

std::map<int, int> g;
GMutex mu;
GRWLock rw;
GCond cond;
int ready = 0;
std::map<int, int> *lazy;
std::atomic<int> flag{0};

std::map<int, int> &lazy_map() {
  static gsize init = 0;
  if (g_once_init_enter(&init)) {
    lazy = new std::map<int, int>;
    (*lazy)[1] = 1;
    g_once_init_leave(&init, 1);
  }
  return *lazy;
}

int main(int argc, char **argv) {
  const char *m = argv[1];
  if (!std::strcmp(m, "mutex") || !std::strcmp(m, "racy-mutex")) {
    bool racy = m[0] == 'r';
    auto work = [racy](int id) {
      for (int i = 0; i < 500; i++) {
        bool locked = !(racy && id == 2);
        if (locked) g_mutex_lock(&mu);
        g[i % 16] = id;
        if (locked) g_mutex_unlock(&mu);
      }
    };
    std::thread a(work, 1), b(work, 2);
    a.join();
    b.join();
  } else if (!std::strcmp(m, "trylock")) {
    auto work = [](int id) {
      for (int i = 0; i < 500; i++) {
        while (!g_mutex_trylock(&mu)) std::this_thread::yield();
        g[i % 16] = id;
        g_mutex_unlock(&mu);
      }
    };
    std::thread a(work, 1), b(work, 2);
    a.join();
    b.join();
  } else if (!std::strcmp(m, "rwlock")) {
    auto work = [](int id) {
      for (int i = 0; i < 500; i++) {
        if (i % 4) {
          g_rw_lock_reader_lock(&rw);
          (void)g.count(i);
          g_rw_lock_reader_unlock(&rw);
        } else {
          g_rw_lock_writer_lock(&rw);
          g[i % 16] = id;
          g_rw_lock_writer_unlock(&rw);
        }
      }
    };
    std::thread a(work, 1), b(work, 2);
    a.join();
    b.join();
  } else if (!std::strcmp(m, "cond")) {
    std::thread b([] {
      g_mutex_lock(&mu);
      while (!ready) g_cond_wait(&cond, &mu);
      g[2] = 2;
      g_mutex_unlock(&mu);
    });
    std::thread a([] {
      g_mutex_lock(&mu);
      g[1] = 1;
      ready = 1;
      g_cond_signal(&cond);
      g_mutex_unlock(&mu);
    });
    a.join();
    b.join();
  } else if (!std::strcmp(m, "once")) {
    auto use = [] { (void)lazy_map().size(); };
    std::thread a(use), b(use);
    a.join();
    b.join();
  } else if (!std::strcmp(m, "racy-once")) {
    // b reads the map a created, ordered only by a relaxed flag.
    std::thread a([] {
      (void)lazy_map().size();
      flag.store(1, std::memory_order_relaxed);
    });
    std::thread b([] {
      while (!flag.load(std::memory_order_relaxed)) std::this_thread::yield();
      (void)lazy->size();
    });
    a.join();
    b.join();
  }
  std::printf("DONE\n");
}
