// Instrumented and plain copies of inline functions, counted for a build
// check (docs/usage.md, "Partial instrumentation"). The plugin gives each
// instrumented inline function a name of its own and an entry in its link
// unit's mapguard_inline_copies section (pass/InlineCopies.cpp); each link
// unit's section is registered at start-up. print_stats says how many
// functions have an instrumented copy and which of them lost their original
// name to a plain object's copy (what calls through a function pointer or a
// vtable reach).
#ifndef MAPGUARD_INLINE_COPIES_H
#define MAPGUARD_INLINE_COPIES_H

#include <stddef.h>

namespace mapguard {

// Appends the count to print_stats' output (text, or one JSON object).
void PrintInlineCopies(bool json, void (*emit)(const char *, size_t));

}  // namespace mapguard

#endif
