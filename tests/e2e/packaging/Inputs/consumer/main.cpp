#include <map>
#include <thread>
// Two threads write one map with no lock: a consumer project's race.
int main() {
  std::map<int, int> m;
  auto fill = [&m](int base) {
    for (int i = 0; i < 200000; i++) m[base + i % 1000] = i;
  };
  std::thread a(fill, 0), b(fill, 5000);
  a.join();
  b.join();
}
