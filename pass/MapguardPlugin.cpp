// The clang side of mapguard, and the one entry point of the plugin.
//
// `-fplugin=mapguard.so` loads this file's PluginASTAction. It runs before
// code generation (AddBeforeMainAction), walks the AST for what IR cannot
// see (annotated classes, loops over maps, the names maps have in the source)
// and registers MapguardPass at the pipeline-start extension point, which runs
// at -O0 too and, at -O2, before inlining hides the calls to map members.
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <memory>

#include "InlineCopies.h"
#include "MapguardPass.h"
#include "TUState.h"
#include "clang/AST/ASTConsumer.h"
#include "clang/AST/Attr.h"
#include "clang/AST/ExprCXX.h"
#include "clang/AST/RecursiveASTVisitor.h"
#include "clang/AST/StmtCXX.h"
#include "clang/Basic/CodeGenOptions.h"
#include "clang/Basic/DiagnosticFrontend.h"
#include "clang/Frontend/CompilerInstance.h"
#include "clang/Frontend/FrontendPluginRegistry.h"
#include "clang/Lex/Lexer.h"
#include "clang/Lex/Preprocessor.h"
#include "llvm/Config/llvm-config.h"
#include "LLVMCompat.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/Path.h"

namespace mapguard {
#define MG_STR2(x) #x
#define MG_STR(x) MG_STR2(x)
// The fast path's bitcode, built by this plugin's clang (runtime/CMakeLists.txt).
static const char kFastPathName[] = "mapguard_fast_path.clang" MG_STR(LLVM_VERSION_MAJOR) ".bc";

namespace {

std::string normalized(const std::string &qualified) { return normalizeClassName(qualified); }

std::optional<MemberOverride> memberOverride(const clang::Decl *d) {
  for (const auto *a : d->specific_attrs<clang::AnnotateAttr>()) {
    llvm::StringRef s = a->getAnnotation();
    if (s == "mapguard.read") return MemberOverride::Read;
    if (s == "mapguard.write") return MemberOverride::Write;
    if (s == "mapguard.ignore") return MemberOverride::Ignore;
  }
  return std::nullopt;
}

bool hasAnnotation(const clang::Decl *d, llvm::StringRef what) {
  for (const auto *a : d->specific_attrs<clang::AnnotateAttr>())
    if (a->getAnnotation() == what) return true;
  return false;
}

class Collector : public clang::RecursiveASTVisitor<Collector> {
 public:
  Collector(clang::ASTContext &ctx, TUState &state) : ctx_(ctx), sm_(ctx.getSourceManager()), state_(state) {}

  bool shouldVisitTemplateInstantiations() const { return true; }

  bool VisitNamespaceDecl(clang::NamespaceDecl *ns) {
    if (ns->isInline() && ns->getIdentifier()) state_.tracked.inlineNamespaces.insert(ns->getName().str());
    return true;
  }

  bool VisitCXXRecordDecl(clang::CXXRecordDecl *rd) {
    if (!hasAnnotation(rd, "mapguard.map")) return true;
    std::string name = nameOf(rd);
    state_.tracked.names.insert(name);
    if (!rd->hasDefinition()) return true;
    for (const clang::CXXMethodDecl *m : rd->methods()) {
      std::string key = name + "::" + m->getNameAsString();
      if (m->isStatic()) {
        state_.tracked.members[key] = MemberOverride::Ignore;
      } else if (auto o = memberOverride(m)) {
        state_.tracked.members[key] = *o;
      }
    }
    // Member templates carry their annotations on the templated declaration.
    for (const clang::Decl *d : rd->decls())
      if (const auto *ft = llvm::dyn_cast<clang::FunctionTemplateDecl>(d))
        if (auto o = memberOverride(ft->getTemplatedDecl()))
          state_.tracked.members[name + "::" + ft->getNameAsString()] = *o;
    return true;
  }

  bool VisitCXXForRangeStmt(clang::CXXForRangeStmt *s) {
    if (sm_.isInSystemHeader(s->getColonLoc())) return true;
    // clang gives the implicit begin()/end() calls the colon's location.
    if (auto pos = positionOf(s->getColonLoc())) {
      state_.iterationBegins.insert(*pos);
      const clang::Expr *range = s->getRangeInit();
      if (!range) return true;
      if (isTrackedType(range->IgnoreParenImpCasts()->getType())) {
        recordName(*pos, range);
        return true;
      }
      // A view over a map (m | std::views::keys, std::views::values(m),
      // std::ranges::subrange(m)...): the loop iterates the map.
      const clang::Expr *map = nullptr;
      if (const clang::CallExpr *adaptor = callTakingMap(range, &map)) {
        unsigned index = 0;
        for (unsigned i = 0; i < adaptor->getNumArgs(); i++)
          if (adaptor->getArg(i)->IgnoreParenImpCasts() == map) index = i;
        if (auto source = positionOf(adaptor->getExprLoc())) {
          state_.derivedIterations[*pos] = {AccessKind::Iterate, "iteration (view)", mangledIdentifier("begin"),
                                            mangledIdentifier("ranges"), *source, index};
          recordName(*pos, map);
        }
      }
    }
    return true;
  }

  bool VisitForStmt(clang::ForStmt *s) {
    if (sm_.isInSystemHeader(s->getForLoc())) return true;
    if (s->getInit()) findBeginCalls(s->getInit());
    return true;
  }

  bool VisitCXXMemberCallExpr(clang::CXXMemberCallExpr *call) {
    if (call->isTypeDependent() || sm_.isInSystemHeader(call->getExprLoc())) return true;
    // The object as written: a call to a base's member converts it to the
    // base first (an implicit derived-to-base cast).
    if (const clang::Expr *obj = call->getImplicitObjectArgument())
      if (obj = obj->IgnoreParenImpCasts(); isTrackedType(obj->getType())) {
        trackDeclaringBase(obj->getType(), call->getMethodDecl());
        if (auto pos = positionOf(call->getExprLoc())) {
          recordName(*pos, obj);
          recordMemberCall(*pos, call->getMethodDecl());
        }
      }
    return true;
  }

  // Free functions such as std::erase_if(map, pred) and std::swap(a, b).
  bool VisitCallExpr(clang::CallExpr *call) {
    if (llvm::isa<clang::CXXMemberCallExpr>(call) || llvm::isa<clang::CXXOperatorCallExpr>(call))
      return true;
    if (call->isTypeDependent() || sm_.isInSystemHeader(call->getExprLoc())) return true;
    for (const clang::Expr *arg : call->arguments())
      if (isTrackedType(arg->getType())) {
        if (auto pos = positionOf(call->getExprLoc())) recordName(*pos, arg);
        break;
      }
    noteAlgorithm(call);
    return true;
  }

  // A standard algorithm given iterators from a map (std::find_if(m.begin(),
  // m.end(), p), std::accumulate, std::copy...) iterates the map for the
  // call's duration; one given std::inserter(m, it) writes it.
  void noteAlgorithm(const clang::CallExpr *call) {
    const clang::FunctionDecl *fd = call->getDirectCallee();
    if (!fd || !fd->isInStdNamespace() || !fd->getIdentifier()) return;
    llvm::StringRef name = fd->getName();
    static const char *const kNotAlgorithms[] = {"move", "forward", "make_pair", "make_tuple", "tie",
                                                 "swap", "addressof", "ref", "cref", "get",
                                                 "exchange", "inserter", "as_const"};
    for (const char *n : kNotAlgorithms)
      if (name == n) return;
    auto pos = positionOf(call->getExprLoc());
    if (!pos) return;
    if ((name == "invoke" || name == "invoke_r") && noteInvoke(call, *pos)) return;
    std::set<const clang::ValueDecl *> seen;  // one region per map variable
    for (const clang::Expr *arg : call->arguments()) {
      const clang::Expr *e = arg->IgnoreImplicit();
      if (const auto *ctor = llvm::dyn_cast<clang::CXXConstructExpr>(e))
        if (ctor->getNumArgs() == 1) e = ctor->getArg(0)->IgnoreImplicit();
      if (const auto *mc = llvm::dyn_cast<clang::CXXMemberCallExpr>(e)) {
        const clang::CXXMethodDecl *m = mc->getMethodDecl();
        const clang::Expr *obj = mc->getImplicitObjectArgument();
        if (!m || !obj || !isTrackedType(obj->IgnoreParenImpCasts()->getType())) continue;
        llvm::StringRef n = m->getName();
        if (n != "begin" && n != "cbegin" && n != "rbegin" && n != "crbegin") continue;
        if (!seen.insert(referencedDecl(obj)).second && referencedDecl(obj)) continue;
        if (auto source = positionOf(mc->getExprLoc())) {
          state_.derivedRegions[*pos].push_back({AccessKind::Iterate, "std::" + name.str(),
                                                 mangledIdentifier(name.str()), mangledIdentifier(n.str()),
                                                 *source, 0});
          recordName(*pos, obj);
        }
      } else if (const auto *ins = llvm::dyn_cast<clang::CallExpr>(e)) {
        const clang::FunctionDecl *f = ins->getDirectCallee();
        if (!f || !f->isInStdNamespace() || !f->getIdentifier() || f->getName() != "inserter" ||
            ins->getNumArgs() < 1 || !isTrackedType(ins->getArg(0)->IgnoreParenImpCasts()->getType()))
          continue;
        if (auto source = positionOf(ins->getExprLoc())) {
          state_.derivedRegions[*pos].push_back(
              {AccessKind::Write, "std::" + name.str() + " (std::inserter)", mangledIdentifier(name.str()),
               mangledIdentifier("inserter"), *source, 0});
          recordName(*pos, ins->getArg(0));
        }
      }
    }
  }

  // std::invoke(&Map::member, m, args...) with the member named in place and
  // the map by reference: classified like m.member(args...). (A member
  // pointer held in a variable, std::bind and std::function are not seen.)
  bool noteInvoke(const clang::CallExpr *call, const SourcePos &pos) {
    if (call->getNumArgs() < 2) return false;
    const auto *addr = llvm::dyn_cast<clang::UnaryOperator>(call->getArg(0)->IgnoreImplicit());
    if (!addr || addr->getOpcode() != clang::UO_AddrOf) return false;
    const auto *ref = llvm::dyn_cast<clang::DeclRefExpr>(addr->getSubExpr()->IgnoreParens());
    const auto *m = ref ? llvm::dyn_cast<clang::CXXMethodDecl>(ref->getDecl()) : nullptr;
    const clang::Expr *obj = call->getArg(1)->IgnoreParenImpCasts();
    if (!m || !m->getIdentifier() || m->isStatic() || obj->getType()->isPointerType() ||
        !isTrackedType(obj->getType()))
      return false;
    trackDeclaringBase(obj->getType(), m);
    MemberCallFacts facts = factsOf(m);
    std::optional<Classification> c = classifyMemberCall(facts, state_.tracked);
    if (!c || c->operands.empty()) return true;
    AccessKind kind = c->operands[0].kind;
    if (kind != AccessKind::Read && kind != AccessKind::Write) return true;
    // The map is the invoke call's own second argument.
    std::string invoke = call->getDirectCallee()->getName().str();
    state_.derivedRegions[pos].push_back({kind, "std::" + invoke + " (" + facts.method + ")",
                                          mangledIdentifier(invoke), mangledIdentifier(invoke), pos, 1,
                                          /*sourceIsUser=*/true});
    recordName(pos, obj);
    return true;
  }

  // A std::ranges algorithm given the map as argument `i`. The IR side
  // classifies it from the callee's name, except where the demangler cannot
  // read that name (libc++'s constrained operator(), `Tk` in the mangling):
  // then this region, on the call's own argument, stands in.
  void noteRangesAlgorithm(const clang::CXXOperatorCallExpr *call, unsigned i, const SourcePos &pos) {
    const auto *m = llvm::dyn_cast_or_null<clang::CXXMethodDecl>(call->getCalleeDecl());
    if (!m || !m->getParent()) return;
    std::string cls = nameOf(m->getParent());
    std::string algo = cls.compare(0, 13, "std::ranges::") == 0 ? rangesAlgorithmName(cls) : "";
    if (algo.empty()) return;
    // The identifier the callee's mangled name carries: "__for_each" of
    // libc++'s __for_each::__fn, "__for_each_fn" of libstdc++'s.
    std::string rest = cls.substr(13);
    std::string id = rest.substr(0, rest.find("::"));
    state_.derivedRegions[pos].push_back({AccessKind::Iterate, "std::ranges::" + algo,
                                          mangledIdentifier(id), mangledIdentifier(id), pos, i,
                                          /*sourceIsUser=*/true});
  }

  static const clang::ValueDecl *referencedDecl(const clang::Expr *e) {
    e = e->IgnoreParenImpCasts();
    if (const auto *d = llvm::dyn_cast<clang::DeclRefExpr>(e)) return d->getDecl();
    if (const auto *m = llvm::dyn_cast<clang::MemberExpr>(e)) return m->getMemberDecl();
    return nullptr;
  }

  // The innermost call in `e` that takes a tracked map as an argument
  // (the adaptor call of a view pipeline); sets *map to that argument.
  const clang::CallExpr *callTakingMap(const clang::Stmt *e, const clang::Expr **map) {
    if (!e || llvm::isa<clang::LambdaExpr>(e)) return nullptr;
    if (const auto *call = llvm::dyn_cast<clang::CallExpr>(e)) {
      for (const clang::Expr *arg : call->arguments()) {
        const clang::Expr *a = arg->IgnoreParenImpCasts();
        if (isTrackedType(a->getType()) && !llvm::isa<clang::CXXMemberCallExpr>(call)) {
          *map = a;
          return call;
        }
      }
    }
    for (const clang::Stmt *child : e->children())
      if (const clang::CallExpr *found = callTakingMap(child, map)) return found;
    return nullptr;
  }

  bool VisitCXXOperatorCallExpr(clang::CXXOperatorCallExpr *call) {
    if (call->isTypeDependent() || sm_.isInSystemHeader(call->getExprLoc())) return true;
    if (call->getNumArgs() == 0 || !llvm::isa_and_nonnull<clang::CXXMethodDecl>(call->getCalleeDecl()))
      return true;
    // A function object called with a map: std::ranges::for_each(m, f).
    if (call->getOperator() == clang::OO_Call) {
      for (unsigned i = 1; i < call->getNumArgs(); i++)
        if (isTrackedType(call->getArg(i)->IgnoreParenImpCasts()->getType())) {
          if (auto pos = positionOf(call->getExprLoc())) {
            recordName(*pos, call->getArg(i));
            noteRangesAlgorithm(call, i, *pos);
          }
          break;
        }
      return true;
    }
    const clang::Expr *obj = call->getArg(0)->IgnoreParenImpCasts();
    if (isTrackedType(obj->getType())) {
      trackDeclaringBase(obj->getType(), llvm::cast<clang::CXXMethodDecl>(call->getCalleeDecl()));
      if (auto pos = positionOf(call->getExprLoc())) recordName(*pos, obj);
    }
    return true;
  }

 private:
  clang::ASTContext &ctx_;
  clang::SourceManager &sm_;
  TUState &state_;

  std::optional<SourcePos> positionOf(clang::SourceLocation loc) {
    if (loc.isInvalid()) return std::nullopt;
    clang::PresumedLoc p = sm_.getPresumedLoc(sm_.getExpansionLoc(loc));
    if (p.isInvalid()) return std::nullopt;
    SourcePos pos;
    pos.file = llvm::sys::path::filename(p.getFilename()).str();
    pos.line = p.getLine();
    pos.column = p.getColumn();
    return pos;
  }

  // The class's name as TrackedClasses spells it.
  std::string nameOf(const clang::NamedDecl *d) {
    return state_.tracked.canonical(normalized(d->getQualifiedNameAsString()));
  }

  static const clang::CXXRecordDecl *classOf(clang::QualType t) {
    t = t.getNonReferenceType();
    if (const auto *p = t->getAs<clang::PointerType>()) t = p->getPointeeType();
    return t->getAsCXXRecordDecl();
  }

  bool isTrackedClass(const clang::CXXRecordDecl *rd) {
    return state_.tracked.isTracked(nameOf(rd)) ||
           hasAnnotation(rd, "mapguard.map");
  }

  // The tracked class `rd` is or derives from, if any (a user's
  // `struct Index : absl::flat_hash_map<...>` is that map).
  const clang::CXXRecordDecl *trackedClassOf(const clang::CXXRecordDecl *rd) {
    if (!rd) return nullptr;
    if (isTrackedClass(rd)) return rd;
    if (!rd->hasDefinition()) return nullptr;
    for (const clang::CXXBaseSpecifier &b : rd->bases())
      if (const clang::CXXRecordDecl *found = trackedClassOf(b.getType()->getAsCXXRecordDecl()))
        return found;
    return nullptr;
  }

  bool isTrackedType(clang::QualType t) { return trackedClassOf(classOf(t)) != nullptr; }

  // A call on a tracked map whose member is declared in one of the map's
  // bases (absl::flat_hash_map::find is raw_hash_set's, llvm::DenseMap's is
  // DenseMapBase's): the IR side sees only the base in the callee's name, so
  // the base is tracked too, with the map's rules. Only for classes with the
  // standard containers' API (api=std): a custom class tracked by constness
  // may inherit unrelated members (a lock() from a Lockable base), which must
  // not become map writes; list such a base yourself if it holds the map.
  void trackDeclaringBase(clang::QualType objType, const clang::CXXMethodDecl *m) {
    if (!m || m->isStatic()) return;
    const clang::CXXRecordDecl *tracked = trackedClassOf(classOf(objType));
    const clang::CXXRecordDecl *declaring = m->getParent();
    if (!tracked || !declaring || declaring == tracked) return;
    // Only a base of the map declares the map's own members. A class derived
    // from a map (`struct Registry : std::unordered_map<...>`) declares its
    // own code: its members are not map accesses, the calls they make on the
    // map are (tracking Registry here made add() a read and hid the
    // operator[] inside it).
    if (!tracked->hasDefinition() || !tracked->isDerivedFrom(declaring)) return;
    std::string derived = nameOf(tracked);
    std::string base = nameOf(declaring);
    if (!state_.tracked.standardApi.count(derived) || state_.tracked.isTracked(base) ||
        base.compare(0, 5, "std::") == 0)
      return;
    state_.tracked.trackBaseOf(derived, base);
  }

  // What the AST knows of a call to member `m` (named, non-null).
  MemberCallFacts factsOf(const clang::CXXMethodDecl *m) {
    clang::PrintingPolicy policy(ctx_.getLangOpts());
    policy.SuppressInlineNamespace = true;
    policy.FullyQualifiedName = true;
    MemberCallFacts facts;
    facts.classType = compat::canonicalRecordType(ctx_, m->getParent()).getAsString(policy);
    facts.method = m->getName().str();
    facts.isConst = m->isConst();
    return facts;
  }

  void recordMemberCall(const SourcePos &pos, const clang::CXXMethodDecl *m) {
    if (!m || !m->getIdentifier()) return;
    state_.memberCalls.emplace(pos, factsOf(m));
  }

  // The map's name as the code spells it, e.g. "registry.entries_", and its
  // type as the user would write it.
  void recordName(const SourcePos &pos, const clang::Expr *obj) {
    obj = obj->IgnoreImplicit();
    clang::QualType t = obj->getType().getNonReferenceType();
    if (const auto *p = t->getAs<clang::PointerType>()) t = p->getPointeeType();
    clang::PrintingPolicy policy(ctx_.getLangOpts());
    policy.SuppressDefaultTemplateArgs = true;
    policy.SuppressScope = false;
    policy.SuppressInlineNamespace = true;
    policy.FullyQualifiedName = true;
    std::string typeName = t.getCanonicalType().getUnqualifiedType().getAsString(policy);
    // One position in a template stands for every instantiation: when they
    // disagree, the IR side names the map by the callee's class instead.
    auto [it, added] = state_.mapTypes.emplace(pos, prettyFunctionName(typeName));
    if (!added && it->second != prettyFunctionName(typeName)) it->second.clear();
    clang::CharSourceRange range = clang::CharSourceRange::getTokenRange(obj->getSourceRange());
    llvm::StringRef text = clang::Lexer::getSourceText(range, sm_, ctx_.getLangOpts());
    if (text.empty() || text.size() > 80 || text.contains('\n')) return;
    state_.mapNames.emplace(pos, text.str());
  }

  void findBeginCalls(const clang::Stmt *s) {
    if (!s) return;
    if (const auto *call = llvm::dyn_cast<clang::CXXMemberCallExpr>(s)) {
      if (const clang::CXXMethodDecl *m = call->getMethodDecl()) {
        llvm::StringRef n = m->getName();
        if ((n == "begin" || n == "cbegin" || n == "rbegin" || n == "crbegin") &&
            isTrackedType(call->getImplicitObjectArgument()->getType()))
          if (auto pos = positionOf(call->getExprLoc())) state_.iterationBegins.insert(*pos);
      }
    }
    for (const clang::Stmt *child : s->children()) findBeginCalls(child);
  }
};

class Consumer : public clang::ASTConsumer {
 public:
  explicit Consumer(std::shared_ptr<TUState> state) : state_(std::move(state)) {}
  void HandleTranslationUnit(clang::ASTContext &ctx) override {
    // First the annotated classes, so names and loops of any tracked type are
    // recognized in the second walk.
    Collector(ctx, *state_).TraverseDecl(ctx.getTranslationUnitDecl());
    Collector(ctx, *state_).TraverseDecl(ctx.getTranslationUnitDecl());
  }

 private:
  std::shared_ptr<TUState> state_;
};

class MapguardAction : public clang::PluginASTAction {
 public:
  std::unique_ptr<clang::ASTConsumer> CreateASTConsumer(clang::CompilerInstance &CI,
                                                        llvm::StringRef) override {
    // Fresh state per translation unit: one process may compile several.
    auto state = std::make_shared<TUState>();
    TrackedClasses &t = state->tracked;
    t.addLinesOf(extra_);
    state->verifyIR = verify_;
    state->fastPathBitcode = fastPathBitcode_;
    state->fastPathFile = fastPathFile_;

    // A build system's configure probe (CMake's try_compile, autoconf's
    // conftest) asks whether something compiles and links; it never runs
    // for mapguard's sake. Instrumented, a probe that uses an atomic needs
    // the runtime at link time and changes its answer when the build adds
    // the plugin to the compile flags only. Probes stay plain.
    if (isConfigureProbe(CI)) return std::make_unique<clang::ASTConsumer>();

    clang::CodeGenOptions &cg = CI.getCodeGenOpts();
    if (cg.DisableLLVMPasses) {
      clang::DiagnosticsEngine &diags = CI.getDiagnostics();
      unsigned id = diags.getCustomDiagID(
          clang::DiagnosticsEngine::Warning,
          "mapguard: LLVM passes are disabled here (-save-temps, -emit-llvm with "
          "-Xclang -disable-llvm-passes, or a separate .bc step): this output is NOT "
          "instrumented; compile to an object file in one step");
      diags.Report(id);
    }
    // Call sites need source positions even without -g: ask for locations
    // only, which emits no debug info into the object file.
    if (cg.getDebugInfo() == compat::debug_info::NoDebugInfo) {
      cg.setDebugInfo(compat::debug_info::LocTrackingOnly);
      if (!compat::kCodeGenSeesPluginOptions) {
        // A remark, not a warning: -Werror builds must not fail over it.
        clang::DiagnosticsEngine &diags = CI.getDiagnostics();
        diags.Report(diags.getCustomDiagID(
            clang::DiagnosticsEngine::Remark,
            "mapguard: clang " LLVM_VERSION_STRING " gives a plugin no way to ask for line "
            "tables: compile with -gline-tables-only (or -g) for source positions and map "
            "names in reports"));
      }
    }
    compat::addPassBuilderCallback(cg, [state](llvm::PassBuilder &PB) {
      PB.registerPipelineStartEPCallback(
          [state](llvm::ModulePassManager &MPM, llvm::OptimizationLevel level) {
            MPM.addPass(MapguardPass(state, level != llvm::OptimizationLevel::O0));
          });
      compat::addPassAtOptimizerLast<InlineCopyTablePass>(PB, [] { return InlineCopyTablePass(); });
    });
    // Code can tell it is being instrumented.
    clang::Preprocessor &pp = CI.getPreprocessor();
    pp.setPredefines(pp.getPredefines() + "#define __MAPGUARD__ 1\n");
    return std::make_unique<Consumer>(state);
  }

  bool ParseArgs(const clang::CompilerInstance &CI, const std::vector<std::string> &args) override {
    clang::DiagnosticsEngine &diags = CI.getDiagnostics();
    auto fail = [&](const std::string &message) {
      diags.Report(diags.getCustomDiagID(clang::DiagnosticsEngine::Error, "mapguard: %0")) << message;
      return false;
    };
    std::string catalogue = defaultCataloguePath();
    std::vector<std::string> files;
    for (const std::string &arg : args) {
      llvm::StringRef a(arg);
      if (a.consume_front("track=")) {
        llvm::SmallVector<llvm::StringRef, 4> names;
        a.split(names, ',', -1, false);
        for (llvm::StringRef n : names)
          if (!n.trim().empty()) extra_.names.insert(normalized(n.trim().str()));
      } else if (a.consume_front("track-file=")) {
        files.push_back(a.str());
      } else if (a.consume_front("catalogue=")) {
        catalogue = a == "off" ? "" : a.str();
      } else if (a.consume_front("fast-path=")) {
        fastPathFile_ = a == "off" ? "" : a.str();
      } else if (a == "verify") {
        verify_ = true;
      } else {
        return fail("unknown plugin argument '" + a.str() +
                    "' (known: track=NAME[,NAME...], track-file=PATH, catalogue=PATH|off, "
                    "fast-path=PATH|off, verify)");
      }
    }
    if (!fastPathFile_.empty()) {
      FastPathText text = readFastPath(fastPathFile_);
      if (!text.ok()) return fail(text.error);
      fastPathBitcode_ = text.text;
    }
    // The catalogue first: a track-file line for the same class adds to it.
    if (!catalogue.empty()) files.insert(files.begin(), catalogue);
    for (const std::string &path : files) {
      std::ifstream in(path);
      if (!in)
        return fail(path == catalogue
                        ? "cannot read the catalogue of third-party maps '" + path +
                              "' (it ships next to mapguard.so; catalogue=off goes without)"
                        : "cannot read track-file '" + path + "'");
      std::string line;
      for (unsigned number = 1; std::getline(in, line); number++) {
        std::string error = parseTrackLine(line, extra_);
        if (!error.empty()) return fail(path + ":" + std::to_string(number) + ": " + error);
      }
    }
    return true;
  }

  ActionType getActionType() override { return AddBeforeMainAction; }

 private:
  // What the catalogue, track= and track-file= add to the std containers.
  TrackedClasses extra_;
  bool verify_ = false;  // run the LLVM verifier on each instrumented module

  // One per clang version, side by side: mapguard_fast_path.clang<N>.bc.
  std::string fastPathFile_ = besidePlugin(kFastPathName);  // "" with fast-path=off
  std::shared_ptr<const std::string> fastPathBitcode_;

  static bool isConfigureProbe(const clang::CompilerInstance &CI) {
    const auto &inputs = CI.getFrontendOpts().Inputs;
    if (inputs.empty() || !inputs[0].isFile()) return false;
    llvm::StringRef file = inputs[0].getFile();
    llvm::StringRef base = llvm::sys::path::filename(file);
    return file.contains("/CMakeFiles/CMakeScratch/") || file.contains("/CMakeFiles/CMakeTmp/") ||
           compat::startsWith(base, "conftest.");
  }

  // A file shipped next to this mapguard.so (the catalogue, the fast path).
  static std::string besidePlugin(const char *name) {
    Dl_info info;
    if (!dladdr(reinterpret_cast<void *>(&besidePlugin), &info) || !info.dli_fname) return name;
    llvm::SmallString<256> path(info.dli_fname);
    llvm::sys::path::remove_filename(path);
    llvm::sys::path::append(path, name);
    return std::string(path);
  }
  static std::string defaultCataloguePath() { return besidePlugin("mapguard-catalogue.txt"); }

  // The fast path's bitcode, read once per process (the driver may run
  // several compile jobs in one): a one-line reason if it cannot be used.
  struct FastPathText {
    std::shared_ptr<const std::string> text;
    std::string error;
    bool ok() const { return error.empty(); }
  };
  static FastPathText loadFastPath(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
      return {nullptr, "cannot read the inlined fast path '" + path +
                           "' (it ships next to mapguard.so; fast-path=off calls the runtime "
                           "instead)"};
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!llvm::isBitcode(reinterpret_cast<const unsigned char *>(bytes.data()),
                         reinterpret_cast<const unsigned char *>(bytes.data() + bytes.size())))
      return {nullptr, "'" + path + "' is not LLVM bitcode (expected " + std::string(kFastPathName) + ")"};
    return {std::make_shared<const std::string>(std::move(bytes)), ""};
  }
  static FastPathText readFastPath(const std::string &path) {
    static std::mutex mu;
    static std::map<std::string, FastPathText> cache;
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(path);
    if (it == cache.end()) it = cache.emplace(path, loadFastPath(path)).first;
    return it->second;
  }
};

}  // namespace
}  // namespace mapguard

static clang::FrontendPluginRegistry::Add<mapguard::MapguardAction>
    X("mapguard", "instrument map accesses for mapguard's race checks");
