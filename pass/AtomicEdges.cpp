#include "PassSteps.h"

#include "llvm/ADT/Statistic.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Instructions.h"

#define DEBUG_TYPE "mapguard"

using namespace llvm;

STATISTIC(NumAtomics, "Atomic operations and fences instrumented for happens-before");

namespace mapguard {

// Atomics and fences become happens-before edges, as [atomics.order] and
// [atomics.fences] say: a release operation or an acquire operation is an
// edge on its address; a fence has none of its own but lends its ordering to
// the atomic operations around it. So the runtime also hears of the other
// atomic operations: a write (store, or the store of a read-modify-write)
// that is not a release may carry an earlier release fence; a read that is
// not an acquire may be made one by a later acquire fence. This runs in
// every function, library code included: std::latch, std::barrier,
// semaphores, futures and shared_ptr are built on atomics in headers.
bool instrumentAtomics(Function &F, const Runtime &rt) {
  std::vector<Instruction *> atomics;
  for (BasicBlock &BB : F)
    for (Instruction &I : BB)
      if (I.isAtomic()) atomics.push_back(&I);
  for (Instruction *I : atomics) {
    AtomicOrdering before = AtomicOrdering::NotAtomic, after = AtomicOrdering::NotAtomic;
    Value *addr = nullptr;
    bool reads = false, writes = false;
    SyncScope::ID scope = SyncScope::System;
    if (auto *ld = dyn_cast<LoadInst>(I)) {
      after = ld->getOrdering();
      addr = ld->getPointerOperand();
      scope = ld->getSyncScopeID();
      reads = true;
    } else if (auto *st = dyn_cast<StoreInst>(I)) {
      before = st->getOrdering();
      addr = st->getPointerOperand();
      scope = st->getSyncScopeID();
      writes = true;
    } else if (auto *rmw = dyn_cast<AtomicRMWInst>(I)) {
      before = after = rmw->getOrdering();
      addr = rmw->getPointerOperand();
      scope = rmw->getSyncScopeID();
      reads = writes = true;
    } else if (auto *cx = dyn_cast<AtomicCmpXchgInst>(I)) {
      before = cx->getSuccessOrdering();
      after = isAcquireOrStronger(cx->getFailureOrdering()) ? cx->getFailureOrdering()
                                                             : cx->getSuccessOrdering();
      addr = cx->getPointerOperand();
      scope = cx->getSyncScopeID();
      reads = writes = true;
    } else if (auto *fence = dyn_cast<FenceInst>(I)) {
      before = after = fence->getOrdering();
      scope = fence->getSyncScopeID();
    }
    if (scope == SyncScope::SingleThread) continue;  // signal fences order nothing across threads
    bool release = isReleaseOrStronger(before), acquire = isAcquireOrStronger(after);
    IRBuilder<> pre(I);
    if (release) {
      if (addr) pre.CreateCall(rt.atomicRelease, {addr});
      else pre.CreateCall(rt.fenceRelease, {});
    } else if (writes) {
      pre.CreateCall(rt.atomicRelaxedWrite, {addr});
    }
    IRBuilder<> post(I->getNextNode());
    if (acquire) {
      if (addr) post.CreateCall(rt.atomicAcquire, {addr});
      else post.CreateCall(rt.fenceAcquire, {});
    } else if (reads) {
      post.CreateCall(rt.atomicRelaxedRead, {addr});
    }
    ++NumAtomics;
  }
  return !atomics.empty();
}

}  // namespace mapguard
