// The ABI between code instrumented by the mapguard plugin and the runtime.
//
// The plugin emits one constant mg_site per instrumented call and brackets the
// call with a begin/end pair. The layout of mg_site is mirrored in
// pass/RuntimeABI.h; change both together and bump MG_ABI_VERSION.
#ifndef MAPGUARD_INTERFACE_H
#define MAPGUARD_INTERFACE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MG_ABI_VERSION 2

// What an instrumented call does to the map's structure.
enum mg_access_kind {
  MG_READ = 0,       // find, count, at, size, begin, ...
  MG_WRITE = 1,      // insert, erase, operator[], clear, ...
  MG_ITERATE = 2,    // a loop from begin() to the loop's exits
  MG_CONSTRUCT = 3,  // a constructor returned: the map is new
  MG_DESTROY = 4,    // the destructor: a write, then the shadow is retired
};

// What the plugin knows about the map's type at a site.
enum mg_site_flags {
  // A std::unordered_{map,set,multimap,multiset} with the default hasher and
  // key_equal: libstdc++'s _Hashtable and libc++'s __hash_table then both keep
  // the bucket count at byte offset 8 and the element count at offset 24,
  // which lets the runtime see rehashes without calling into the map.
  MG_SITE_HASHTABLE_LAYOUT = 1,
  // A node-based std::map, std::set, std::multimap or std::multiset:
  // inserting and erasing other elements keeps iterators valid, so what a
  // concurrent write must be ordered with is each iterator step, not the
  // whole loop (see SuspendNodeIterations in the runtime).
  MG_SITE_NODE_BASED = 2,
  // The call sits in the standard library's invoke machinery (std::invoke,
  // std::bind, std::function, std::mem_fn calling a map member through a
  // member pointer): the user's code is the first frame outside the library,
  // and reports name that frame as the access's location.
  MG_SITE_CALLER_LOCATION = 4,
};

// One instrumented call site; emitted by the plugin as a private constant.
typedef struct mg_site {
  const char *op;        // "insert", "operator[]", "range-for", ...
  const char *file;      // source file as the compiler saw it, or ""
  uint32_t line, column; // 0 when unknown
  const char *function;  // demangled enclosing function
  const char *map_type;  // short readable type, "std::unordered_map<int, int>"
  const char *map_name;  // what the code calls the map ("registry.entries"), or ""
  uint32_t kind;         // enum mg_access_kind
  uint32_t abi_version;  // MG_ABI_VERSION
  uint32_t flags;        // enum mg_site_flags
  uint32_t reserved;     // 0
} mg_site;

void __mapguard_read_begin(void *map, const mg_site *site);
void __mapguard_read_end(void *map, const mg_site *site);
void __mapguard_write_begin(void *map, const mg_site *site);
void __mapguard_write_end(void *map, const mg_site *site);
void __mapguard_iter_begin(void *map, const mg_site *site);
// Ends the thread's innermost iteration of `map`; a null map is ignored, so
// the plugin may call it on every exit path of the loop.
void __mapguard_iter_end(void *map, const mg_site *site);
void __mapguard_construct(void *map, const mg_site *site);
void __mapguard_destroy_begin(void *map, const mg_site *site);
void __mapguard_destroy_end(void *map, const mg_site *site);
// Replaces __cxa_atexit(dtor, map, dso) for a static-storage map.
int __mapguard_atexit_map(void (*dtor)(void *), void *map, void *dso, const mg_site *site);

// Happens-before edges from atomics in instrumented code (detect=hb).
void __mapguard_atomic_acquire(const void *addr);
void __mapguard_atomic_release(const void *addr);
void __mapguard_fence_acquire(void);
void __mapguard_fence_release(void);
// Atomic operations that are not themselves release (a write) or acquire (a
// read): they carry an earlier release fence / feed a later acquire fence.
void __mapguard_atomic_relaxed_write(const void *addr);
void __mapguard_atomic_relaxed_read(const void *addr);

// Synchronization mapguard cannot see (see MAPGUARD_HAPPENS_BEFORE).
void __mapguard_happens_before(const void *addr);
void __mapguard_happens_after(const void *addr);

// A call of a prebuilt library after which the thread acquires `addr` and
// does not hold it (the catalogue's wait and acquire roles: a barrier's
// Block, a notification's wait). Begin before the call (`release`: the call
// also releases, as a barrier's arrival does), end after it (`acquired`
// false: only let go). Between the two, a free of the object does not empty
// its clock: another thread may free it as soon as the call has returned
// here (the last thread out of absl::Barrier::Block deletes the barrier).
void *__mapguard_sync_wait_begin(const void *addr, int release);
void __mapguard_sync_wait_end(void *pin, int acquired);

// mapguard::guarded (guarded.h) switched its strategy (`from`, `to`: values
// of mapguard::Strategy, named by mapguard_guarded_strategy_name; `why`: a
// string literal). print_stats lists the switches; the sidecar counts them.
// guarded.h calls it through a weak reference: a program without the
// runtime needs nothing.
void __mapguard_guarded_switch(const void *guard, unsigned from, unsigned to, const char *why);

// A link unit's table of instrumented inline functions (the plugin's
// mapguard_inline_copies section, registered by a constructor of each
// instrumented object that has one): print_stats counts them.
void __mapguard_register_inline_copies(const void *begin, const void *end);
// The name of a mapguard::Strategy value, for the runtime, the sidecar and
// guarded.h alike ("?" for one it does not know).
static inline const char *mapguard_guarded_strategy_name(unsigned strategy) {
  static const char *const kNames[] = {"adaptive", "mutex", "reader-writer", "sharded",
                                       "copy-on-write"};
  return strategy < sizeof(kNames) / sizeof(kNames[0]) ? kNames[strategy] : "?";
}

#ifdef __cplusplus
}
#endif

#endif  // MAPGUARD_INTERFACE_H
