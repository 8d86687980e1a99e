// Instruments calls to tracked maps. Per function:
//  1. collect the calls that touch a map (MapClassifier) and, for begin()
//     calls that open a loop, the loop they open (LoopInfo);
//  2. give each region a stack slot holding the map while the region is
//     active and null otherwise, so an end call may sit on any path (loop
//     exits, landing pads, the function's cleanup pad) and is a no-op where
//     the region never began;
//  3. insert begin before each call, end after it on the normal path and on
//     the unwind path, and turn calls that may throw while a region is open
//     into invokes of a cleanup pad that ends every open region.
#include "MapguardPass.h"
#include "InlineCopies.h"
#include "LLVMCompat.h"

#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/Statistic.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Analysis/LoopInfo.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Demangle/Demangle.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/Dominators.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/InstIterator.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Linker/Linker.h"
#include "llvm/Support/MemoryBufferRef.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Path.h"
#include "llvm/Transforms/Utils/BasicBlockUtils.h"
#include "llvm/Transforms/Utils/Local.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

#define DEBUG_TYPE "mapguard"

using namespace llvm;

STATISTIC(NumReads, "Map read regions instrumented");
STATISTIC(NumWrites, "Map write regions instrumented");
STATISTIC(NumIterations, "Map iteration regions instrumented");
STATISTIC(NumLifetimes, "Map constructions and destructions instrumented");
STATISTIC(NumLifetimeOnly, "Library or tracked-class functions where only map lifetimes are recorded");
STATISTIC(NumSkippedOptOut, "Functions skipped by MAPGUARD_NO_INSTRUMENT");
STATISTIC(NumAtomics, "Atomic operations and fences instrumented for happens-before");
STATISTIC(NumSyncCalls, "Calls to catalogued synchronization classes instrumented");

static cl::opt<bool> ClInstrumentAtomics("mapguard-instrument-atomics", cl::init(true), cl::Hidden,
                                         cl::desc("Record release/acquire edges of atomics"));

static cl::opt<bool> ClRenameInlineCopies(
    "mapguard-rename-inline-copies", cl::init(true), cl::Hidden,
    cl::desc("Give instrumented inline functions names of their own (link order)"));
static cl::opt<bool> ClInstrumentIterations("mapguard-instrument-iterations", cl::init(true),
                                            cl::Hidden, cl::desc("Instrument loops over maps"));

namespace mapguard {
namespace {

// Mirrors struct mg_site in runtime/include/mapguard/interface.h.
constexpr unsigned kAbiVersion = 2;
constexpr unsigned kSiteHashtableLayout = 1;  // MG_SITE_HASHTABLE_LAYOUT
constexpr unsigned kSiteNodeBased = 2;        // MG_SITE_NODE_BASED
constexpr unsigned kSiteCallerLocation = 4;   // MG_SITE_CALLER_LOCATION

struct Runtime {
  StructType *siteTy;
  FunctionCallee readBegin, readEnd, writeBegin, writeEnd, iterBegin, iterEnd, construct,
      destroyBegin, destroyEnd;
  FunctionCallee atomicAcquire, atomicRelease, fenceAcquire, fenceRelease;
  FunctionCallee atomicRelaxedRead, atomicRelaxedWrite;
  FunctionCallee happensBefore, happensAfter, syncWaitBegin, syncWaitEnd;
  FunctionCallee atexitMap;

  explicit Runtime(Module &M) {
    LLVMContext &C = M.getContext();
    Type *ptr = PointerType::getUnqual(C);
    Type *i32 = Type::getInt32Ty(C);
    siteTy = StructType::getTypeByName(C, "struct.mg_site");
    if (!siteTy)
      siteTy = StructType::create(C, {ptr, ptr, i32, i32, ptr, ptr, ptr, i32, i32, i32, i32},
                                  "struct.mg_site");
    FunctionType *fty = FunctionType::get(Type::getVoidTy(C), {ptr, ptr}, false);
    auto decl = [&](const char *name) {
      FunctionCallee f = M.getOrInsertFunction(name, fty);
      if (auto *fn = dyn_cast<Function>(f.getCallee())) fn->addFnAttr(Attribute::NoUnwind);
      return f;
    };
    readBegin = decl("__mapguard_read_begin");
    readEnd = decl("__mapguard_read_end");
    writeBegin = decl("__mapguard_write_begin");
    writeEnd = decl("__mapguard_write_end");
    iterBegin = decl("__mapguard_iter_begin");
    iterEnd = decl("__mapguard_iter_end");
    construct = decl("__mapguard_construct");
    destroyBegin = decl("__mapguard_destroy_begin");
    destroyEnd = decl("__mapguard_destroy_end");
    auto declAddr = [&](const char *name, bool withAddress) {
      FunctionType *t = withAddress ? FunctionType::get(Type::getVoidTy(C), {ptr}, false)
                                    : FunctionType::get(Type::getVoidTy(C), false);
      FunctionCallee f = M.getOrInsertFunction(name, t);
      if (auto *fn = dyn_cast<Function>(f.getCallee())) fn->addFnAttr(Attribute::NoUnwind);
      return f;
    };
    atomicAcquire = declAddr("__mapguard_atomic_acquire", true);
    atomicRelease = declAddr("__mapguard_atomic_release", true);
    fenceAcquire = declAddr("__mapguard_fence_acquire", false);
    fenceRelease = declAddr("__mapguard_fence_release", false);
    atomicRelaxedRead = declAddr("__mapguard_atomic_relaxed_read", true);
    atomicRelaxedWrite = declAddr("__mapguard_atomic_relaxed_write", true);
    happensBefore = declAddr("__mapguard_happens_before", true);
    happensAfter = declAddr("__mapguard_happens_after", true);
    syncWaitBegin = M.getOrInsertFunction("__mapguard_sync_wait_begin",
                                          FunctionType::get(ptr, {ptr, i32}, false));
    syncWaitEnd = M.getOrInsertFunction("__mapguard_sync_wait_end",
                                        FunctionType::get(Type::getVoidTy(C), {ptr, i32}, false));
    for (FunctionCallee f : {syncWaitBegin, syncWaitEnd})
      if (auto *fn = dyn_cast<Function>(f.getCallee())) fn->addFnAttr(Attribute::NoUnwind);
    atexitMap = M.getOrInsertFunction(
        "__mapguard_atexit_map", FunctionType::get(i32, {ptr, ptr, ptr, ptr}, false));
  }
  FunctionCallee begin(AccessKind k) const {
    switch (k) {
      case AccessKind::Read: return readBegin;
      case AccessKind::Write: return writeBegin;
      case AccessKind::Iterate: return iterBegin;
      case AccessKind::Destroy: return destroyBegin;
      case AccessKind::Construct: return construct;
    }
    llvm_unreachable("bad access kind");
  }
  FunctionCallee end(AccessKind k) const {
    switch (k) {
      case AccessKind::Read: return readEnd;
      case AccessKind::Write: return writeEnd;
      case AccessKind::Iterate: return iterEnd;
      case AccessKind::Destroy: return destroyEnd;
      case AccessKind::Construct: return construct;
    }
    llvm_unreachable("bad access kind");
  }
};

SourcePos positionOf(const DebugLoc &dl) {
  SourcePos p;
  if (DILocation *loc = dl.get()) {
    p.file = sys::path::filename(loc->getFilename()).str();
    p.line = loc->getLine();
    p.column = loc->getColumn();
  }
  return p;
}

std::string fullFileName(const DebugLoc &dl) {
  DILocation *loc = dl.get();
  if (!loc) return "";
  StringRef file = loc->getFilename();
  if (sys::path::is_absolute(file) || loc->getDirectory().empty()) return file.str();
  SmallString<256> full(loc->getDirectory());
  sys::path::append(full, file);
  return std::string(full);
}

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

// One map touched by one call.
struct Region {
  AccessKind kind;
  Value *map;  // null at run time when `guard` is false: ends ignore a null map
  Constant *site;
  AllocaInst *slot = nullptr;  // set when an end may run on an unwind path
  Value *guard = nullptr;      // begins only where this i1 is true (a member pointer's target)
};

// A map member whose address the module takes (&std::map<K, V>::size): a
// call through a member pointer may reach it, from user code or from the
// library's invoke machinery (std::invoke, std::bind, std::function,
// std::mem_fn all end in `(obj.*pm)(args...)`).
struct MemberPointerTarget {
  Function *fn;
  Classification c;
};

// The addressed map members of `M`. A call through a member pointer then
// compares the pointer with each (of the call's function type), and opens
// that member's region where one matches: exact, and free in modules that
// take no map member's address.
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

// A call with the regions it opens.
struct InstrumentedCall {
  CallBase *call;
  std::vector<Region> regions;
};

// A begin() call that opens a loop: one iteration region up to the loop's exits.
struct IterationRegion {
  CallBase *beginCall;
  Region region;
  SmallVector<BasicBlock *, 8> exits;
  SmallVector<CallInst *, 16> mayThrowInBody;  // calls that may leave the loop by unwinding
  SmallVector<IntrinsicInst *, 2> suspends;     // co_await inside the loop (llvm.coro.suspend)
};

class FunctionInstrumenter {
 public:
  FunctionInstrumenter(Function &F, const Runtime &rt, TUState &state,
                       StringMap<Constant *> &strings, std::map<std::string, Constant *> &sites,
                       const std::vector<MemberPointerTarget> &memberTargets, bool lifetimeOnly)
      : F(F), rt(rt), state(state), strings(strings), sites(sites), memberTargets(memberTargets),
        lifetimeOnly(lifetimeOnly) {}

  bool run() {
    collect();
    for (auto &[cb, siteVar] : atexits) {
      // __cxa_atexit(dtor, map, dso) -> __mapguard_atexit_map(dtor, map, dso, site):
      // the runtime registers the destructor wrapped in a destroy region.
      IRBuilder<> b(cb);
      CallInst *wrapped = b.CreateCall(rt.atexitMap, {cb->getArgOperand(0), cb->getArgOperand(1),
                                                      cb->getArgOperand(2), siteVar});
      wrapped->setDebugLoc(cb->getDebugLoc());
      cb->replaceAllUsesWith(wrapped);
      cb->eraseFromParent();
      ++NumLifetimes;
    }
    if (calls.empty() && iterations.empty()) return !atexits.empty();
    for (IterationRegion &it : iterations) instrumentIteration(it);
    for (InstrumentedCall &ic : calls) instrumentCall(ic);
    finish();
    return true;
  }

 private:
  Function &F;
  const Runtime &rt;
  TUState &state;
  StringMap<Constant *> &strings;
  std::map<std::string, Constant *> &sites;
  const std::vector<MemberPointerTarget> &memberTargets;
  // Library and tracked-class implementation code: only constructions and
  // destructions of maps are recorded there (make_unique, vector<map>...),
  // so a map built at a reused address starts with a clean history.
  bool lifetimeOnly;
  std::vector<InstrumentedCall> calls;
  std::vector<IterationRegion> iterations;
  std::vector<Region> cleanupRegions;  // ended by the function's cleanup pad
  // Destructors of static-storage maps registered with __cxa_atexit: at exit
  // they destroy the map, a write like any other.
  std::vector<std::pair<CallInst *, Constant *>> atexits;
  BasicBlock *cleanupPad = nullptr;
  std::string functionName;

  bool functionMayUnwind() const { return !F.doesNotThrow(); }

  Constant *string(StringRef s) {
    auto it = strings.find(s);
    if (it != strings.end()) return it->second;
    Module &M = *F.getParent();
    Constant *init = ConstantDataArray::getString(M.getContext(), s);
    auto *gv = new GlobalVariable(M, init->getType(), true, GlobalValue::PrivateLinkage, init,
                                  ".mapguard.str");
    gv->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
    gv->setAlignment(Align(1));
    strings[s] = gv;
    return gv;
  }

  Constant *site(AccessKind kind, StringRef op, const DebugLoc &dl, const std::string &mapType,
                 const std::string &mapName, unsigned flags = 0) {
    if (functionName.empty()) functionName = prettyFunctionName(demangle(F.getName().str()));
    SourcePos pos = positionOf(dl);
    std::string file = fullFileName(dl);
    std::string key = std::to_string(int(kind)) + "|" + op.str() + "|" + file + "|" +
                      std::to_string(pos.line) + ":" + std::to_string(pos.column) + "|" +
                      functionName + "|" + mapType + "|" + mapName + "|" + std::to_string(flags);
    auto found = sites.find(key);
    if (found != sites.end()) return found->second;
    LLVMContext &C = F.getContext();
    Type *i32 = Type::getInt32Ty(C);
    Constant *init = ConstantStruct::get(
        rt.siteTy, {string(op), string(file), ConstantInt::get(i32, pos.line),
                    ConstantInt::get(i32, pos.column), string(functionName), string(mapType),
                    string(mapName), ConstantInt::get(i32, unsigned(kind)),
                    ConstantInt::get(i32, kAbiVersion), ConstantInt::get(i32, flags),
                    ConstantInt::get(i32, 0)});
    auto *gv = new GlobalVariable(*F.getParent(), rt.siteTy, true, GlobalValue::PrivateLinkage,
                                  init, ".mapguard.site");
    sites[key] = gv;
    return gv;
  }

  std::string mapTypeAt(const DebugLoc &dl, const std::string &fallback) {
    auto it = state.mapTypes.find(positionOf(dl));
    return it == state.mapTypes.end() || it->second.empty() ? fallback : it->second;
  }

  std::string mapNameAt(const DebugLoc &dl) {
    auto it = state.mapNames.find(positionOf(dl));
    return it == state.mapNames.end() ? "" : it->second;
  }

  static Function *directCallee(CallBase *cb) {
    return dyn_cast<Function>(cb->getCalledOperand()->stripPointerCasts());
  }

  // A map that is a global variable is named by it ("registry", "ns::table").
  static std::string globalName(Value *map) {
    auto *gv = dyn_cast<GlobalVariable>(map->stripPointerCasts());
    if (!gv) return "";
    std::string name = demangle(gv->getName().str());
    for (size_t tag; (tag = name.find("[abi:")) != std::string::npos;) {  // g[abi:cxx11]
      size_t close = name.find(']', tag);
      if (close == std::string::npos) break;
      name.erase(tag, close - tag + 1);
    }
    return name;
  }

  void collectAtExit(CallBase *cb) {
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
    std::string name = globalName(ci->getArgOperand(1));
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
    atexits.push_back({ci, site(AccessKind::Destroy, "destructor (at exit)", dl,
                                mapTypeAt(dl, c->mapType), name)});
  }

  // A callee the demangler cannot read (libc++'s constrained member templates,
  // std::map::insert_range): the AST's view of the member call at this
  // position, if it names the same member.
  std::optional<Classification> classifyFromAST(CallBase *cb, Function *callee) {
    auto it = state.memberCalls.find(positionOf(cb->getDebugLoc()));
    if (it == state.memberCalls.end() || canDemangle(callee->getName().str()) ||
        !callee->getName().contains(mangledIdentifier(it->second.method)))
      return std::nullopt;
    return classifyMemberCall(it->second, state.tracked);
  }

  // Calls by source position, for the AST's derived regions (TUState).
  std::map<SourcePos, SmallVector<CallBase *, 2>> callsAt;

  static unsigned sretShift(CallBase *cb) {
    return cb->arg_size() > 0 && cb->paramHasAttr(0, Attribute::StructRet) ? 1 : 0;
  }

  // The map pointer a derived region names: argument d.argIndex of a call at
  // d.source that dominates `user`.
  Value *derivedMap(CallBase *user, const DerivedRegion &d, DominatorTree &DT) {
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
  void collectDerived(CallBase *cb, Function *callee, DominatorTree &DT, LoopInfo &LI) {
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
                              site(d.kind, d.op, cb->getDebugLoc(), mapTypeAt(cb->getDebugLoc(), ""),
                                   mapNameAt(cb->getDebugLoc()))});
        countRegion(d.kind);
      }
      if (!ic.regions.empty()) calls.push_back(std::move(ic));
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
                      mapTypeAt(cb->getDebugLoc(), ""), mapNameAt(cb->getDebugLoc()))};
    fillLoop(it, L);
    iterations.push_back(std::move(it));
    ++NumIterations;
  }

  static void fillLoop(IterationRegion &it, Loop *L) {
    L->getExitBlocks(it.exits);
    for (BasicBlock *body : L->blocks())
      for (Instruction &bi : *body) {
        if (auto *ii = dyn_cast<IntrinsicInst>(&bi))
          if (ii->getIntrinsicID() == Intrinsic::coro_suspend) it.suspends.push_back(ii);
        if (auto *ci = dyn_cast<CallInst>(&bi))
          if (!ci->doesNotThrow() && !isa<IntrinsicInst>(ci)) it.mayThrowInBody.push_back(ci);
      }
  }

  // A call through a member pointer: one guarded region per addressed map
  // member it may be. In library code (the invoke machinery) the report
  // locates the access at the user's frame (MG_SITE_CALLER_LOCATION).
  void collectMemberPointerCall(CallBase *cb) {
    if (memberTargets.empty() || !isMemberPointerCallee(cb->getCalledOperand())) return;
    unsigned idx = sretShift(cb);
    if (idx >= cb->arg_size() || !cb->getArgOperand(idx)->getType()->isPointerTy()) return;
    Value *object = cb->getArgOperand(idx);
    InstrumentedCall ic{cb, {}};
    IRBuilder<> b(cb);
    b.SetCurrentDebugLocation(cb->getDebugLoc());
    std::string name = lifetimeOnly ? "" : mapNameAt(cb->getDebugLoc());
    for (const MemberPointerTarget &t : memberTargets) {
      if (t.fn->getFunctionType() != cb->getFunctionType()) continue;
      AccessKind kind = t.c.operands.front().kind;
      unsigned flags = objectSiteFlags(t.c) | (lifetimeOnly ? kSiteCallerLocation : 0);
      Value *guard = b.CreateICmpEQ(cb->getCalledOperand(), t.fn, "mapguard.is_member");
      Value *map = b.CreateSelect(guard, object, ConstantPointerNull::get(cast<PointerType>(object->getType())));
      Region r{kind, map,
               site(kind, t.c.op + " via member pointer", cb->getDebugLoc(),
                    lifetimeOnly ? t.c.mapType : mapTypeAt(cb->getDebugLoc(), t.c.mapType), name, flags)};
      r.guard = guard;
      ic.regions.push_back(r);
      countRegion(kind);
    }
    if (!ic.regions.empty()) calls.push_back(std::move(ic));
  }

  void collect() {
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
        std::string name = mapNameAt(cb->getDebugLoc());
        c->mapType = mapTypeAt(cb->getDebugLoc(), c->mapType);
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
          if (mapName.empty() && op.kind == AccessKind::Construct) mapName = globalName(cb->getArgOperand(idx));
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
            iterations.push_back(std::move(it));
            ++NumIterations;
            continue;  // the iteration region covers the begin() call itself
          }
        }
        for (const Region &r : ic.regions) countRegion(r.kind);
        calls.push_back(std::move(ic));
      }
    }
  }

  // The loop whose preheader chain starts at `cb`: follow unconditional
  // branches and invoke normal edges until a loop header not containing cb.
  static Loop *loopOpenedBy(CallBase *cb, LoopInfo &LI) {
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

  AllocaInst *newSlot() {
    BasicBlock &entry = F.getEntryBlock();
    IRBuilder<> b(&entry, entry.getFirstInsertionPt());
    auto *ptrTy = PointerType::getUnqual(F.getContext());
    AllocaInst *slot = b.CreateAlloca(ptrTy, nullptr, "mapguard.region");
    b.CreateStore(ConstantPointerNull::get(ptrTy), slot);
    return slot;
  }

  // Ends `r` if it is active (slot non-null) and marks it ended.
  void emitEndFromSlot(IRBuilder<> &b, const Region &r) {
    auto *ptrTy = PointerType::getUnqual(F.getContext());
    Value *m = b.CreateLoad(ptrTy, r.slot);
    b.CreateCall(rt.end(r.kind), {m, r.site});
    b.CreateStore(ConstantPointerNull::get(ptrTy), r.slot);
  }

  BasicBlock *getCleanupPad() {
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

  // Calls that may throw while a region is open; turned into invokes of the
  // cleanup pad last, after every other change, because the conversion
  // replaces the call instruction.
  SetVector<CallInst *> toConvert;

  void routeThroughCleanup(CallInst *ci) {
    if (functionMayUnwind() && !ci->doesNotThrow()) toConvert.insert(ci);
  }

  void addToCleanup(const Region &r) {
    if (!functionMayUnwind()) return;
    getCleanupPad();
    IRBuilder<> b(cleanupPad->getTerminator());
    b.SetCurrentDebugLocation(cleanupPad->getTerminator()->getDebugLoc());
    emitEndFromSlot(b, r);
  }

  void emitEnds(IRBuilder<> &b, std::vector<Region> &regions) {
    auto *ptrTy = PointerType::getUnqual(F.getContext());
    for (auto r = regions.rbegin(); r != regions.rend(); ++r) {
      b.CreateCall(rt.end(r->kind), {r->map, r->site});
      if (r->slot) b.CreateStore(ConstantPointerNull::get(ptrTy), r->slot);
    }
  }

  // The begin call of `r` just before `at`; under `r.guard` when it has one
  // (the block is split, `at` moves to the tail).
  void emitBegin(Instruction *at, const Region &r) {
    Instruction *before = at;
    if (r.guard) before = SplitBlockAndInsertIfThen(r.guard, at, false);
    IRBuilder<> b(before);
    b.SetCurrentDebugLocation(at->getDebugLoc());
    b.CreateCall(rt.begin(r.kind), {r.map, r.site});
  }

  void instrumentCall(InstrumentedCall &ic) {
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

  void instrumentIteration(IterationRegion &it) {
    Region &r = it.region;
    r.slot = newSlot();
    {
      IRBuilder<> b(it.beginCall);
      b.SetCurrentDebugLocation(it.beginCall->getDebugLoc());
      b.CreateCall(rt.iterBegin, {r.map, r.site});
      b.CreateStore(r.map, r.slot);
    }
    for (BasicBlock *exit : it.exits) {
      IRBuilder<> b(exit, exit->getFirstInsertionPt());
      b.SetCurrentDebugLocation(it.beginCall->getDebugLoc());
      emitEndFromSlot(b, r);
    }
    for (IntrinsicInst *suspend : it.suspends) splitAtSuspend(r, suspend);
    addToCleanup(r);
    for (CallInst *ci : it.mayThrowInBody) routeThroughCleanup(ci);
    if (auto *ci = dyn_cast<CallInst>(it.beginCall)) routeThroughCleanup(ci);
  }

  // A co_await inside the loop: the coroutine may be resumed on another
  // thread, so the iteration ends before the suspension (before coro.save:
  // await_suspend may already hand the coroutine over) and begins again on
  // the resume edge, on whichever thread resumes it.
  void splitAtSuspend(const Region &r, IntrinsicInst *suspend) {
    auto *ptrTy = PointerType::getUnqual(F.getContext());
    Instruction *before = suspend;
    if (auto *save = dyn_cast<IntrinsicInst>(suspend->getArgOperand(0)))
      if (save->getIntrinsicID() == Intrinsic::coro_save) before = save;
    IRBuilder<> b(before);
    b.SetCurrentDebugLocation(suspend->getDebugLoc());
    b.CreateCall(rt.end(r.kind), {b.CreateLoad(ptrTy, r.slot), r.site});
    for (User *u : suspend->users()) {
      auto *sw = dyn_cast<SwitchInst>(u);
      if (!sw || sw->getCondition() != suspend) continue;
      auto resumeCase = sw->findCaseValue(ConstantInt::get(Type::getInt8Ty(F.getContext()), 0));
      if (resumeCase == sw->case_default()) continue;
      BasicBlock *resume = SplitEdge(sw->getParent(), resumeCase->getCaseSuccessor());
      IRBuilder<> rb(resume, resume->getFirstInsertionPt());
      rb.SetCurrentDebugLocation(suspend->getDebugLoc());
      rb.CreateCall(rt.begin(AccessKind::Iterate), {rb.CreateLoad(ptrTy, r.slot), r.site});
    }
  }

 public:
  void finish() {
    for (CallInst *ci : toConvert) changeToInvokeAndSplitBasicBlock(ci, getCleanupPad());
  }
};

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
  for (const SyncCall &sc : calls) {
    CallBase *cb = sc.call;
    Value *lock = cb->getArgOperand(sc.member.argIndex);
    SyncRole role = sc.member.role;
    bool before = role == SyncRole::Unlock || role == SyncRole::SharedUnlock ||
                  role == SyncRole::Wait || role == SyncRole::Release;
    bool after = !before || role == SyncRole::Wait;
    bool onlyIfTrue = role == SyncRole::TryLock || role == SyncRole::SharedTryLock;
    // A wait on an object that is not held after it (absl::Barrier::Block,
    // Notification::WaitForNotification) pins the object's clock for the
    // call: another thread may free the object as soon as this one is out
    // of the library, before the acquire after the call (mg_hb.h, PinSync).
    // A lock is held after its call, so no one else may free it then. An
    // exception out of the call keeps the pin: the clock then keeps what a
    // free would have emptied, an edge too many at worst.
    bool pinned = role == SyncRole::Wait || role == SyncRole::Acquire;
    Value *pin = nullptr;
    if (pinned) {
      auto *c = IRBuilder<>(cb).CreateCall(
          rt.syncWaitBegin,
          {lock, ConstantInt::get(Type::getInt32Ty(F.getContext()), before ? 1 : 0)});
      c->setDebugLoc(cb->getDebugLoc());
      pin = c;
    } else if (before) {
      IRBuilder<>(cb).CreateCall(rt.happensBefore, {lock})->setDebugLoc(cb->getDebugLoc());
    }
    if (!after) continue;
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
  NumSyncCalls += calls.size();
  return !calls.empty();
}

// A task body a prebuilt scheduler runs (an `entry` line): everything the
// spawning thread did before handing the task over happens before it.
bool instrumentEntryAcquire(Function &F, const Runtime &rt, const TrackedClasses &tracked) {
  if (F.arg_empty() || !F.getArg(0)->getType()->isPointerTy() ||
      !isEntryAcquireFunction(F.getName().str(), tracked))
    return false;
  BasicBlock &entry = F.getEntryBlock();
  IRBuilder<> b(&*entry.getFirstInsertionPt());
  CallInst *call = b.CreateCall(rt.happensAfter, {F.getArg(0)});
  if (DISubprogram *sp = F.getSubprogram())
    call->setDebugLoc(DILocation::get(F.getContext(), sp->getLine(), 0, sp));
  ++NumSyncCalls;
  return true;
}

std::set<Function *> optedOutFunctions(Module &M) {
  std::set<Function *> out;
  GlobalVariable *annotations = M.getGlobalVariable("llvm.global.annotations");
  if (!annotations || !annotations->hasInitializer()) return out;
  auto *array = dyn_cast<ConstantArray>(annotations->getInitializer());
  if (!array) return out;
  for (Value *op : array->operands()) {
    auto *entry = dyn_cast<ConstantStruct>(op);
    if (!entry || entry->getNumOperands() < 2) continue;
    auto *fn = dyn_cast<Function>(entry->getOperand(0)->stripPointerCasts());
    auto *strVar = dyn_cast<GlobalVariable>(entry->getOperand(1)->stripPointerCasts());
    if (!fn || !strVar || !strVar->hasInitializer()) continue;
    auto *str = dyn_cast<ConstantDataArray>(strVar->getInitializer());
    if (str && str->isCString() && str->getAsCString() == "mapguard.no_instrument") out.insert(fn);
  }
  return out;
}

// The runtime entry points whose owned fast path (runtime/mg_fast_path.h)
// the bitcode defines under another name.
constexpr const char *kInlinedEntries[][2] = {
    {"__mapguard_read_begin", "__mapguard_inline_read_begin"},
    {"__mapguard_read_end", "__mapguard_inline_read_end"},
    {"__mapguard_write_begin", "__mapguard_inline_write_begin"},
    {"__mapguard_write_end", "__mapguard_inline_write_end"},
};

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
  for (const auto &entry : kInlinedEntries) {
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
constexpr const char kRuntimeLinkSymbol[] =
    "__mapguard_needs_libmapguard_rt__link_with_pkg_config_libs_mapguard";

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

}  // namespace

// Reports show the stack of an earlier access, and of a thread caught inside
// a map operation, by a frame-pointer walk (runtime/mg_stack.cpp): every
// function the plugin compiles keeps its frame pointer, as
// -fno-omit-frame-pointer would. Set on the IR, not in CodeGenOptions: clang
// 16's code generator copies its options before a plugin's AST action runs,
// so a change there is not seen (its functions came out without one).
static bool keepFramePointers(Module &M) {
  bool changed = false;
  for (Function &F : M) {
    if (F.isDeclaration() || F.getFnAttribute("frame-pointer").getValueAsString() == "all")
      continue;
    F.addFnAttr("frame-pointer", "all");
    changed = true;
  }
  if (M.getFramePointer() != FramePointerKind::All) {
    M.setFramePointer(FramePointerKind::All);  // for functions made later (module constructors)
    changed = true;
  }
  return changed;
}

PreservedAnalyses MapguardPass::run(Module &M, ModuleAnalysisManager &) {
  bool framesKept = keepFramePointers(M);  // before the fast path's functions join
  Runtime rt(M);
  StringMap<Constant *> strings;
  std::map<std::string, Constant *> sites;
  std::set<Function *> optedOut = optedOutFunctions(M);
  bool changed = false;
  std::vector<MemberPointerTarget> memberTargets = memberPointerTargets(M, state_->tracked);
  std::vector<Function *> functions;
  for (Function &F : M) functions.push_back(&F);
  std::set<Function *> instrumented;
  for (Function *F : functions) {
    if (F->isDeclaration() || compat::startsWith(F->getName(), "__mapguard")) continue;
    if (optedOut.count(F)) {
      ++NumSkippedOptOut;
      continue;
    }
    bool touched = false;
    if (ClInstrumentAtomics) touched |= instrumentAtomics(*F, rt);
    touched |= instrumentSyncCalls(*F, rt, state_->tracked);
    touched |= instrumentEntryAcquire(*F, rt, state_->tracked);
    bool implementation = isImplementationFunction(F->getName().str(), state_->tracked);
    if (implementation) ++NumLifetimeOnly;
    touched |= FunctionInstrumenter(*F, rt, *state_, strings, sites, memberTargets, implementation).run();
    if (touched) instrumented.insert(F);
    changed |= touched;
  }
  if (ClRenameInlineCopies) changed |= renameInstrumentedInlineCopies(M, instrumented);
  if (changed) addLinkCheck(M);
  if (changed && optimizing_ && state_->fastPathBitcode)
    linkFastPath(M, *state_->fastPathBitcode, state_->fastPathFile);
  if (state_->verifyIR) {
    std::string problems;
    raw_string_ostream os(problems);
    if (verifyModule(M, &os))
      report_fatal_error(Twine("mapguard: instrumented module '") + M.getName() +
                         "' fails the LLVM verifier:\n" + os.str());
  }
  return changed || framesKept ? PreservedAnalyses::none() : PreservedAnalyses::all();
}

}  // namespace mapguard
