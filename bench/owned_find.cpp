// The owned fast path's cost, counted (bench/instructions.py): a loop of
// unordered_map::find on a map only this thread uses, N finds. Run at two N
// under callgrind and differenced, so start-up cancels out.
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

__attribute__((noinline)) long lookups(const std::unordered_map<int, int> &m, long n) {
  long hits = 0;
  for (long i = 0; i < n; i++) {
    auto it = m.find(int(i & 1023));
    if (it != m.end()) hits += it->second;
  }
  return hits;
}

int main(int argc, char **argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 100000;
  std::unordered_map<int, int> m;
  for (int i = 0; i < 512; i++) m[i * 2] = i;
  std::printf("hits %ld\n", lookups(m, n));
  return 0;
}
