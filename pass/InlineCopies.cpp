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
//
// So that a build can be checked, each renamed function that is still
// defined at the end of the optimizer (InlineCopyTablePass: listing them
// earlier would keep copies alive that inlining made dead) gets an entry
// {NAME, NAME.mapguard, pretty name} in the section mapguard_inline_copies,
// in the instrumented copy's comdat (one entry per function kept), and each
// module that has entries registers its link unit's section with the
// runtime from a constructor. NAME resolves to whichever copy the linker
// kept under the original name; print_stats counts the functions whose
// NAME is not an instrumented copy (runtime/mg_inline_copies.cpp). A linker
// that drops unused sections may drop a copy no one calls, and its entry.
#include "InlineCopies.h"
#include "LLVMCompat.h"

#include <vector>

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/Statistic.h"
#include "llvm/Demangle/Demangle.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DerivedTypes.h"
#include "llvm/IR/GlobalAlias.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/InstrTypes.h"
#include "llvm/IR/Module.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

#define DEBUG_TYPE "mapguard"

using namespace llvm;

STATISTIC(NumInlineCopiesRenamed, "Instrumented inline functions given their own name");

namespace mapguard {

const char kInstrumentedCopySuffix[] = ".mapguard";

namespace {
const char kRegisterFunction[] = "mapguard.register_inline_copies";
}  // namespace

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

// The section's entries, laid out as runtime/mg_inline_copies.cpp's
// InlineCopy, and the constructor that registers the section.
void emitCopyTable(Module &M, const std::vector<std::pair<GlobalAlias *, Function *>> &copies) {
  LLVMContext &C = M.getContext();
  auto *ptrTy = PointerType::getUnqual(C);
  auto *entryTy = StructType::get(C, {ptrTy, ptrTy, ptrTy});
  const char *kSection = "mapguard_inline_copies";
  std::vector<GlobalValue *> used;
  for (const auto &[alias, F] : copies) {
    Constant *nameInit = ConstantDataArray::getString(C, demangle(alias->getName().str()));
    auto *name = new GlobalVariable(M, nameInit->getType(), true, GlobalValue::PrivateLinkage, nameInit,
                                    ".mapguard.copy.name");
    name->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
    name->setAlignment(Align(1));
    auto *entry = new GlobalVariable(M, entryTy, true, GlobalValue::PrivateLinkage,
                                     ConstantStruct::get(entryTy, {alias, F, name}),
                                     ".mapguard.copy");
    entry->setSection(kSection);
    entry->setAlignment(Align(8));
    if (Comdat *c = F->getComdat()) entry->setComdat(c);
    used.push_back(entry);
  }
  appendToCompilerUsed(M, used);
  // The linker defines these for a section whose name is an identifier:
  // hidden, so each link unit (executable, shared library) names its own.
  auto bound = [&](const char *name) {
    auto *gv = cast<GlobalVariable>(M.getOrInsertGlobal(name, entryTy));
    gv->setLinkage(GlobalValue::ExternalWeakLinkage);
    gv->setVisibility(GlobalValue::HiddenVisibility);
    return gv;
  };
  GlobalVariable *start = bound("__start_mapguard_inline_copies");
  GlobalVariable *stop = bound("__stop_mapguard_inline_copies");
  FunctionCallee reg = M.getOrInsertFunction("__mapguard_register_inline_copies", Type::getVoidTy(C),
                                             ptrTy, ptrTy);
  Function *ctor = Function::Create(FunctionType::get(Type::getVoidTy(C), false),
                                    GlobalValue::InternalLinkage, kRegisterFunction, M);
  IRBuilder<> b(BasicBlock::Create(C, "", ctor));
  b.CreateCall(reg, {start, stop});
  b.CreateRetVoid();
  appendToGlobalCtors(M, ctor, 65535);
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

PreservedAnalyses InlineCopyTablePass::run(Module &M, ModuleAnalysisManager &) {
  // Once per module: -ffat-lto-objects runs the optimizer's end twice.
  if (M.getFunction(kRegisterFunction)) return PreservedAnalyses::all();
  std::vector<std::pair<GlobalAlias *, Function *>> copies;
  for (GlobalAlias &A : M.aliases())
    if (auto *F = dyn_cast<Function>(A.getAliasee());
        F && !F->isDeclaration() && F->getName() == (A.getName() + kInstrumentedCopySuffix).str())
      copies.push_back({&A, F});
  if (copies.empty()) return PreservedAnalyses::all();
  emitCopyTable(M, copies);
  return PreservedAnalyses::none();
}

}  // namespace mapguard
