#include "LLVMCompat.h"
#include "PassSteps.h"

#include <map>

#include "llvm/ADT/Statistic.h"
#include "llvm/IR/CFG.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Instructions.h"
#include "llvm/Transforms/Utils/BasicBlockUtils.h"
#include "llvm/Transforms/Utils/EscapeEnumerator.h"
#include "llvm/Transforms/Utils/Local.h"

#define DEBUG_TYPE "mapguard"

using namespace llvm;

STATISTIC(NumSyncCalls, "Calls to catalogued synchronization classes instrumented");

namespace mapguard {

namespace {

const char kCxxPersonality[] = "__gxx_personality_v0";

// Exceptions unwind through landing pads here (the Itanium ABI of Linux and
// every ELF target): the function's personality is a GNU one, or it has
// none yet and the module's other functions use C++'s (a C module, or one
// without exceptions, gets none added). Windows' and WebAssembly's scoped EH
// (funclets) get no unwind-path edges.
bool landingPadEH(Function &F) {
  if (F.hasPersonalityFn()) return !isScopedEHPersonality(classifyEHPersonality(F.getPersonalityFn()));
  Triple triple(F.getParent()->getTargetTriple());
  return triple.isOSBinFormatELF() && !triple.isWasm() && F.getParent()->getFunction(kCxxPersonality);
}

// A wait or acquire call that may throw and has no landing pad of its own
// becomes an invoke whose unwind edge goes to a new cleanup pad that only
// resumes: the caller then puts the acquire there as for any invoke.
// oneTBB's task_group::wait and a flow graph's wait_for_all reach r1::wait
// through inline wrappers that have no cleanups.
CallBase *giveUnwindEdge(CallInst *call) {
  Function &F = *call->getFunction();
  LLVMContext &C = F.getContext();
  if (!F.hasPersonalityFn())
    F.setPersonalityFn(F.getParent()->getFunction(kCxxPersonality));  // landingPadEH: it exists
  BasicBlock *pad = BasicBlock::Create(C, "mapguard.wait.unwind", &F);
  IRBuilder<> b(pad);
  auto *lp = b.CreateLandingPad(StructType::get(PointerType::getUnqual(C), Type::getInt32Ty(C)), 0);
  lp->setCleanup(true);
  b.CreateResume(lp);
  BasicBlock *from = call->getParent();
  changeToInvokeAndSplitBasicBlock(call, pad);
  return cast<InvokeInst>(from->getTerminator());
}

// At the top of landing pad `pad`: a phi of the value each predecessor
// names in `from`, null from the others (`fromOthers` says if any).
PHINode *phiOfPredecessors(BasicBlock *pad, const std::map<BasicBlock *, Value *> &from, const char *name,
                           bool *fromOthers) {
  auto *ptrTy = PointerType::getUnqual(pad->getContext());
  PHINode *phi = IRBuilder<>(pad, pad->begin()).CreatePHI(ptrTy, 2, name);
  for (BasicBlock *pred : predecessors(pad)) {
    if (phi->getBasicBlockIndex(pred) >= 0) continue;
    auto it = from.find(pred);
    if (it == from.end() && fromOthers) *fromOthers = true;
    phi->addIncoming(it != from.end() ? it->second : ConstantPointerNull::get(ptrTy), pred);
  }
  return phi;
}

}  // namespace

// Calls to the synchronization classes of prebuilt libraries (the
// catalogue's sync lines: absl::Mutex, absl::CondVar, absl::Notification...)
// become happens-before edges on the lock, as the pthread interceptors make
// them for pthreads: a release before a call that unlocks, an acquire after
// one that locks (after a try-lock only if it returned true). The library
// synchronizes where nothing instrumented sees it (in futex system calls), so
// without these a map correctly guarded by such a lock is reported. A reader
// unlock releases into the lock's one clock, so it also orders later readers
// (the runtime keeps no second clock for a lock it does not know the size of).
bool instrumentSyncCalls(Function &F, const Runtime &rt, const TrackedClasses &tracked) {
  if (tracked.syncMembers.empty() && tracked.syncFunctions.empty()) return false;
  struct SyncCall {
    CallBase *call;
    SyncMember member;
  };
  std::vector<SyncCall> calls;
  for (BasicBlock &BB : F)
    for (Instruction &I : BB)
      if (auto *cb = dyn_cast<CallBase>(&I))
        if (Function *callee = cb->getCalledFunction())
          if (auto m = classifySyncCall(callee->getName().str(), tracked);
              m && m->argIndex < cb->arg_size() && cb->getArgOperand(m->argIndex)->getType()->isPointerTy())
            calls.push_back({cb, *m});
  const bool unwinds = !F.doesNotThrow() && landingPadEH(F);
  for (SyncCall &sc : calls)
    if (auto *ci = dyn_cast<CallInst>(sc.call);
        ci && unwinds && !ci->doesNotThrow() && !ci->isMustTailCall() &&
        (sc.member.role == SyncRole::Wait || sc.member.role == SyncRole::Acquire) &&
        compat::startsWith(ci->getCalledFunction()->getName(), "_Z"))
      sc.call = giveUnwindEdge(ci);
  // Landing pads reached from pinned calls: the pin of each predecessor.
  std::map<BasicBlock *, std::map<BasicBlock *, Value *>> unwindPins;
  // Landing pads reached from waits and acquires that may throw what the
  // other side threw (oneTBB's wait and execute carry a task's exception
  // back to the waiter, after the task is done): the object of each
  // predecessor. A lock that throws was not taken: no edge.
  std::map<BasicBlock *, std::map<BasicBlock *, Value *>> unwindAcquires;
  for (const SyncCall &sc : calls) {
    CallBase *cb = sc.call;
    Value *lock = cb->getArgOperand(sc.member.argIndex);
    SyncRole role = sc.member.role;
    bool before = role == SyncRole::Unlock || role == SyncRole::SharedUnlock ||
                  role == SyncRole::Wait || role == SyncRole::Release || role == SyncRole::Barrier;
    bool after = !before || role == SyncRole::Wait || role == SyncRole::Barrier;
    bool onlyIfTrue = role == SyncRole::TryLock || role == SyncRole::SharedTryLock;
    // A barrier's last party out may free it as soon as this thread is out
    // of the library, before the acquire after the call: the object's clock
    // is pinned for the call (mg_hb.h, PinSync), and let go on the unwind
    // path too. A lock is held after its call, and the waiter owns a
    // notification, so no one else frees those then.
    Value *pin = nullptr;
    if (role == SyncRole::Barrier) {
      auto *c = IRBuilder<>(cb).CreateCall(
          rt.syncWaitBegin, {lock, ConstantInt::get(Type::getInt32Ty(F.getContext()), 1)});
      c->setDebugLoc(cb->getDebugLoc());
      pin = c;
      if (auto *inv = dyn_cast<InvokeInst>(cb); inv && inv->getUnwindDest()->isLandingPad())
        unwindPins[inv->getUnwindDest()][inv->getParent()] = pin;
    } else if (before) {
      IRBuilder<>(cb).CreateCall(rt.happensBefore, {lock})->setDebugLoc(cb->getDebugLoc());
    }
    if (!after) continue;
    if (auto *inv = dyn_cast<InvokeInst>(cb);
        inv && (role == SyncRole::Wait || role == SyncRole::Acquire) && inv->getUnwindDest()->isLandingPad())
      unwindAcquires[inv->getUnwindDest()][inv->getParent()] = lock;
    // After the call: on its normal path (an invoke's normal edge gets a
    // block of its own if the destination has other predecessors).
    Instruction *at = nullptr;
    if (auto *inv = dyn_cast<InvokeInst>(cb)) {
      BasicBlock *dest = inv->getNormalDest();
      if (!dest->getSinglePredecessor()) dest = SplitEdge(inv->getParent(), dest);
      at = &*dest->getFirstInsertionPt();
    } else {
      at = cb->getNextNode();
    }
    if (onlyIfTrue) {
      if (!cb->getType()->isIntegerTy()) continue;  // not a bool: no edge rather than a wrong one
      IRBuilder<> b(at);
      Value *taken = b.CreateICmpNE(cb, ConstantInt::get(cb->getType(), 0));
      at = SplitBlockAndInsertIfThen(taken, at, /*Unreachable=*/false);
    }
    if (pin)
      IRBuilder<>(at)
          .CreateCall(rt.syncWaitEnd, {pin, ConstantInt::get(Type::getInt32Ty(F.getContext()), 1)})
          ->setDebugLoc(cb->getDebugLoc());
    else
      IRBuilder<>(at).CreateCall(rt.happensAfter, {lock})->setDebugLoc(cb->getDebugLoc());
  }
  // A pinned call that throws lets its pin go in the landing pad: a phi of
  // the pins of the pad's predecessors (null from the others) and an end
  // that only lets go.
  for (auto &[pad, pins] : unwindPins) {
    PHINode *phi = phiOfPredecessors(pad, pins, "mapguard.pin", nullptr);
    IRBuilder<> e(&*pad->getFirstInsertionPt());
    e.CreateCall(rt.syncWaitEnd, {phi, ConstantInt::get(Type::getInt32Ty(F.getContext()), 0)});
  }
  // The same for the unwinding waits: null (no acquire) from the pad's other
  // predecessors.
  for (auto &[pad, locks] : unwindAcquires) {
    bool fromOthers = false;
    PHINode *phi = phiOfPredecessors(pad, locks, "mapguard.thrown_from", &fromOthers);
    Instruction *at = &*pad->getFirstInsertionPt();
    if (fromOthers) {
      IRBuilder<> test(at);
      at = SplitBlockAndInsertIfThen(test.CreateIsNotNull(phi), at, /*Unreachable=*/false);
    }
    IRBuilder<>(at).CreateCall(rt.happensAfter, {phi});
  }
  NumSyncCalls += calls.size();
  return !calls.empty();
}

// A task body a prebuilt scheduler runs (an `entry` line): everything the
// spawning thread did before handing the task over happens before it. A
// `run=` body is also waited for by the thread that handed it over: its
// every exit, returning or unwinding (the library carries an exception back
// to the waiter), releases for the waiter's acquire after the call.
bool instrumentEntry(Function &F, const Runtime &rt, const TrackedClasses &tracked) {
  if (F.arg_empty() || !F.getArg(0)->getType()->isPointerTy()) return false;
  EntryRole role = entryRoleOf(F.getName().str(), tracked);
  if (role == EntryRole::None) return false;
  DebugLoc loc;
  if (DISubprogram *sp = F.getSubprogram()) loc = DILocation::get(F.getContext(), sp->getLine(), 0, sp);
  IRBuilder<> b(&*F.getEntryBlock().getFirstInsertionPt());
  b.CreateCall(rt.happensAfter, {F.getArg(0)})->setDebugLoc(loc);
  ++NumSyncCalls;
  if (role == EntryRole::Run) {
    EscapeEnumerator exits(F, "mapguard.run.cleanup", /*HandleExceptions=*/landingPadEH(F));
    while (IRBuilder<> *at = exits.Next()) at->CreateCall(rt.happensBefore, {F.getArg(0)})->setDebugLoc(loc);
  }
  return true;
}

}  // namespace mapguard
