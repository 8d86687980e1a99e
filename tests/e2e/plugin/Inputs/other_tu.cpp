#include "shared_table.h"
std::unordered_map<int, int, mg_test::BlockingHash> g_table;
__attribute__((noinline)) void add_there(int k) { g_table.insert_or_assign(k, 1); }
