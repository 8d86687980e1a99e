// The one version difference that needs code rather than a name: how the
// plugin's AST action puts its IR pass into clang's pipeline (LLVMCompat.h).
#include "LLVMCompat.h"

#if LLVM_VERSION_MAJOR < 17
#include <dlfcn.h>

#include "llvm/Passes/PassPlugin.h"

namespace {
// The current compile's callback. clang runs one compile at a time in a
// process (a driver with several inputs runs them one after another), each
// creating its AST consumer, so registering for the next compile replaces it.
std::function<void(llvm::PassBuilder &)> g_pending_callback;
}  // namespace

// clang 16 loads the pass plugins CodeGenOptions::PassPlugins names with
// dlopen: this very file again, the same handle, so this global is shared.
extern "C" LLVM_ATTRIBUTE_WEAK ::llvm::PassPluginLibraryInfo llvmGetPassPluginInfo() {
  return {LLVM_PLUGIN_API_VERSION, "mapguard", LLVM_VERSION_STRING, [](llvm::PassBuilder &PB) {
            if (g_pending_callback) g_pending_callback(PB);
          }};
}
#endif

namespace mapguard::compat {

void addPassBuilderCallback(clang::CodeGenOptions &cg,
                            std::function<void(llvm::PassBuilder &)> callback) {
#if LLVM_VERSION_MAJOR >= 17
  cg.PassBuilderCallbacks.push_back(std::move(callback));
#else
  g_pending_callback = std::move(callback);
  Dl_info self;
  if (dladdr(reinterpret_cast<void *>(&llvmGetPassPluginInfo), &self) && self.dli_fname)
    cg.PassPlugins.push_back(self.dli_fname);
#endif
}

}  // namespace mapguard::compat
