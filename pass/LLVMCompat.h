// Everything that differs between the LLVM/clang versions mapguard builds
// against (16 to 22, chosen by MAPGUARD_LLVM_VERSION), in one place: the
// plugin's code calls these, never a version check of its own.
#ifndef MAPGUARD_LLVM_COMPAT_H
#define MAPGUARD_LLVM_COMPAT_H

#include "clang/AST/ASTContext.h"
#include "clang/AST/DeclCXX.h"
#include "llvm/Config/llvm-config.h"

namespace mapguard::compat {

// The canonical type of a class. clang 22 deleted TypeDecl::getTypeForDecl()
// (and ASTContext::getRecordType for tag declarations) when it reworked tag
// types; getCanonicalTagType is its replacement.
inline clang::QualType canonicalRecordType(const clang::ASTContext &ctx,
                                           const clang::CXXRecordDecl *record) {
#if LLVM_VERSION_MAJOR >= 22
  return ctx.getCanonicalTagType(record);
#else
  return clang::QualType(record->getTypeForDecl(), 0).getCanonicalType();
#endif
}

}  // namespace mapguard::compat

#endif
