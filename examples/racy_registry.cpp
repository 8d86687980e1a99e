// A registry that two worker threads fill at the same time, with no lock.
// Build with mapguard and run it: the program stops with
// "fatal error: concurrent map writes" and shows both threads' stacks.
#include <cstdio>
#include <string>
#include <thread>
#include <unordered_map>

class Registry {
 public:
  void add(const std::string &name, int id) {
    entries_[name] = id;  // BUG: no lock, and two threads call this
  }
  size_t size() const { return entries_.size(); }

 private:
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
