#pragma once
#include <unordered_map>

struct Handle;
Handle *make_handle();
std::unordered_map<int, int> &map_of(Handle *h);
void release_handle(Handle *h);
void destroy_when_released(Handle *h);
