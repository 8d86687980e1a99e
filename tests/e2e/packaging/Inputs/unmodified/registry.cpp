#include <map>
#include <mutex>
#include <string>
static std::map<std::string, int> g_entries;
static std::mutex g_mu;
void registry_add(const std::string &k, int v, bool locked) {
  if (locked) g_mu.lock();
  g_entries[k] = v;
  if (locked) g_mu.unlock();
}
