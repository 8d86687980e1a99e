#include "RuntimeCalls.h"

#include "llvm/IR/Constants.h"

using namespace llvm;

namespace mapguard {

Runtime::Runtime(Module &M) {
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

FunctionCallee Runtime::begin(AccessKind k) const {
  switch (k) {
    case AccessKind::Read: return readBegin;
    case AccessKind::Write: return writeBegin;
    case AccessKind::Iterate: return iterBegin;
    case AccessKind::Destroy: return destroyBegin;
    case AccessKind::Construct: return construct;
  }
  llvm_unreachable("bad access kind");
}

FunctionCallee Runtime::end(AccessKind k) const {
  switch (k) {
    case AccessKind::Read: return readEnd;
    case AccessKind::Write: return writeEnd;
    case AccessKind::Iterate: return iterEnd;
    case AccessKind::Destroy: return destroyEnd;
    case AccessKind::Construct: return construct;
  }
  llvm_unreachable("bad access kind");
}

}  // namespace mapguard
