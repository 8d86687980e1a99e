// Real template-heavy third-party headers (boost unordered, nlohmann::json,
// fmt) compile with the plugin and behave exactly as without it. nlohmann's
// objects are std::maps, so its own code is instrumented too.
// RUN: %clangxx_mg -O0 %s -o %t.mg && %t.mg > %t.mg.out 2>&1
// RUN: %clangxx_mg -O2 %s -o %t.mg2 && %t.mg2 > %t.mg2.out 2>&1
// RUN: %clangxx_plain -O2 %s -o %t.plain && %t.plain > %t.plain.out 2>&1
// RUN: diff %t.plain.out %t.mg.out && diff %t.plain.out %t.mg2.out
// RUN: FileCheck %s < %t.mg.out
// CHECK: json: {"a":1,"b":[1,2,3],"c":{"d":"e"}}
// CHECK: boost: 3 2
// CHECK: fmt: 42 hello
// CHECK: DONE
#define FMT_HEADER_ONLY
#include <boost/unordered_map.hpp>
#include <boost/unordered_set.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <thread>

int main() {
  nlohmann::json j;
  j["a"] = 1;
  j["b"] = {1, 2, 3};
  j["c"]["d"] = "e";
  auto parsed = nlohmann::json::parse(j.dump());
  std::printf("json: %s\n", parsed.dump().c_str());
  boost::unordered_map<std::string, int> bm{{"x", 1}, {"y", 2}, {"z", 3}};
  boost::unordered_set<int> bs{1, 2};
  std::printf("boost: %zu %zu\n", bm.size(), bs.size());
  std::printf("fmt: %s\n", fmt::format("{} {}", 42, "hello").c_str());
  // Each thread builds and reads its own json objects: no report.
  std::thread t([] {
    for (int i = 0; i < 100; i++) {
      nlohmann::json o;
      o["k" + std::to_string(i)] = i;
      (void)o.dump();
    }
  });
  t.join();
  std::printf("DONE\n");
}
