// Instrumented copies of inline functions get names of their own, so link
// order cannot decide whether an instrumented translation unit runs them.
//
// An inline function (or a template instantiation) is emitted, linkonce_odr
// or weak_odr, in every object that uses it, and the linker keeps one copy:
// the first it meets. When a plain object (no plugin) comes first, an
// instrumented object's calls land in the plain copy: its map accesses go
// unseen (a missed race) and its atomics release nothing (a false report at
// the acquire that pairs with them). So every such function that the pass
// instrumented, and every such function that calls one, is renamed here
// (NAME -> NAME.mapguard, in a comdat of that name, which instrumented
// objects share and plain ones do not have), and this module's direct calls
// go to it. The original name stays defined, as an alias of the instrumented
// copy with the same linkage: other objects that reference it still link,
// and wherever the function's address is taken (function pointers,
// vtables) the original name is used, so an address means the same function
// in every object. Calls through such an address reach whichever copy the
// linker kept: docs/usage.md says so.
#include "InlineCopies.h"
#include "LLVMCompat.h"

#include <vector>

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/Statistic.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/GlobalAlias.h"
#include "llvm/IR/InstrTypes.h"
#include "llvm/IR/Module.h"

#define DEBUG_TYPE "mapguard"

using namespace llvm;

STATISTIC(NumInlineCopiesRenamed, "Instrumented inline functions given their own name");

namespace mapguard {

const char kInstrumentedCopySuffix[] = ".mapguard";

namespace {

// The functions the linker may replace by another object's copy, and that
// can be renamed: in no comdat, or in one of their own name (a constructor's
// C1/C2 pair shares a C5 comdat with an alias; those keep their names).
bool renamable(const Function &F) {
  if (F.isDeclaration() || !F.hasName()) return false;
  if (!F.hasLinkOnceODRLinkage() && !F.hasWeakODRLinkage()) return false;
  if (compat::endsWith(F.getName(), kInstrumentedCopySuffix)) return false;
  const Comdat *c = F.getComdat();
  return !c || c->getName() == F.getName();
}

}  // namespace

bool renameInstrumentedInlineCopies(Module &M, const std::set<Function *> &instrumented) {
  // The instrumented ones, then (transitively) the renamable functions that
  // call them directly: a plain copy of a caller would call the plain copy.
  std::set<Function *> marked;
  SmallVector<Function *, 64> work;
  // In module order, here and below: the object's symbols must not depend on
  // heap addresses (reproducible builds, compiler caches).
  for (Function &F : M)
    if (instrumented.count(&F) && renamable(F) && marked.insert(&F).second) work.push_back(&F);
  while (!work.empty()) {
    Function *F = work.pop_back_val();
    for (User *u : F->users()) {
      auto *cb = dyn_cast<CallBase>(u);
      if (!cb || cb->getCalledOperand() != F) continue;
      Function *caller = cb->getFunction();
      if (renamable(*caller) && marked.insert(caller).second) work.push_back(caller);
    }
  }
  std::vector<Function *> ordered;
  for (Function &F : M)
    if (marked.count(&F)) ordered.push_back(&F);
  for (Function *F : ordered) {
    std::string original = F->getName().str();
    F->setName(original + kInstrumentedCopySuffix);
    if (const Comdat *old = F->getComdat()) {
      Comdat *own = M.getOrInsertComdat(F->getName());
      own->setSelectionKind(old->getSelectionKind());
      F->setComdat(own);
    }
    auto *alias = GlobalAlias::create(F->getValueType(), F->getAddressSpace(), F->getLinkage(),
                                      original, F, &M);
    alias->setVisibility(F->getVisibility());
    alias->setUnnamedAddr(F->getUnnamedAddr());
    alias->setDLLStorageClass(F->getDLLStorageClass());
    // Direct calls keep the instrumented copy; everything else (an address
    // taken, a vtable slot) names the function by its original name.
    F->replaceUsesWithIf(alias, [&](Use &U) {
      // blockaddress(@F, %bb) names a block of this very function body.
      if (U.getUser() == alias || isa<BlockAddress>(U.getUser())) return false;
      auto *cb = dyn_cast<CallBase>(U.getUser());
      return !(cb && cb->isCallee(&U));
    });
    ++NumInlineCopiesRenamed;
  }
  // Comdats left without members (the renamed functions' old ones) are dropped
  // by the module's writer; nothing else refers to them.
  return !marked.empty();
}

}  // namespace mapguard
