#include "RegionCollector.h"

#include "llvm/ADT/Statistic.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/Support/CommandLine.h"

#define DEBUG_TYPE "mapguard"

using namespace llvm;

STATISTIC(NumReads, "Map read regions instrumented");
STATISTIC(NumWrites, "Map write regions instrumented");
STATISTIC(NumIterations, "Map iteration regions instrumented");
STATISTIC(NumLifetimes, "Map constructions and destructions instrumented");

static cl::opt<bool> ClInstrumentIterations("mapguard-instrument-iterations", cl::init(true),
                                            cl::Hidden, cl::desc("Instrument loops over maps"));

namespace mapguard {
namespace {

// The site flags that describe the map object itself (a call's `this`).
unsigned objectSiteFlags(const Classification &c) {
  return (c.hashtableLayout ? kSiteHashtableLayout : 0) | (c.nodeBased ? kSiteNodeBased : 0);
}

void countRegion(AccessKind k) {
  switch (k) {
    case AccessKind::Read: ++NumReads; break;
    case AccessKind::Write: ++NumWrites; break;
    case AccessKind::Iterate: ++NumIterations; break;
    default: ++NumLifetimes;
  }
}

// Itanium member-function-pointer calls load the target as an integer
// (memptr.ptr) and, for a non-virtual member, turn it into a pointer; the
// callee is that inttoptr or a phi/select of it and the virtual lookup.
bool isMemberPointerCallee(Value *callee) {
  callee = callee->stripPointerCasts();
  if (isa<IntToPtrInst>(callee)) return true;
  if (auto *phi = dyn_cast<PHINode>(callee))
    return any_of(phi->incoming_values(), [](Value *v) { return isa<IntToPtrInst>(v); });
  if (auto *sel = dyn_cast<SelectInst>(callee))
    return isa<IntToPtrInst>(sel->getTrueValue()) || isa<IntToPtrInst>(sel->getFalseValue());
  return false;
}

Function *directCallee(CallBase *cb) {
  return dyn_cast<Function>(cb->getCalledOperand()->stripPointerCasts());
}

unsigned sretShift(CallBase *cb) {
  return cb->arg_size() > 0 && cb->paramHasAttr(0, Attribute::StructRet) ? 1 : 0;
}

void fillLoop(IterationRegion &it, Loop *L) {
  L->getExitBlocks(it.exits);
  for (BasicBlock *body : L->blocks())
    for (Instruction &bi : *body) {
      if (auto *ii = dyn_cast<IntrinsicInst>(&bi))
        if (ii->getIntrinsicID() == Intrinsic::coro_suspend) it.suspends.push_back(ii);
      if (auto *ci = dyn_cast<CallInst>(&bi))
        if (!ci->doesNotThrow() && !isa<IntrinsicInst>(ci)) it.mayThrowInBody.push_back(ci);
    }
}

// The loop whose preheader chain starts at `cb`: follow unconditional
// branches and invoke normal edges until a loop header not containing cb.
Loop *loopOpenedBy(CallBase *cb, LoopInfo &LI) {
  BasicBlock *start = cb->getParent();
  BasicBlock *cur = start;
  for (int steps = 0; steps < 16 && cur; steps++) {
    Instruction *term = cur->getTerminator();
    BasicBlock *next = nullptr;
    if (auto *br = dyn_cast<BranchInst>(term)) {
      if (br->isUnconditional()) next = br->getSuccessor(0);
    } else if (auto *inv = dyn_cast<InvokeInst>(term)) {
      next = inv->getNormalDest();
    }
    if (!next) return nullptr;
    if (LI.isLoopHeader(next)) {
      Loop *L = LI.getLoopFor(next);
      if (!L->contains(start)) return L;
    }
    cur = next;
  }
  return nullptr;
}
}  // namespace

std::vector<MemberPointerTarget> memberPointerTargets(Module &M, const TrackedClasses &tracked) {
  std::vector<MemberPointerTarget> out;
  for (Function &F : M) {
    if (!F.hasName() || !F.hasAddressTaken()) continue;
    std::optional<Classification> c = classifyCall(F.getName().str(), tracked);
    if (!c || !c->isMember || c->operands.empty() || c->operands.front().argIndex != 0) continue;
    AccessKind k = c->operands.front().kind;
    if (k != AccessKind::Read && k != AccessKind::Write && k != AccessKind::Iterate) continue;
    c->operands.resize(1);  // the object; other map operands are not followed through pointers
    out.push_back({&F, std::move(*c)});
  }
  return out;
}

void RegionCollector::collectAtExit(CallBase *cb) {
  auto *ci = dyn_cast<CallInst>(cb);
  if (!ci || ci->arg_size() != 3) return;
  auto *dtor = dyn_cast<Function>(ci->getArgOperand(0)->stripPointerCasts());
  if (!dtor || !dtor->hasName()) return;
  std::optional<Classification> c = classifyCall(dtor->getName().str(), state.tracked);
  if (!c) return;
  bool destroys = false;
  for (const MapOperand &op : c->operands)
    if (op.kind == AccessKind::Destroy && op.argIndex == 0) destroys = true;
  if (!destroys) return;
  std::string name = SiteTable::globalName(ci->getArgOperand(1));
  // The registration is compiler-generated and has no location: name the
  // variable's definition instead (its line, in the initializer's scope).
  DebugLoc dl = ci->getDebugLoc();
  if (!dl || dl.getLine() == 0)
    if (DISubprogram *sp = F.getSubprogram()) {
      unsigned line = sp->getLine();
      if (auto *gv = dyn_cast<GlobalVariable>(ci->getArgOperand(1)->stripPointerCasts())) {
        SmallVector<DIGlobalVariableExpression *, 1> exprs;
        gv->getDebugInfo(exprs);
        if (!exprs.empty() && exprs[0]->getVariable()) line = exprs[0]->getVariable()->getLine();
      }
      dl = DILocation::get(F.getContext(), line, 0, sp);
    }
  out.atexits.push_back({ci, site(AccessKind::Destroy, "destructor (at exit)", dl,
                                  sites.mapTypeAt(dl, c->mapType), name)});
  ++NumLifetimes;
}

// A callee the demangler cannot read (libc++'s constrained member templates,
// std::map::insert_range): the AST's view of the member call at this
// position, if it names the same member.
std::optional<Classification> RegionCollector::classifyFromAST(CallBase *cb, Function *callee) {
  auto it = state.memberCalls.find(positionOf(cb->getDebugLoc()));
  if (it == state.memberCalls.end() || canDemangle(callee->getName().str()) ||
      !callee->getName().contains(mangledIdentifier(it->second.method)))
    return std::nullopt;
  return classifyMemberCall(it->second, state.tracked);
}

// The map pointer a derived region names: argument d.argIndex of a call at
// d.source that dominates `user`.
Value *RegionCollector::derivedMap(CallBase *user, const DerivedRegion &d, DominatorTree &DT) {
  auto it = callsAt.find(d.source);
  if (it == callsAt.end()) return nullptr;
  for (CallBase *src : it->second) {
    unsigned idx = d.argIndex + sretShift(src);
    Function *f = directCallee(src);
    if ((src == user) != d.sourceIsUser || !f || !f->getName().contains(d.sourceMark) ||
        idx >= src->arg_size() ||
        !src->getArgOperand(idx)->getType()->isPointerTy() || (src != user && !DT.dominates(src, user)))
      continue;
    return src->getArgOperand(idx);
  }
  return nullptr;
}

// A call the classifier does not know that the AST found touching a map
// through another call: an algorithm over a map's iterators or writing
// through std::inserter, or the begin() of a view over a map in a range-for.
void RegionCollector::collectDerived(CallBase *cb, Function *callee, DominatorTree &DT, LoopInfo &LI) {
  SourcePos pos = positionOf(cb->getDebugLoc());
  auto alg = state.derivedRegions.find(pos);
  if (alg != state.derivedRegions.end()) {
    InstrumentedCall ic{cb, {}};
    for (const DerivedRegion &d : alg->second) {
      // The algorithm's own call, not another call at the same position.
      if (!callee->getName().contains(d.userMark)) continue;
      Value *map = derivedMap(cb, d, DT);
      if (!map) continue;
      ic.regions.push_back({d.kind, map,
                            site(d.kind, d.op, cb->getDebugLoc(), sites.mapTypeAt(cb->getDebugLoc(), ""),
                                 sites.mapNameAt(cb->getDebugLoc()))});
      countRegion(d.kind);
    }
    if (!ic.regions.empty()) out.calls.push_back(std::move(ic));
    return;
  }
  auto view = state.derivedIterations.find(pos);
  if (view == state.derivedIterations.end() || !ClInstrumentIterations ||
      !callee->getName().contains(view->second.userMark))
    return;
  Value *map = derivedMap(cb, view->second, DT);
  Loop *L = map ? loopOpenedBy(cb, LI) : nullptr;
  if (!L) return;
  IterationRegion it;
  it.beginCall = cb;
  it.region = {AccessKind::Iterate, map,
               site(AccessKind::Iterate, view->second.op, cb->getDebugLoc(),
                    sites.mapTypeAt(cb->getDebugLoc(), ""), sites.mapNameAt(cb->getDebugLoc()))};
  fillLoop(it, L);
  out.iterations.push_back(std::move(it));
  ++NumIterations;
}

// A call through a member pointer: one guarded region per addressed map
// member it may be. In library code (the invoke machinery) the report
// locates the access at the user's frame (MG_SITE_CALLER_LOCATION).
void RegionCollector::collectMemberPointerCall(CallBase *cb) {
  if (memberTargets.empty() || !isMemberPointerCallee(cb->getCalledOperand())) return;
  unsigned idx = sretShift(cb);
  if (idx >= cb->arg_size() || !cb->getArgOperand(idx)->getType()->isPointerTy()) return;
  Value *object = cb->getArgOperand(idx);
  InstrumentedCall ic{cb, {}};
  IRBuilder<> b(cb);
  b.SetCurrentDebugLocation(cb->getDebugLoc());
  std::string name = lifetimeOnly ? "" : sites.mapNameAt(cb->getDebugLoc());
  for (const MemberPointerTarget &t : memberTargets) {
    if (t.fn->getFunctionType() != cb->getFunctionType()) continue;
    AccessKind kind = t.c.operands.front().kind;
    unsigned flags = objectSiteFlags(t.c) | (lifetimeOnly ? kSiteCallerLocation : 0);
    Value *guard = b.CreateICmpEQ(cb->getCalledOperand(), t.fn, "mapguard.is_member");
    Value *map = b.CreateSelect(guard, object, ConstantPointerNull::get(cast<PointerType>(object->getType())));
    Region r{kind, map,
             site(kind, t.c.op + " via member pointer", cb->getDebugLoc(),
                  lifetimeOnly ? t.c.mapType : sites.mapTypeAt(cb->getDebugLoc(), t.c.mapType), name, flags)};
    r.guard = guard;
    ic.regions.push_back(r);
    countRegion(kind);
  }
  if (!ic.regions.empty()) out.calls.push_back(std::move(ic));
}

FunctionRegions RegionCollector::collect() {
  DominatorTree DT(F);
  LoopInfo LI(DT);
  if (!state.derivedRegions.empty() || !state.derivedIterations.empty())
    for (BasicBlock &BB : F)
      for (Instruction &I : BB)
        if (auto *cb = dyn_cast<CallBase>(&I))
          if (!isa<IntrinsicInst>(cb) && cb->getDebugLoc()) callsAt[positionOf(cb->getDebugLoc())].push_back(cb);
  for (BasicBlock &BB : F) {
    for (Instruction &I : BB) {
      auto *cb = dyn_cast<CallBase>(&I);
      if (!cb || isa<IntrinsicInst>(cb) || isa<CallBrInst>(cb)) continue;
      Function *callee = directCallee(cb);
      if (!callee) {
        collectMemberPointerCall(cb);
        continue;
      }
      if (!callee->hasName()) continue;
      if (callee->getName() == "__cxa_atexit") {
        collectAtExit(cb);
        continue;
      }
      std::optional<Classification> c = classifyCall(callee->getName().str(), state.tracked);
      if (!c && !lifetimeOnly) c = classifyFromAST(cb, callee);
      if (!c) {
        if (!lifetimeOnly) collectDerived(cb, callee, DT, LI);
        continue;
      }
      unsigned shift = sretShift(cb);
      InstrumentedCall ic{cb, {}};
      std::string name = sites.mapNameAt(cb->getDebugLoc());
      c->mapType = sites.mapTypeAt(cb->getDebugLoc(), c->mapType);
      for (const MapOperand &op : c->operands) {
        if (lifetimeOnly && (op.argIndex != 0 || (op.kind != AccessKind::Construct &&
                                                  op.kind != AccessKind::Destroy)))
          continue;
        unsigned idx = op.argIndex + shift;
        if (idx >= cb->arg_size() || !cb->getArgOperand(idx)->getType()->isPointerTy()) continue;
        std::string opName = c->op;
        if (op.argIndex > 0 && c->isMember) opName += " (argument)";
        unsigned flags = op.argIndex == 0 ? objectSiteFlags(*c) : 0;
        std::string mapName = op.argIndex == 0 || !c->isMember ? name : "";
        // A global's constructor runs where the AST names nothing.
        if (mapName.empty() && op.kind == AccessKind::Construct) mapName = SiteTable::globalName(cb->getArgOperand(idx));
        ic.regions.push_back({op.kind, cb->getArgOperand(idx),
                              site(op.kind, opName, cb->getDebugLoc(), c->mapType, mapName, flags)});
      }
      if (ic.regions.empty()) continue;
      if (c->isBeginCall && ClInstrumentIterations && !lifetimeOnly &&
          state.iterationBegins.count(positionOf(cb->getDebugLoc()))) {
        if (Loop *L = loopOpenedBy(cb, LI)) {
          IterationRegion it;
          it.beginCall = cb;
          Region r = ic.regions.front();
          it.region = {AccessKind::Iterate, r.map,
                       site(AccessKind::Iterate, "iteration (" + c->op + ")", cb->getDebugLoc(),
                            c->mapType, name, c->nodeBased ? kSiteNodeBased : 0)};
          fillLoop(it, L);
          out.iterations.push_back(std::move(it));
          ++NumIterations;
          continue;  // the iteration region covers the begin() call itself
        }
      }
      for (const Region &r : ic.regions) countRegion(r.kind);
      out.calls.push_back(std::move(ic));
    }
  }
  return std::move(out);
}

}  // namespace mapguard
