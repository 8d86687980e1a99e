// mapguard public annotations.
//
// Include this header to mark your own map-like classes for tracking and to
// opt functions out of instrumentation. Every macro expands to nothing when the
// code is not compiled with the mapguard plugin, so the header is safe to ship.
#ifndef MAPGUARD_ANNOTATIONS_H
#define MAPGUARD_ANNOTATIONS_H

#if defined(__MAPGUARD__) && defined(__clang__)
// A class whose objects mapguard tracks like std::unordered_map: const member
// functions are reads, non-const ones writes, unless a member says otherwise.
#define MAPGUARD_MAP __attribute__((annotate("mapguard.map")))
// Per-member overrides inside a MAPGUARD_MAP class.
#define MAPGUARD_READ __attribute__((annotate("mapguard.read")))
#define MAPGUARD_WRITE __attribute__((annotate("mapguard.write")))
#define MAPGUARD_IGNORE __attribute__((annotate("mapguard.ignore")))
// A function whose body mapguard leaves uninstrumented.
#define MAPGUARD_NO_INSTRUMENT __attribute__((annotate("mapguard.no_instrument")))
#else
#define MAPGUARD_MAP
#define MAPGUARD_READ
#define MAPGUARD_WRITE
#define MAPGUARD_IGNORE
#define MAPGUARD_NO_INSTRUMENT
#endif

// Synchronization mapguard cannot see, for example a lock-free queue inside
// an uninstrumented library: everything the thread did before
// MAPGUARD_HAPPENS_BEFORE(p) happens before what another thread does after a
// later MAPGUARD_HAPPENS_AFTER(p) with the same address.
#if defined(__MAPGUARD__)
#include "mapguard/interface.h"
#define MAPGUARD_HAPPENS_BEFORE(addr) __mapguard_happens_before((const void *)(addr))
#define MAPGUARD_HAPPENS_AFTER(addr) __mapguard_happens_after((const void *)(addr))
#else
#define MAPGUARD_HAPPENS_BEFORE(addr) ((void)(addr))
#define MAPGUARD_HAPPENS_AFTER(addr) ((void)(addr))
#endif

#endif  // MAPGUARD_ANNOTATIONS_H
