// Prebuilt libc++'s synchronization (-stdlib=libc++).
//
// libc++ puts part of std::call_once and std::barrier inside libc++.so,
// where nothing is instrumented: the release side of a call_once (the store
// that marks the flag complete) and the tree of arrivals of a barrier run
// there, so the inline acquires that pair with them (call_once's fast-path
// load of the flag, barrier::wait's load of the phase) found nothing
// released, and correct hand-offs were reported. These interceptors give
// the edges the C++ standard gives, no more:
//  - [thread.once.callonce]: the active execution of the callable
//    synchronizes with every return from call_once on that flag (and the
//    inline fast path's acquire load of the flag);
//  - [thread.barrier.class]: every arrival of a phase happens before its
//    completion step, which the last arriver runs and which happens before
//    every return from a wait for that phase. An arrival does not order
//    another arrival: only the last arriver acquires what they released.
// latch, counting_semaphore and atomic::wait/notify keep their state in
// inline atomics (instrumented) and wait in libc++.so without deciding
// anything there: they need nothing here.
//
// The interceptors have libc++'s mangled names and precede libc++.so in
// symbol lookup (the runtime is linked before it), like the pthread ones.
// Not in the static runtime (MG_STATIC_RUNTIME): its interceptors are linked
// with --wrap, which would demand libc++ from every static program.
#ifndef MG_STATIC_RUNTIME
#include <dlfcn.h>
#include <stdint.h>

#include <atomic>

#include "mg_hb.h"
#include "mg_rt.h"

using namespace mapguard;

namespace {


// The real libc++ function. RTLD_NEXT finds it when libc++ came in at
// start-up; a library built with -stdlib=libc++ and loaded RTLD_LOCAL brings
// its own libc++, outside that scope, which dlopen(RTLD_NOLOAD) still finds.
template <typename Fn>
Fn LibcxxReal(std::atomic<Fn> &slot, const char *name) {
  Fn fn = slot.load(std::memory_order_relaxed);
  if (fn) return fn;
  void *p = dlsym(RTLD_NEXT, name);
  if (!p)
    if (void *libcxx = dlopen("libc++.so.1", RTLD_NOLOAD | RTLD_LAZY)) p = dlsym(libcxx, name);
  if (!p) Die("mapguard: error: cannot find libc++'s %s", name);
  fn = reinterpret_cast<Fn>(p);
  slot.store(fn, std::memory_order_relaxed);
  return fn;
}

struct OnceCall {
  void *arg;
  void (*func)(void *);
  const volatile void *flag;
};

// Runs the user's callable, then releases on the flag: before libc++ marks
// it complete, so a thread that sees it complete (inline) acquires this.
void OnceTrampoline(void *p) {
  OnceCall *call = static_cast<OnceCall *>(p);
  call->func(call->arg);
  if (ThreadState *thr = HbThread()) Release(thr, const_cast<const void *>(call->flag));
}

}  // namespace

extern "C" {

// void std::__1::__call_once(unsigned long volatile&, void*, void (*)(void*))
void _ZNSt3__111__call_onceERVmPvPFvS2_E(volatile unsigned long &flag, void *arg,
                                          void (*func)(void *)) {
  using Fn = void (*)(volatile unsigned long &, void *, void (*)(void *));
  static std::atomic<Fn> real;
  OnceCall call{arg, func, &flag};
  LibcxxReal(real, "_ZNSt3__111__call_onceERVmPvPFvS2_E")(flag, &call, OnceTrampoline);
  // Returned normally: the flag is complete, whoever ran the callable.
  if (ThreadState *thr = HbThread()) Acquire(thr, const_cast<const unsigned long *>(&flag));
}

// bool std::__1::__arrive_barrier_algorithm_base(__barrier_algorithm_base*, unsigned char)
// True for the phase's last arriver, which then runs the completion and
// publishes the new phase with an (inline, instrumented) release store.
bool _ZNSt3__131__arrive_barrier_algorithm_baseEPNS_24__barrier_algorithm_baseEh(void *base,
                                                                               uint8_t phase) {
  using Fn = bool (*)(void *, uint8_t);
  static std::atomic<Fn> real;
  ThreadState *thr = HbThread();
  if (thr) Release(thr, base);
  bool last = LibcxxReal(real, "_ZNSt3__131__arrive_barrier_algorithm_baseEPNS_24__barrier_algorithm_baseEh")(
      base, phase);
  // Every other arrival of this phase released on `base` before it arrived;
  // the next phase's arrivals come only after the phase store that follows.
  if (last && thr) Acquire(thr, base);
  return last;
}

}  // extern "C"

#endif  // MG_STATIC_RUNTIME
