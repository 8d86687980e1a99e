#include "SiteTable.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Demangle/Demangle.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace mapguard {

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

Constant *SiteTable::string(StringRef s) {
  auto it = strings.find(s);
  if (it != strings.end()) return it->second;
  Constant *init = ConstantDataArray::getString(M.getContext(), s);
  auto *gv = new GlobalVariable(M, init->getType(), true, GlobalValue::PrivateLinkage, init,
                                ".mapguard.str");
  gv->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
  gv->setAlignment(Align(1));
  strings[s] = gv;
  return gv;
}

Constant *SiteTable::site(Function &F, AccessKind kind, StringRef op, const DebugLoc &dl,
                          const std::string &mapType, const std::string &mapName, unsigned flags) {
  if (namedFunction != &F) {
    functionName = prettyFunctionName(demangle(F.getName().str()));
    namedFunction = &F;
  }
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
  auto *gv = new GlobalVariable(M, rt.siteTy, true, GlobalValue::PrivateLinkage,
                                init, ".mapguard.site");
  sites[key] = gv;
  return gv;
}

std::string SiteTable::mapTypeAt(const DebugLoc &dl, const std::string &fallback) const {
  auto it = state.mapTypes.find(positionOf(dl));
  return it == state.mapTypes.end() || it->second.empty() ? fallback : it->second;
}

std::string SiteTable::mapNameAt(const DebugLoc &dl) const {
  auto it = state.mapNames.find(positionOf(dl));
  return it == state.mapNames.end() ? "" : it->second;
}

std::string SiteTable::globalName(Value *map) {
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

}  // namespace mapguard
