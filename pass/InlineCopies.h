// Instrumented copies of inline functions under names of their own, so the
// linker cannot swap in a plain object's copy (see InlineCopies.cpp).
#ifndef MAPGUARD_PASS_INLINECOPIES_H
#define MAPGUARD_PASS_INLINECOPIES_H

#include <set>

#include "llvm/IR/PassManager.h"

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

// At the end of the optimizer: the table of the instrumented copies still
// defined (the ones inlining and dead-code removal left), and the
// constructor that registers it with the runtime (print_stats' check).
struct InlineCopyTablePass : llvm::PassInfoMixin<InlineCopyTablePass> {
  llvm::PreservedAnalyses run(llvm::Module &M, llvm::ModuleAnalysisManager &);
};

}  // namespace mapguard

#endif  // MAPGUARD_PASS_INLINECOPIES_H
