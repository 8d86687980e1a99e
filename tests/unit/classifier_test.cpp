// MapClassifier: which calls touch a tracked map, and how. The mangled names
// below were taken from clang 19 + libstdc++ 12 output.
#include "MapClassifier.h"

#include <gtest/gtest.h>

using mapguard::AccessKind;
using mapguard::classifyCall;
using mapguard::TrackedClasses;

namespace {

const TrackedClasses kStd = TrackedClasses::withStandardContainers();

AccessKind kindOf(const char *mangled) {
  auto c = classifyCall(mangled, kStd);
  EXPECT_TRUE(c.has_value()) << mangled;
  return c ? c->operands.at(0).kind : AccessKind::Read;
}

TEST(Classifier, WritesAndReadsOfStandardContainers) {
  // unordered_map<std::string, int>::operator[](std::string&&)
  EXPECT_EQ(kindOf("_ZNSt13unordered_mapINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEiSt4hashIS5_ESt8equal_toIS5_ESaISt4pairIKS5_iEEEixEOS5_"),
            AccessKind::Write);
  // ...::find
  EXPECT_EQ(kindOf("_ZNSt13unordered_mapINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEiSt4hashIS5_ESt8equal_toIS5_ESaISt4pairIKS5_iEEE4findERSB_"),
            AccessKind::Read);
  // max_load_factor(float) sets, max_load_factor() const reads
  EXPECT_EQ(kindOf("_ZNSt13unordered_mapINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEiSt4hashIS5_ESt8equal_toIS5_ESaISt4pairIKS5_iEEE15max_load_factorEf"),
            AccessKind::Write);
  EXPECT_EQ(kindOf("_ZNKSt13unordered_mapINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEiSt4hashIS5_ESt8equal_toIS5_ESaISt4pairIKS5_iEEE15max_load_factorEv"),
            AccessKind::Read);
  EXPECT_EQ(kindOf("_ZNSt3mapIiiSt4lessIiESaISt4pairIKiiEEE6insertEOS4_"), AccessKind::Write);
  EXPECT_EQ(kindOf("_ZNSt3mapIiiSt4lessIiESaISt4pairIKiiEEE2atERS3_"), AccessKind::Read);
  EXPECT_EQ(kindOf("_ZNKSt3mapIiiSt4lessIiESaISt4pairIKiiEEE5countERS3_"), AccessKind::Read);
  EXPECT_EQ(kindOf("_ZNSt3setIiSt4lessIiESaIiEE5eraseERKi"), AccessKind::Write);
  EXPECT_EQ(kindOf("_ZNSt3mapIiiSt4lessIiESaISt4pairIKiiEEED2Ev"), AccessKind::Destroy);
}

TEST(Classifier, BeginCallsMayOpenIterations) {
  auto c = classifyCall("_ZNKSt3mapIiiSt4lessIiESaISt4pairIKiiEEE5beginEv", kStd);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->isBeginCall);
  EXPECT_EQ(c->op, "begin");
  // end() is a sentinel: not an access at all.
  EXPECT_FALSE(classifyCall("_ZNKSt3mapIiiSt4lessIiESaISt4pairIKiiEEE3endEv", kStd));
  EXPECT_FALSE(classifyCall("_ZNKSt3mapIiiSt4lessIiESaISt4pairIKiiEEE8key_compEv", kStd));
}

TEST(Classifier, HashtableLayoutNeedsTheDefaultHasherAndEqual) {
  auto set = classifyCall("_ZNSt13unordered_setIiSt4hashIiESt8equal_toIiESaIiEE6insertEOi", kStd);
  ASSERT_TRUE(set);
  EXPECT_TRUE(set->hashtableLayout);
  auto umap = classifyCall("_ZNSt13unordered_mapINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEiSt4hashIS5_ESt8equal_toIS5_ESaISt4pairIKS5_iEEEixEOS5_", kStd);
  ASSERT_TRUE(umap);
  EXPECT_TRUE(umap->hashtableLayout);
  // A stateful hasher may sit before the counts: no layout promise.
  auto custom = classifyCall("_ZNSt13unordered_mapIii6MyHashSt8equal_toIiESaISt4pairIKiiEEE4findERS4_", kStd);
  ASSERT_TRUE(custom);
  EXPECT_FALSE(custom->hashtableLayout);
  auto ordered = classifyCall("_ZNSt3mapIiiSt4lessIiESaISt4pairIKiiEEE6insertEOS4_", kStd);
  ASSERT_TRUE(ordered);
  EXPECT_FALSE(ordered->hashtableLayout);
  // A stateful allocator (std::pmr) sits before the list head in libc++.
  auto pmr = classifyCall("_ZNKSt13unordered_mapIiiSt4hashIiESt8equal_toIiENSt3pmr21polymorphic_allocatorISt4pairIKiiEEEE5countERS7_", kStd);
  ASSERT_TRUE(pmr);
  EXPECT_FALSE(pmr->hashtableLayout);
}

// -D_GLIBCXX_DEBUG: std::__debug::map and its std::__cxx1998 base are std::map.
TEST(Classifier, DebugModeContainersAreTheStandardOnes) {
  auto dbg = classifyCall("_ZNSt7__debug3mapIiiSt4lessIiESaISt4pairIKiiEEEixEOi", kStd);
  ASSERT_TRUE(dbg);
  EXPECT_EQ(dbg->operands.at(0).kind, AccessKind::Write);
  EXPECT_EQ(dbg->mapType, "std::map<int, int>");
  auto base = classifyCall("_ZNKSt9__cxx199813unordered_mapIiiSt4hashIiESt8equal_toIiESaISt4pairIKiiEEE5countERS6_", kStd);
  ASSERT_TRUE(base);
  EXPECT_EQ(base->operands.at(0).kind, AccessKind::Read);
  // The debug wrapper keeps its iterator bookkeeping first: no layout promise.
  auto wrapper = classifyCall("_ZNSt7__debug13unordered_mapIiiSt4hashIiESt8equal_toIiESaISt4pairIKiiEEEixEOi", kStd);
  ASSERT_TRUE(wrapper);
  EXPECT_FALSE(wrapper->hashtableLayout);
}

TEST(Classifier, OtherMapArgumentsAreOperandsToo) {
  // map::swap(map&): both written.
  auto swap = classifyCall("_ZNSt3mapIiiSt4lessIiESaISt4pairIKiiEEE4swapERS6_", kStd);
  ASSERT_TRUE(swap);
  ASSERT_EQ(swap->operands.size(), 2u);
  EXPECT_EQ(swap->operands[1].argIndex, 1u);
  EXPECT_EQ(swap->operands[1].kind, AccessKind::Write);
  // map(const map&): constructs this, reads the source.
  auto copy = classifyCall("_ZNSt3mapIiiSt4lessIiESaISt4pairIKiiEEEC2ERKS6_", kStd);
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->operands[0].kind, AccessKind::Construct);
  ASSERT_EQ(copy->operands.size(), 2u);
  EXPECT_EQ(copy->operands[1].kind, AccessKind::Read);
  // operator=(const map&): writes this, reads the source.
  auto assign = classifyCall("_ZNSt3mapIiiSt4lessIiESaISt4pairIKiiEEEaSERKS6_", kStd);
  ASSERT_TRUE(assign);
  EXPECT_EQ(assign->operands[0].kind, AccessKind::Write);
  EXPECT_EQ(assign->operands[1].kind, AccessKind::Read);
  // merge(map<int,int,C2>&): both written.
  auto merge = classifyCall("_ZNSt3mapIiiSt4lessIiESaISt4pairIKiiEEE5mergeIS1_EEvRS_IiiT_S5_E", kStd);
  ASSERT_TRUE(merge);
  ASSERT_EQ(merge->operands.size(), 2u);
  EXPECT_EQ(merge->operands[1].kind, AccessKind::Write);
}

TEST(Classifier, FreeFunctionsInStd) {
  auto swap = classifyCall("_ZSt4swapIiiSt4lessIiESaISt4pairIKiiEEEvRSt3mapIT_T0_T1_T2_ESC_", kStd);
  ASSERT_TRUE(swap);
  EXPECT_EQ(swap->op, "std::swap");
  ASSERT_EQ(swap->operands.size(), 2u);
  EXPECT_EQ(swap->operands[0].kind, AccessKind::Write);
  EXPECT_EQ(swap->mapType, "std::map<int, int>");
  auto eq = classifyCall("_ZSteqIiiSt4lessIiESaISt4pairIKiiEEEbRKSt3mapIT_T0_T1_T2_ESD_", kStd);
  ASSERT_TRUE(eq);
  EXPECT_EQ(eq->operands.size(), 2u);
  EXPECT_EQ(eq->operands[1].kind, AccessKind::Read);
  // std::swap of two comparators is not a map access.
  EXPECT_FALSE(classifyCall("_ZSt4swapISt4lessIiEENSt9enable_ifIXsr6__and_ISt6__not_ISt15__is_tuple_likeIT_EESt21is_move_constructibleIS5_ESt18is_move_assignableIS5_EEE5valueEvE4typeERS5_SE_", kStd));
}

TEST(Classifier, ContainerInternalsAreNotAccesses) {
  EXPECT_FALSE(classifyCall("_ZNKSt10_HashtableINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEESt4pairIKS5_iESaIS8_ENSt8__detail10_Select1stESt8equal_toIS5_ESt4hashIS5_ENSA_18_Mod_range_hashingENSA_20_Default_ranged_hashENSA_20_Prime_rehash_policyENSA_17_Hashtable_traitsILb1ELb0ELb1EEEE4sizeEv", kStd));
  EXPECT_FALSE(classifyCall("_ZNKSt17_Rb_tree_iteratorISt4pairIKiiEEdeEv", kStd));
  EXPECT_FALSE(classifyCall("main", kStd));
  EXPECT_FALSE(classifyCall("_Z3fooi", kStd));
}

TEST(Classifier, ImplementationFunctionsAreSkipped) {
  EXPECT_TRUE(mapguard::isImplementationFunction("_ZNSt3mapIiiSt4lessIiESaISt4pairIKiiEEE6insertEOS4_", kStd));
  EXPECT_TRUE(mapguard::isImplementationFunction("_ZNKSt17_Rb_tree_iteratorISt4pairIKiiEEdeEv", kStd));
  EXPECT_FALSE(mapguard::isImplementationFunction("_Z3fooi", kStd));
  EXPECT_FALSE(mapguard::isImplementationFunction("main", kStd));
}

TEST(Classifier, CustomMapsFollowConstnessAndAnnotations) {
  TrackedClasses t = kStd;
  t.names.insert("ns::Registry");
  t.members["ns::Registry::lookup_or_null"] = mapguard::MemberOverride::Read;
  t.members["ns::Registry::debug_dump"] = mapguard::MemberOverride::Ignore;
  // ns::Registry::get(int) const
  EXPECT_EQ(classifyCall("_ZNK2ns8Registry3getEi", t)->operands[0].kind, AccessKind::Read);
  // ns::Registry::put(int, int)
  EXPECT_EQ(classifyCall("_ZN2ns8Registry3putEii", t)->operands[0].kind, AccessKind::Write);
  // non-const, but annotated as a read
  EXPECT_EQ(classifyCall("_ZN2ns8Registry14lookup_or_nullEi", t)->operands[0].kind, AccessKind::Read);
  EXPECT_FALSE(classifyCall("_ZN2ns8Registry10debug_dumpEv", t));
  EXPECT_EQ(classifyCall("_ZN2ns8RegistryC2Ev", t)->operands[0].kind, AccessKind::Construct);
  EXPECT_TRUE(mapguard::isImplementationFunction("_ZN2ns8Registry3putEii", t));
}

TEST(Classifier, CatalogueLines) {
  TrackedClasses t = kStd;
  EXPECT_EQ(mapguard::parseTrackLine("  # a comment", t), "");
  EXPECT_EQ(mapguard::parseTrackLine("", t), "");
  EXPECT_EQ(mapguard::parseTrackLine("llvm::DenseMap api=std write=FindAndConstruct,grow  # LLVM", t), "");
  EXPECT_TRUE(t.isTracked("llvm::DenseMap"));
  EXPECT_TRUE(t.standardApi.count("llvm::DenseMap"));
  EXPECT_EQ(t.members["llvm::DenseMap::grow"], mapguard::MemberOverride::Write);
  EXPECT_EQ(mapguard::parseTrackLine("ns::Cache read=peek ignore=stats", t), "");
  EXPECT_FALSE(t.standardApi.count("ns::Cache"));
  EXPECT_EQ(t.members["ns::Cache::stats"], mapguard::MemberOverride::Ignore);
  EXPECT_EQ(mapguard::parseTrackLine("ns::Cache api=sorted", t),
            "unknown field 'api=sorted' (known: api=std, read=, write=, ignore=)");
  EXPECT_EQ(mapguard::parseTrackLine("ns::Cache write=", t), "'write=' lists no member");
  EXPECT_EQ(mapguard::parseTrackLine("write=x", t), "expected a class name first, got 'write=x'");
}

TEST(Classifier, StandardApiClassesIgnoreConstness) {
  TrackedClasses t = kStd;
  ASSERT_EQ(mapguard::parseTrackLine("llvm::DenseMap api=std write=grow", t), "");
  // llvm::DenseMap<int, int>::find(int const&), non-const: still a read.
  EXPECT_EQ(classifyCall("_ZN4llvm8DenseMapIiiE4findERKi", t)->operands[0].kind, AccessKind::Read);
  // ...::grow(unsigned int), listed as a write.
  EXPECT_EQ(classifyCall("_ZN4llvm8DenseMapIiiE4growEj", t)->operands[0].kind, AccessKind::Write);
  // ...::erase(int const&), a standard write.
  EXPECT_EQ(classifyCall("_ZN4llvm8DenseMapIiiE5eraseERKi", t)->operands[0].kind, AccessKind::Write);
  // end() is a sentinel only for the std containers: here it reads.
  EXPECT_EQ(classifyCall("_ZN4llvm8DenseMapIiiE3endEv", t)->operands[0].kind, AccessKind::Read);
}

TEST(Classifier, BasesAndInlineNamespaces) {
  TrackedClasses t = kStd;
  ASSERT_EQ(mapguard::parseTrackLine("absl::flat_hash_map api=std write=lazy_emplace", t), "");
  t.inlineNamespaces.insert("debian3");
  EXPECT_EQ(t.canonical("absl::debian3::container_internal::raw_hash_set"),
            "absl::container_internal::raw_hash_set");
  EXPECT_EQ(t.canonical("absl::flat_hash_map"), "absl::flat_hash_map");
  t.trackBaseOf("absl::flat_hash_map", "absl::container_internal::raw_hash_set");
  EXPECT_TRUE(t.standardApi.count("absl::container_internal::raw_hash_set"));
  EXPECT_EQ(t.members["absl::container_internal::raw_hash_set::lazy_emplace"],
            mapguard::MemberOverride::Write);
  // absl::debian3::container_internal::raw_hash_set<P, H, E, A>::find<int>(int const&),
  // non-const, through the inline namespace.
  auto c = classifyCall(
      "_ZN4absl7debian318container_internal12raw_hash_setINS1_17FlatHashMapPolicyIiiEENS0_13hash_"
      "internal4HashIiEESt8equal_toIiESaISt4pairIKiiEEE4findIiEENSE_8iteratorERSB_",
      t);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->operands[0].kind, AccessKind::Read);
  EXPECT_EQ(c->className, "absl::container_internal::raw_hash_set");
  EXPECT_EQ(c->mapType.find("debian3"), std::string::npos) << c->mapType;
}

TEST(Classifier, RangesAlgorithmsIterateTheirMap) {
  // std::ranges::__for_each_fn::operator()<std::map<int, int>&, ...>(std::map<int, int>&, $_0, std::identity) const
  auto c = classifyCall(
      "_ZNKSt6ranges13__for_each_fnclITkNS_11input_rangeERSt3mapIiiSt4lessIiESaISt4pairIKiiEEESt8ide"
      "ntityTkSt26indirectly_unary_invocableISt9projectedIDTclsr6ranges13__cust_accessE7__beginclsr3"
      "stdE7declvalIRT_EEEET0_EEZ1fSA_RSt6vectorIS5_IiiESaISK_EEE3$_0EENS_13in_fun_resultINSt13__con"
      "ditionalIX14borrowed_rangeISE_EEE4typeISG_NS_8danglingEEET1_EEOSE_SV_SH_",
      kStd);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->op, "std::ranges::for_each");
  ASSERT_EQ(c->operands.size(), 1u);
  EXPECT_EQ(c->operands[0].argIndex, 1u);  // after the function object
  EXPECT_EQ(c->operands[0].kind, AccessKind::Iterate);
  // ranges::begin(m) is a customization point, not an algorithm.
  EXPECT_FALSE(classifyCall(
      "_ZNKSt6ranges13__cust_access6_BeginclITkNS_8__detail22__maybe_borrowed_rangeERSt3mapIiiSt4le"
      "ssIiESaISt4pairIKiiEEEQoooo10is_array_vINSt16remove_referenceIT_E4typeEE14__member_beginISE_"
      "E11__adl_beginISE_EEEDaOSE_",
      kStd));
}

// The AST side names libc++'s ranges algorithms by their class when the
// demangler cannot read the constrained operator() (libc++ 19).
TEST(Classifier, RangesAlgorithmNames) {
  EXPECT_EQ(mapguard::rangesAlgorithmName("std::ranges::__for_each::__fn"), "for_each");
  EXPECT_EQ(mapguard::rangesAlgorithmName("std::ranges::__count_if_fn"), "count_if");
  EXPECT_EQ(mapguard::rangesAlgorithmName("std::ranges::__begin::__fn"), "");
  EXPECT_EQ(mapguard::rangesAlgorithmName("std::ranges::views::__filter::__fn"), "");
  EXPECT_EQ(mapguard::rangesAlgorithmName("std::ranges::__cust_access::_Begin"), "");
}

TEST(Classifier, ShortTypeNames) {
  EXPECT_EQ(mapguard::shortTypeName(
                "std::unordered_map<std::__cxx11::basic_string<char, std::char_traits<char>, "
                "std::allocator<char> >, int, std::hash<std::__cxx11::basic_string<char, "
                "std::char_traits<char>, std::allocator<char> > >, std::equal_to<std::__cxx11::"
                "basic_string<char, std::char_traits<char>, std::allocator<char> > >, "
                "std::allocator<std::pair<std::__cxx11::basic_string<char, std::char_traits<char>, "
                "std::allocator<char> > const, int> > >"),
            "std::unordered_map<std::string, int>");
  EXPECT_EQ(mapguard::shortTypeName("std::__1::map<int, std::__1::vector<int, std::__1::allocator<int>>, "
                                    "std::__1::less<int>, std::__1::allocator<std::__1::pair<int const, "
                                    "std::__1::vector<int, std::__1::allocator<int>>>>>"),
            "std::map<int, std::vector<int>>");
  // A custom hash stays: it is not the default.
  EXPECT_EQ(mapguard::shortTypeName("std::unordered_set<int, MyHash, std::equal_to<int>, std::allocator<int> >"),
            "std::unordered_set<int, MyHash>");
  EXPECT_EQ(mapguard::normalizeClassName("std::__1::unordered_map<int, int>"), "std::unordered_map");
}

}  // namespace

// Sync lines: a prebuilt library's lock members and what a call does.
TEST(Classifier, EntryLines) {
  TrackedClasses lines;
  ASSERT_EQ(mapguard::parseTrackLine("entry tbb::detail::d1::execution_data& acquire=execute,cancel",
                                     lines),
            "");
  EXPECT_NE(mapguard::parseTrackLine("entry tbb::detail::d1::execution_data&", lines), "");
  ASSERT_EQ(mapguard::parseTrackLine("entry tbb::detail::d1::task_arena_function run=operator()", lines), "");
  EXPECT_NE(mapguard::parseTrackLine("entry tbb::detail::d1::task_arena_function operator()", lines), "");
  EXPECT_NE(mapguard::parseTrackLine("entry tbb::detail::d1::task_arena_function run=", lines), "");
  TrackedClasses t = kStd;
  t.addLinesOf(lines);  // as the plugin merges the catalogue into each TU's state
  using mapguard::EntryRole;
  constexpr EntryRole None = EntryRole::None, Acquire = EntryRole::Acquire, Run = EntryRole::Run;
  // A delegated function task_arena::execute hands over: any template
  // arguments, no parameter; not another member, not a class of that name
  // elsewhere.
  EXPECT_EQ(Run, mapguard::entryRoleOf("_ZNK3tbb6detail2d119task_arena_functionIZ4mainE3$_0vEclEv", t));
  EXPECT_EQ(Run, mapguard::entryRoleOf("_ZNK3tbb6detail2d119task_arena_functionIZ4mainE3$_0iEclEv", t));
  EXPECT_EQ(None, mapguard::entryRoleOf("_ZN3tbb6detail2d119task_arena_functionIZ4mainE3$_0iE14consume_resultEv", t));
  EXPECT_EQ(None, mapguard::entryRoleOf("_ZNK2ns19task_arena_functionIZ4mainE3$_0vEclEv", t));
  EXPECT_EQ(None, mapguard::entryRoleOf("_ZNK3tbb6detail2d119task_arena_functionIZ4mainE3$_0vEclEi", t));
  // A compiler's suffix is not part of the name; a class nested in it is
  // not the class.
  EXPECT_EQ(Run, mapguard::entryRoleOf("_ZNK3tbb6detail2d119task_arena_functionIZ4mainE3$_0vEclEv.__uniq.1234", t));
  EXPECT_EQ(Run, mapguard::entryRoleOf("_ZNK3tbb6detail2d119task_arena_functionIPFvvEvEclEv", t));
  EXPECT_EQ(None, mapguard::entryRoleOf("_ZNK3tbb6detail2d119task_arena_functionIPFvvEvE5innerclEv", t));
  // A task body, readable or not (a class templated on a local lambda).
  EXPECT_EQ(Acquire, mapguard::entryRoleOf(
      "_ZN3tbb6detail2d19start_forINS1_13blocked_rangeIiEENS1_25parallel_for_body_wrapperIPFviEiEEKNS1_"
      "16auto_partitionerEE7executeERNS1_14execution_dataE",
      t));
  EXPECT_EQ(Acquire, mapguard::entryRoleOf(
      "_ZN3tbb6detail2d19start_forINS1_13blocked_rangeIiEENS1_25parallel_for_body_wrapperIZ4mainE3$_0iEEKNS1_"
      "16auto_partitionerEE7executeERNS1_14execution_dataE",
      t));
  EXPECT_EQ(Acquire, mapguard::entryRoleOf("_ZN2ns4Task6cancelERN3tbb6detail2d114execution_dataE", t));
  // Another member taking the same type, or execute() taking something else.
  EXPECT_EQ(None, mapguard::entryRoleOf("_ZN2ns4Task4stepERN3tbb6detail2d114execution_dataE", t));
  EXPECT_EQ(None, mapguard::entryRoleOf("_ZN2ns4Task7executeERi", t));
}

TEST(Classifier, SyncLinesForCFunctions) {
  TrackedClasses lines;
  ASSERT_EQ(mapguard::parseTrackLine("sync - lock=g_mutex_lock unlock=g_mutex_unlock wait@1=g_cond_wait", lines), "");
  TrackedClasses t = kStd;
  t.addLinesOf(lines);
  ASSERT_TRUE(mapguard::classifySyncCall("g_mutex_lock", t).has_value());
  EXPECT_EQ(mapguard::classifySyncCall("g_mutex_lock", t)->role, mapguard::SyncRole::Lock);
  EXPECT_EQ(mapguard::classifySyncCall("g_cond_wait", t)->argIndex, 1u);
  EXPECT_FALSE(mapguard::classifySyncCall("g_mutex_init", t)) << "not listed";
  EXPECT_FALSE(mapguard::classifySyncCall("_Z12g_mutex_lockv", t)) << "a C++ function of that name is not it";
}

TEST(Classifier, SyncLines) {
  TrackedClasses t = kStd;
  t.inlineNamespaces.insert("debian3");
  ASSERT_EQ(mapguard::parseTrackLine("sync absl::Mutex lock=Lock trylock=TryLock unlock=Unlock "
                                     "shared_unlock=ReaderUnlock",
                                     t),
            "");
  ASSERT_EQ(mapguard::parseTrackLine("sync absl::CondVar wait@1=Wait,WaitWithTimeout", t), "");
  ASSERT_EQ(mapguard::parseTrackLine("sync absl::Notification acquire_if_true=HasBeenNotified", t), "");
  ASSERT_EQ(mapguard::parseTrackLine("sync absl::Barrier barrier=Block", t), "");
  EXPECT_FALSE(t.isTracked("absl::Mutex")) << "a lock is not a map";
  auto lock = mapguard::classifySyncCall("_ZN4absl7debian35Mutex4LockEv", t);
  ASSERT_TRUE(lock.has_value());
  EXPECT_EQ(lock->role, mapguard::SyncRole::Lock);
  EXPECT_EQ(lock->argIndex, 0u);
  EXPECT_EQ(mapguard::classifySyncCall("_ZN4absl7debian35Mutex7TryLockEv", t)->role,
            mapguard::SyncRole::TryLock);
  EXPECT_EQ(mapguard::classifySyncCall("_ZN4absl7debian35Mutex12ReaderUnlockEv", t)->role,
            mapguard::SyncRole::SharedUnlock);
  auto wait = mapguard::classifySyncCall("_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE", t);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(wait->role, mapguard::SyncRole::Wait);
  EXPECT_EQ(wait->argIndex, 1u) << "CondVar::Wait's lock is its argument, not this";
  EXPECT_EQ(mapguard::classifySyncCall("_ZNK4absl7debian312Notification15HasBeenNotifiedEv", t)->role,
            mapguard::SyncRole::TryLock);
  EXPECT_EQ(mapguard::classifySyncCall("_ZN4absl7debian37Barrier5BlockEv", t)->role,
            mapguard::SyncRole::Barrier);
  // Members not listed, and other classes, are no sync calls.
  EXPECT_FALSE(mapguard::classifySyncCall("_ZN4absl7debian35Mutex6SignalEv", t));
  EXPECT_FALSE(mapguard::classifySyncCall("_ZN2ns5Mutex4LockEv", t));
  EXPECT_FALSE(mapguard::classifySyncCall("_ZNSt3mapIiiSt4lessIiESaISt4pairIKiiEEE2atERS3_", t));
  // Bad lines say what is wrong.
  EXPECT_EQ(mapguard::parseTrackLine("sync absl::Mutex grab=Lock", t),
            "unknown sync role 'grab' (known: lock, trylock, unlock, shared_lock, shared_trylock, "
            "shared_unlock, wait, release, acquire, acquire_if_true)");
  EXPECT_EQ(mapguard::parseTrackLine("sync absl::Mutex", t), "expected 'sync CLASS ROLE=MEMBER,...'");
  EXPECT_EQ(mapguard::parseTrackLine("sync absl::Mutex lock=", t), "'lock=' lists no member");
  EXPECT_EQ(mapguard::parseTrackLine("sync absl::CondVar wait@x=Wait", t),
            "'wait@x': expected ROLE@ARGUMENT-NUMBER");
  EXPECT_EQ(mapguard::parseTrackLine("sync absl::Mutex Lock", t), "expected ROLE=MEMBER,... , got 'Lock'");
}
