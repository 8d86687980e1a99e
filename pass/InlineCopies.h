// Instrumented copies of inline functions under names of their own, so the
// linker cannot swap in a plain object's copy (see InlineCopies.cpp).
#ifndef MAPGUARD_PASS_INLINECOPIES_H
#define MAPGUARD_PASS_INLINECOPIES_H

#include <set>

namespace llvm {
class Function;
class Module;
}  // namespace llvm

namespace mapguard {

// The suffix an instrumented inline function's own name carries; the runtime
// drops it from symbolized names (" (.mapguard)").
extern const char kInstrumentedCopySuffix[];

// Renames the linkonce_odr/weak_odr functions in `instrumented`, and the ones
// that call them, keeping their original names as aliases. True if any.
bool renameInstrumentedInlineCopies(llvm::Module &M, const std::set<llvm::Function *> &instrumented);

}  // namespace mapguard

#endif  // MAPGUARD_PASS_INLINECOPIES_H
