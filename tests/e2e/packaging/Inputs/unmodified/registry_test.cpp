#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
void registry_add(const std::string &k, int v, bool locked);
int main(int argc, char **argv) {
  bool locked = !(argc > 1 && !std::strcmp(argv[1], "racy"));
  std::thread a([&] { for (int i = 0; i < 1000; i++) registry_add("a" + std::to_string(i), i, locked); });
  for (int i = 0; i < 1000; i++) registry_add("b" + std::to_string(i), i, locked);
  a.join();
  std::printf("DONE\n");
}
