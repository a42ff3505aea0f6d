// Datastore decryption cost (issue 6: "decryption adds <= 5 us per value"): read_value() of the
// same stored key, encrypted vs plaintext, side by side, for small and larger values. Reports the
// median of several rounds of N reads each, and the difference per value.
//
//   ./build/tests/bench/bench_keystore [reads_per_round=200000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "processors/keystore/keys.h"

using attune::Json;
using namespace attune::keystore;

namespace {

double ns_per_read(const Json& key, const Cipher& cipher, int n) {
  const auto t0 = std::chrono::steady_clock::now();
  size_t sink = 0;
  for (int i = 0; i < n; ++i) {
    auto v = read_value(key, cipher);
    if (!v.ok()) std::abort();
    sink += v->is_string() ? v->get_ref<const std::string&>().size() : v->size();
  }
  const auto t1 = std::chrono::steady_clock::now();
  if (sink == 42) std::puts("");
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
}

// Cipher::open alone (authenticated decryption + base64), without turning the text into JSON.
double ns_per_open(const Json& key, const Cipher& cipher, int n) {
  const std::string sealed = key[kSealedField];
  const std::string aad = key["ref"];
  const auto t0 = std::chrono::steady_clock::now();
  size_t sink = 0;
  for (int i = 0; i < n; ++i) {
    auto v = cipher.open(sealed, aad);
    if (!v.ok()) std::abort();
    sink += v->size();
  }
  const auto t1 = std::chrono::steady_clock::now();
  if (sink == 42) std::puts("");
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200000;
  const Cipher cipher("bench-secret-0123456789abcdef0123456789");
  struct Case {
    const char* name;
    Json value;
  };
  const std::vector<Case> cases = {
      {"32-byte string", std::string(32, 'x')},
      {"256-byte object", Json{{"user", "svc"}, {"password", std::string(200, 'p')}, {"port", 5432}}},
      {"4 KiB string", std::string(4096, 'y')},
  };
  std::printf("%-18s %14s %14s %14s %14s\n", "value", "plain ns/read", "sealed ns/read",
              "added us/value", "open-only ns");
  for (const auto& c : cases) {
    Json plain = {{"ref", "system.bench"}}, sealed = plain;
    set_value(plain, c.value, false, cipher);
    set_value(sealed, c.value, true, cipher);
    std::vector<double> p, s, o;
    for (int round = 0; round < 7; ++round) {
      p.push_back(ns_per_read(plain, cipher, n));
      s.push_back(ns_per_read(sealed, cipher, n));
      o.push_back(ns_per_open(sealed, cipher, n));
    }
    const double mp = median(p), ms = median(s);
    std::printf("%-18s %14.1f %14.1f %14.3f %14.1f\n", c.name, mp, ms, (ms - mp) / 1000.0,
                median(o));
  }
  return 0;
}
