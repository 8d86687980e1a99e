// The same registry as racy_registry.cpp, with the lock it needs. mapguard
// finds nothing to report and the program runs to the end.
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

class Registry {
 public:
  void add(const std::string &name, int id) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_[name] = id;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, int> entries_;
};

static void register_plugins(Registry &registry, const char *prefix) {
  for (int i = 0; i < 200000; i++) registry.add(prefix + std::to_string(i), i);
}

int main() {
  Registry registry;
  std::thread audio(register_plugins, std::ref(registry), "audio-");
  std::thread video(register_plugins, std::ref(registry), "video-");
  audio.join();
  video.join();
  std::printf("registered %zu plugins\n", registry.size());
}
