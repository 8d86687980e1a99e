// The owned fast path as instrumented code runs it: compiled to LLVM bitcode
// (mapguard_fast_path.clang<N>.bc, next to mapguard.so), which the plugin links into
// each module it instruments at -O1 and above, in place of calls to the
// runtime's __mapguard_{read,write}_{begin,end}. The plugin makes these
// functions internal and always-inline, so each map call's begin and end run
// inline in the user's function; only their slow cases call the runtime.
// This file is never part of the runtime library itself.
#include "mg_fast_path.h"

using namespace mapguard;

// The instrumented function's stack pointer, here at its map call: what the
// out-of-line entry points compute from their own frame (MG_CALLER_SP in
// mg_access.cpp). volatile: never moved across a dynamic alloca.
#if defined(__x86_64__)
#define MG_STACK_POINTER()                       \
  ({                                             \
    uintptr_t sp_;                               \
    asm volatile("movq %%rsp, %0" : "=r"(sp_)); \
    sp_;                                         \
  })
#elif defined(__aarch64__)
#define MG_STACK_POINTER()                    \
  ({                                          \
    uintptr_t sp_;                            \
    asm volatile("mov %0, sp" : "=r"(sp_));  \
    sp_;                                      \
  })
#else
#error "mapguard's inlined fast path supports x86-64 and AArch64"
#endif

extern "C" {

void __mapguard_inline_read_begin(void *map, const mg_site *site) {
  OwnedBeginFast(map, site, state::kReaderOne, MG_STACK_POINTER());
}

void __mapguard_inline_read_end(void *map, const mg_site *site) { OwnedEndFast(map, site, false); }

void __mapguard_inline_write_begin(void *map, const mg_site *site) {
  OwnedBeginFast(map, site, 0, MG_STACK_POINTER());
}

void __mapguard_inline_write_end(void *map, const mg_site *site) { OwnedEndFast(map, site, true); }

// The same, for a begin the plugin paired with its ends (the begin
// dominates them): the begin's token goes to the end.
long __mapguard_inline_read_begin_token(void *map, const mg_site *site) {
  return OwnedBeginFast(map, site, state::kReaderOne, MG_STACK_POINTER());
}

void __mapguard_inline_read_end_token(void *map, const mg_site *site, long token) {
  TokenEndFast(map, site, false, token);
}

long __mapguard_inline_write_begin_token(void *map, const mg_site *site) {
  return OwnedBeginFast(map, site, 0, MG_STACK_POINTER());
}

void __mapguard_inline_write_end_token(void *map, const mg_site *site, long token) {
  TokenEndFast(map, site, true, token);
}

}  // extern "C"
