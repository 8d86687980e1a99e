#include "LLVMCompat.h"
#include "PassSteps.h"

#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/IR/Dominators.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/InstIterator.h"
#include "llvm/Linker/Linker.h"
#include "llvm/Support/MemoryBufferRef.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

#include <tuple>

using namespace llvm;

namespace mapguard {

namespace {

// The runtime entry points whose owned fast path (runtime/mg_fast_path.h)
// the bitcode defines under another name.
constexpr const char *kInlinedEntries[][2] = {
    {"__mapguard_read_begin", "__mapguard_inline_read_begin"},
    {"__mapguard_read_end", "__mapguard_inline_read_end"},
    {"__mapguard_write_begin", "__mapguard_inline_write_begin"},
    {"__mapguard_write_end", "__mapguard_inline_write_end"},
};

// Begins whose ends take the begin's token (mg_fast_path.h, RegionToken):
// {runtime begin, runtime end, token begin, token end}.
constexpr const char *kTokenPairs[][4] = {
    {"__mapguard_read_begin", "__mapguard_read_end", "__mapguard_inline_read_begin_token",
     "__mapguard_inline_read_end_token"},
    {"__mapguard_write_begin", "__mapguard_write_end", "__mapguard_inline_write_begin_token",
     "__mapguard_inline_write_end_token"},
};

// Each begin call whose region's ends it dominates (same map value, same
// site; outside landing pads) hands them a token: the end then knows which
// stack entry is its region instead of looking for it. Only a begin that is
// the one begin of its (map value, site) in its function: then every end
// with that key is its region's. An end the begin does not dominate (none
// is placed so today) keeps the plain call, which finds its region itself.
void pairBeginsWithEnds(Module &M, const char *const names[4]) {
  Function *begin = M.getFunction(names[0]), *end = M.getFunction(names[1]);
  if (!begin || !end) return;
  LLVMContext &C = M.getContext();
  auto *ptrTy = PointerType::getUnqual(C);
  auto *i64 = Type::getInt64Ty(C);
  DenseMap<Value *, SmallVector<CallBase *, 2>> endsBySite;
  for (User *u : end->users())
    if (auto *cb = dyn_cast<CallBase>(u);
        cb && cb->getCalledOperand() == end && !cb->getParent()->isEHPad())
      endsBySite[cb->getArgOperand(1)].push_back(cb);
  SmallVector<CallBase *, 16> begins;
  // Begins per (function, map value, site): a key two regions share (`g ==
  // g` and `std::swap(g, g)` give both operands one site; so do two calls in
  // one macro expansion) cannot tell their ends apart, so it is not paired.
  DenseMap<std::tuple<Function *, Value *, Value *>, unsigned> beginsPerKey;
  for (User *u : begin->users())
    if (auto *cb = dyn_cast<CallInst>(u); cb && cb->getCalledOperand() == begin) {
      beginsPerKey[{cb->getFunction(), cb->getArgOperand(0), cb->getArgOperand(1)}]++;
      if (!cb->getParent()->isEHPad()) begins.push_back(cb);
    }
  DenseMap<Function *, std::unique_ptr<DominatorTree>> trees;
  for (CallBase *b : begins) {
    if (beginsPerKey[{b->getFunction(), b->getArgOperand(0), b->getArgOperand(1)}] != 1) continue;
    auto found = endsBySite.find(b->getArgOperand(1));
    if (found == endsBySite.end()) continue;
    Function *F = b->getFunction();
    std::unique_ptr<DominatorTree> &dt = trees[F];
    if (!dt) dt = std::make_unique<DominatorTree>(*F);
    SmallVector<CallBase *, 2> paired;
    for (CallBase *e : found->second)
      if (e->getFunction() == F && e->getArgOperand(0) == b->getArgOperand(0) &&
          dt->dominates(b, e))
        paired.push_back(e);
    if (paired.empty()) continue;
    FunctionCallee beginToken =
        M.getOrInsertFunction(names[2], FunctionType::get(i64, {ptrTy, ptrTy}, false));
    FunctionCallee endToken = M.getOrInsertFunction(
        names[3], FunctionType::get(Type::getVoidTy(C), {ptrTy, ptrTy, i64}, false));
    IRBuilder<> ib(b);
    CallInst *token = ib.CreateCall(beginToken, {b->getArgOperand(0), b->getArgOperand(1)});
    token->setDebugLoc(b->getDebugLoc());
    for (CallBase *e : paired) {
      IRBuilder<> eb(e);
      CallInst *n = eb.CreateCall(endToken, {e->getArgOperand(0), e->getArgOperand(1), token});
      n->setDebugLoc(e->getDebugLoc());
      e->eraseFromParent();
    }
    found->second.erase(std::remove_if(found->second.begin(), found->second.end(),
                                       [&](CallBase *e) { return is_contained(paired, e); }),
                        found->second.end());
    b->eraseFromParent();  // the dominator tree stays valid: no block changed
  }
}

}  // namespace

// Links the fast path's bitcode into M and points the module's calls to the
// four hot entry points at it, internal and always-inline: the inliner later
// in this pipeline puts the common case into the user's functions. A module
// for another target keeps calling the runtime.
void linkFastPath(Module &M, const std::string &bitcode, const std::string &file) {
  bool used = false;
  for (const auto &entry : kInlinedEntries)
    if (Function *F = M.getFunction(entry[0])) used |= !F->use_empty();
  if (!used) return;
  LLVMContext &C = M.getContext();
  auto loaded = parseBitcodeFile(MemoryBufferRef(bitcode, file), C);
  if (!loaded) {
    C.emitError("mapguard: cannot load the inlined fast path '" + file +
                "': " + toString(loaded.takeError()));
    return;
  }
  std::unique_ptr<Module> fastPath = std::move(*loaded);
  if (Triple(fastPath->getTargetTriple()).getArch() != Triple(M.getTargetTriple()).getArch() ||
      fastPath->getDataLayout() != M.getDataLayout())
    return;
  fastPath->setTargetTriple(M.getTargetTriple());
  // Its module flags (PIC level, frame pointers, ...) are not the user's to take.
  if (NamedMDNode *flags = fastPath->getModuleFlagsMetadata()) fastPath->eraseNamedMetadata(flags);
  if (NamedMDNode *ident = fastPath->getNamedMetadata("llvm.ident"))
    fastPath->eraseNamedMetadata(ident);
  for (const auto &names : kTokenPairs) pairBeginsWithEnds(M, names);
  // Ends on unwind paths (in landing pads) keep calling the runtime: they
  // are cold, and inlined there they would only add code.
  for (const auto &entry : kInlinedEntries) {
    Function *F = M.getFunction(entry[0]);
    if (!F || F->use_empty()) continue;
    FunctionCallee inlined = M.getOrInsertFunction(entry[1], F->getFunctionType());
    SmallVector<CallBase *, 16> calls;
    for (User *u : F->users())
      if (auto *cb = dyn_cast<CallBase>(u); cb && cb->getCalledOperand() == F &&
                                            !cb->getParent()->isEHPad())
        calls.push_back(cb);
    for (CallBase *cb : calls) cb->setCalledFunction(inlined);
  }
  if (Linker::linkModules(M, std::move(fastPath), Linker::Flags::LinkOnlyNeeded)) {
    C.emitError("mapguard: cannot link the inlined fast path '" + file + "' into '" +
                M.getName() + "'");
    return;
  }
  std::vector<const char *> inlined;
  for (const auto &entry : kInlinedEntries) inlined.push_back(entry[1]);
  for (const auto &names : kTokenPairs) inlined.insert(inlined.end(), {names[2], names[3]});
  for (const char *name : inlined) {
    const char *entry[2] = {nullptr, name};
    Function *G = M.getFunction(entry[1]);
    if (!G) continue;
    if (G->isDeclaration()) {
      C.emitError("mapguard: the inlined fast path '" + file + "' does not define " + entry[1]);
      continue;
    }
    G->setLinkage(GlobalValue::InternalLinkage);
    G->removeFnAttr(Attribute::NoInline);
    G->removeFnAttr(Attribute::OptimizeNone);
    G->addFnAttr(Attribute::AlwaysInline);
    // Inlined into the user's functions, it takes their target: a callee
    // built for the baseline CPU must not be refused by a caller built for
    // another one.
    G->removeFnAttr("target-cpu");
    G->removeFnAttr("target-features");
    G->removeFnAttr("tune-cpu");
    // Its calls into the runtime are tail calls where it was compiled; inlined
    // at the end of a user's function they must not become jumps, or a report
    // would not see that function on the stack.
    for (Instruction &I : instructions(*G))
      if (auto *ci = dyn_cast<CallInst>(&I)) ci->setTailCallKind(CallInst::TCK_NoTail);
  }
}

// Instrumented code linked without the runtime fails with dozens of undefined
// __mapguard_* symbols, none of which says what is missing. addLinkCheck's
// function, first in the module and so (in .text) the linker's first
// complaint, refers to this symbol, whose name says it. Never called. The
// runtime defines it under the same name (mg_rt.cpp): every program that
// links the runtime checks the two agree.
namespace {
constexpr const char kRuntimeLinkSymbol[] =
    "__mapguard_needs_libmapguard_rt__link_with_pkg_config_libs_mapguard";

}  // namespace

void addLinkCheck(Module &M) {
  const char *kName = "__mapguard_link_check";
  if (M.getFunction(kName)) return;
  LLVMContext &C = M.getContext();
  GlobalVariable *needed = M.getGlobalVariable(kRuntimeLinkSymbol);
  if (!needed)
    needed = new GlobalVariable(M, Type::getInt8Ty(C), /*isConstant=*/true,
                                GlobalValue::ExternalLinkage, nullptr, kRuntimeLinkSymbol);
  Function *check = Function::Create(FunctionType::get(PointerType::getUnqual(C), false),
                                     GlobalValue::InternalLinkage, kName);
  M.getFunctionList().push_front(check);
  check->addFnAttr(Attribute::NoInline);
  check->addFnAttr(Attribute::OptimizeNone);
  IRBuilder<> b(BasicBlock::Create(C, "", check));
  b.CreateRet(needed);
  appendToCompilerUsed(M, {check});
}

}  // namespace mapguard
