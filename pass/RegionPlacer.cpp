#include "RegionPlacer.h"

#include "llvm/IR/Constants.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/Transforms/Utils/BasicBlockUtils.h"
#include "llvm/Transforms/Utils/Local.h"

using namespace llvm;

namespace mapguard {

bool RegionPlacer::place(FunctionRegions &regions) {
  for (auto &[cb, siteVar] : regions.atexits) {
    // __cxa_atexit(dtor, map, dso) -> __mapguard_atexit_map(dtor, map, dso, site):
    // the runtime registers the destructor wrapped in a destroy region.
    IRBuilder<> b(cb);
    CallInst *wrapped = b.CreateCall(rt.atexitMap, {cb->getArgOperand(0), cb->getArgOperand(1),
                                                    cb->getArgOperand(2), siteVar});
    wrapped->setDebugLoc(cb->getDebugLoc());
    cb->replaceAllUsesWith(wrapped);
    cb->eraseFromParent();
  }
  if (regions.calls.empty() && regions.iterations.empty()) return !regions.atexits.empty();
  for (IterationRegion &it : regions.iterations) instrumentIteration(it);
  for (InstrumentedCall &ic : regions.calls) instrumentCall(ic);
  for (CallInst *ci : toConvert) changeToInvokeAndSplitBasicBlock(ci, getCleanupPad());
  return true;
}

AllocaInst *RegionPlacer::newSlot() {
  BasicBlock &entry = F.getEntryBlock();
  IRBuilder<> b(&entry, entry.getFirstInsertionPt());
  auto *ptrTy = PointerType::getUnqual(F.getContext());
  AllocaInst *slot = b.CreateAlloca(ptrTy, nullptr, "mapguard.region");
  b.CreateStore(ConstantPointerNull::get(ptrTy), slot);
  return slot;
}

// Ends `r` if it is active (slot non-null) and marks it ended.
void RegionPlacer::emitEndFromSlot(IRBuilder<> &b, const Region &r) {
  auto *ptrTy = PointerType::getUnqual(F.getContext());
  Value *m = b.CreateLoad(ptrTy, r.slot);
  b.CreateCall(rt.end(r.kind), {m, r.site});
  b.CreateStore(ConstantPointerNull::get(ptrTy), r.slot);
}

BasicBlock *RegionPlacer::getCleanupPad() {
  if (cleanupPad) return cleanupPad;
  LLVMContext &C = F.getContext();
  if (!F.hasPersonalityFn()) {
    FunctionCallee pers = F.getParent()->getOrInsertFunction(
        "__gxx_personality_v0", FunctionType::get(Type::getInt32Ty(C), true));
    F.setPersonalityFn(cast<Constant>(pers.getCallee()));
  }
  cleanupPad = BasicBlock::Create(C, "mapguard.cleanup", &F);
  IRBuilder<> b(cleanupPad);
  if (DISubprogram *sp = F.getSubprogram())
    b.SetCurrentDebugLocation(DILocation::get(C, sp->getLine(), 0, sp));
  Type *lpTy = StructType::get(PointerType::getUnqual(C), Type::getInt32Ty(C));
  LandingPadInst *lp = b.CreateLandingPad(lpTy, 0);
  lp->setCleanup(true);
  // The region ends are added at the end (finishCleanupPad), once every
  // region that may be open here is known.
  b.CreateResume(lp);
  return cleanupPad;
}

void RegionPlacer::routeThroughCleanup(CallInst *ci) {
  if (functionMayUnwind() && !ci->doesNotThrow()) toConvert.insert(ci);
}

void RegionPlacer::addToCleanup(const Region &r) {
  if (!functionMayUnwind()) return;
  getCleanupPad();
  IRBuilder<> b(cleanupPad->getTerminator());
  b.SetCurrentDebugLocation(cleanupPad->getTerminator()->getDebugLoc());
  emitEndFromSlot(b, r);
}

void RegionPlacer::emitEnds(IRBuilder<> &b, std::vector<Region> &regions) {
  auto *ptrTy = PointerType::getUnqual(F.getContext());
  for (auto r = regions.rbegin(); r != regions.rend(); ++r) {
    b.CreateCall(rt.end(r->kind), {r->map, r->site});
    if (r->slot) b.CreateStore(ConstantPointerNull::get(ptrTy), r->slot);
  }
}

// The begin call of `r` just before `at`; under `r.guard` when it has one
// (the block is split, `at` moves to the tail).
void RegionPlacer::emitBegin(Instruction *at, const Region &r) {
  Instruction *before = at;
  if (r.guard) before = SplitBlockAndInsertIfThen(r.guard, at, false);
  IRBuilder<> b(before);
  b.SetCurrentDebugLocation(at->getDebugLoc());
  b.CreateCall(rt.begin(r.kind), {r.map, r.site});
}

void RegionPlacer::instrumentCall(InstrumentedCall &ic) {
  CallBase *cb = ic.call;
  // A musttail call must be followed by the return: nothing can run after
  // it, and dropping the guarantee would change how deep the program can
  // recurse. The access is recorded as a point just before the call.
  if (auto *ci = dyn_cast<CallInst>(cb); ci && ci->isMustTailCall()) {
    IRBuilder<> b(cb);
    b.SetCurrentDebugLocation(cb->getDebugLoc());
    for (Region &r : ic.regions) {
      if (r.kind == AccessKind::Construct) continue;
      emitBegin(cb, r);
      IRBuilder<> e(cb);
      e.SetCurrentDebugLocation(cb->getDebugLoc());
      e.CreateCall(rt.end(r.kind), {r.map, r.site});
    }
    return;
  }
  auto *inv = dyn_cast<InvokeInst>(cb);
  bool unwinds = inv || (functionMayUnwind() && !cb->doesNotThrow());
  for (Region &r : ic.regions) {
    if (r.kind == AccessKind::Construct) continue;  // recorded once the constructor returned
    emitBegin(cb, r);
    if (unwinds) {
      IRBuilder<> b(cb);
      b.SetCurrentDebugLocation(cb->getDebugLoc());
      r.slot = newSlot();
      b.CreateStore(r.map, r.slot);
    }
  }
  if (inv) {
    BasicBlock *dest = inv->getNormalDest();
    if (!dest->getSinglePredecessor()) dest = SplitEdge(inv->getParent(), dest);
    IRBuilder<> b(dest, dest->getFirstInsertionPt());
    b.SetCurrentDebugLocation(cb->getDebugLoc());
    emitEnds(b, ic.regions);
    BasicBlock *pad = inv->getUnwindDest();
    IRBuilder<> u(pad, pad->getFirstInsertionPt());
    u.SetCurrentDebugLocation(cb->getDebugLoc());
    for (Region &r : ic.regions)
      if (r.slot) emitEndFromSlot(u, r);
    return;
  }
  IRBuilder<> b(cb->getNextNode());
  b.SetCurrentDebugLocation(cb->getDebugLoc());
  emitEnds(b, ic.regions);
  if (unwinds) {
    for (Region &r : ic.regions)
      if (r.slot) addToCleanup(r);
    routeThroughCleanup(cast<CallInst>(cb));
  }
}

static bool isSuspendReturn(const IterationRegion &it, BasicBlock *exit);

void RegionPlacer::instrumentIteration(IterationRegion &it) {
  Region &r = it.region;
  r.slot = newSlot();
  // A loop with co_awaits keeps its map in a second slot for as long as it
  // runs (splitAtSuspend).
  AllocaInst *parked = it.suspends.empty() ? nullptr : newSlot();
  {
    IRBuilder<> b(it.beginCall);
    b.SetCurrentDebugLocation(it.beginCall->getDebugLoc());
    b.CreateCall(rt.iterBegin, {r.map, r.site});
    b.CreateStore(r.map, r.slot);
    if (parked) b.CreateStore(r.map, parked);
  }
  for (BasicBlock *exit : it.exits) {
    if (isSuspendReturn(it, exit)) continue;
    IRBuilder<> b(exit, exit->getFirstInsertionPt());
    b.SetCurrentDebugLocation(it.beginCall->getDebugLoc());
    emitEndFromSlot(b, r);
  }
  for (IntrinsicInst *suspend : it.suspends) splitAtSuspend(r, parked, suspend);
  addToCleanup(r);
  for (CallInst *ci : it.mayThrowInBody) routeThroughCleanup(ci);
  if (auto *ci = dyn_cast<CallInst>(it.beginCall)) routeThroughCleanup(ci);
}

// A co_await inside the loop: the coroutine may be resumed on another
// thread, so the iteration ends before the suspension (before coro.save:
// await_suspend may already hand the coroutine over) and begins again where
// the coroutine goes on, on whichever thread that is. The map stays in
// `parked` (stored once, where the loop begins: a suspension whose
// await_suspend threw leaves the slot empty, and the next one must still
// know the map); across the suspension the region's slot says "no region": the
// suspension returns to the resumer through the loop's exits, and a
// coroutine destroyed while suspended leaves through them too; an end there
// would close the thread's innermost iteration region on this map, which is
// not this one (ended already) but, say, the caller's own loop over it.
// Where it goes on is the resume case's block, which the path of an
// await_suspend that declines to suspend (returns false) reaches too, and
// the path of an await_ready that was true, with the region never ended: so
// the begin there runs only if the slot is empty.
void RegionPlacer::splitAtSuspend(const Region &r, AllocaInst *parked, IntrinsicInst *suspend) {
  auto *ptrTy = PointerType::getUnqual(F.getContext());
  Instruction *before = suspend;
  if (auto *save = dyn_cast<IntrinsicInst>(suspend->getArgOperand(0)))
    if (save->getIntrinsicID() == Intrinsic::coro_save) before = save;
  IRBuilder<> b(before);
  b.SetCurrentDebugLocation(suspend->getDebugLoc());
  b.CreateCall(rt.end(r.kind), {b.CreateLoad(ptrTy, r.slot), r.site});
  b.CreateStore(ConstantPointerNull::get(ptrTy), r.slot);
  for (User *u : suspend->users()) {
    auto *sw = dyn_cast<SwitchInst>(u);
    if (!sw || sw->getCondition() != suspend) continue;
    auto resumeCase = sw->findCaseValue(ConstantInt::get(Type::getInt8Ty(F.getContext()), 0));
    if (resumeCase == sw->case_default()) continue;
    BasicBlock *goesOn = resumeCase->getCaseSuccessor();
    Instruction *at = &*goesOn->getFirstInsertionPt();
    IRBuilder<> cb(at);
    cb.SetCurrentDebugLocation(suspend->getDebugLoc());
    Value *empty = cb.CreateICmpEQ(cb.CreateLoad(ptrTy, r.slot), ConstantPointerNull::get(ptrTy));
    Instruction *then = SplitBlockAndInsertIfThen(empty, at, false);
    IRBuilder<> rb(then);
    rb.SetCurrentDebugLocation(suspend->getDebugLoc());
    Value *back = rb.CreateLoad(ptrTy, parked);
    rb.CreateStore(back, r.slot);
    rb.CreateCall(rt.begin(AccessKind::Iterate), {back, r.site});
  }
}

// Where a suspension inside the loop returns to the coroutine's resumer. No
// region is open on that edge (splitAtSuspend), and after a destroy the
// coroutine's frame, which holds the region's slot, is freed before it: no
// end is placed there.
static bool isSuspendReturn(const IterationRegion &it, BasicBlock *exit) {
  for (IntrinsicInst *suspend : it.suspends)
    for (User *u : suspend->users())
      if (auto *sw = dyn_cast<SwitchInst>(u);
          sw && sw->getCondition() == suspend && sw->getDefaultDest() == exit)
        return true;
  return false;
}

}  // namespace mapguard
