#pragma once
#include <unordered_map>
#include "test_sync.h"
extern std::unordered_map<int, int, mg_test::BlockingHash> g_table;
void add_there(int k);
