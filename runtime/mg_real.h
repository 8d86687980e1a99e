// How an interceptor reaches the function it wraps.
//
// Shared runtime (libmapguard_rt.so): the interceptor has the libc name and
// precedes libc in symbol lookup; the real function is the next definition,
// found with dlsym(RTLD_NEXT) on first use.
//
// Static runtime (libmapguard_rt.a, for `-static`): the same sources built
// with MG_STATIC_RUNTIME. Each use of MG_REAL leaves an undefined reference
// to __real_NAME in the object; the archive build (cmake/StaticRuntime.cmake)
// then renames the definition NAME to __wrap_NAME, for exactly the names that
// have such a reference, and writes one `--wrap=NAME` per name into
// mapguard_rt_static.rsp. Linked with `-Wl,@mapguard_rt_static.rsp`, every call to NAME
// in the program (libstdc++.a's included) reaches __wrap_NAME, and
// __real_NAME is the libc function. One list, derived from the code.
#pragma once

#include <dlfcn.h>

#include <atomic>

#include "mg_rt.h"

namespace mapguard {

template <typename Fn>
Fn LookUpReal(const char *name, const char *version = nullptr) {
  void *p = version ? dlvsym(RTLD_NEXT, name, version) : nullptr;
  if (!p) p = dlsym(RTLD_NEXT, name);
  if (!p) Die("mapguard: error: cannot find the real %s", name);
  return reinterpret_cast<Fn>(p);
}

}  // namespace mapguard

// Declares `real_NAME`, a pointer to the real function, in the enclosing
// block. The shared runtime looks it up on first use, without a
// function-local static: its initialization guard (__cxa_guard_acquire) may
// itself lock a mutex and recurse into the interceptor. Two threads may both
// look it up; they store the same pointer. The optional last argument is a
// symbol version (dlvsym) for functions libc exports under several.
#ifdef MG_STATIC_RUNTIME
#define MG_REAL(ret, name, params, ...)                                        \
  using name##_fn = ret(*) params;                                             \
  ret mg_real_symbol_##name params __asm__("__real_" #name);                   \
  name##_fn real_##name = &mg_real_symbol_##name;
#else
#define MG_REAL(ret, name, params, ...)                                        \
  using name##_fn = ret(*) params;                                             \
  static std::atomic<name##_fn> real_##name##_slot{nullptr};                   \
  name##_fn real_##name = real_##name##_slot.load(std::memory_order_relaxed);  \
  if (!real_##name) {                                                          \
    real_##name = ::mapguard::LookUpReal<name##_fn>(#name, ##__VA_ARGS__);     \
    real_##name##_slot.store(real_##name, std::memory_order_relaxed);          \
  }
#endif

// For an interceptor that replaces NAME outright and never calls the libc
// function (thrd_create: glibc's would start the thread through its internal
// pthread_create, out of the interceptor's sight). The static runtime still
// has to route NAME to it, so a kept reference to __real_NAME puts NAME on
// the --wrap list. File scope.
#ifdef MG_STATIC_RUNTIME
#define MG_REPLACES(ret, name, params)                                         \
  extern "C" ret mg_real_symbol_##name params __asm__("__real_" #name);       \
  __attribute__((used)) static void *const mg_wraps_##name =                   \
      reinterpret_cast<void *>(&mg_real_symbol_##name);
#else
#define MG_REPLACES(ret, name, params)
#endif
