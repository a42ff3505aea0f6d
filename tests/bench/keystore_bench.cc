// Datastore decryption cost (issue 6: "decryption adds <= 5 us per value"): read_value() of the
// same stored key, encrypted vs plaintext, side by side, for small and large values; and the same
// encrypted read through the previous implementation (kept below, verbatim in behaviour, for the
// comparison only), so old and new are measured in one run on the same machine state.
// Reports the median of several rounds and the difference per value.
//
//   ./build/tests/bench/bench_keystore [reads_per_round=200000]
#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "processors/keystore/keys.h"

using attune::Json;
using attune::Result;
using namespace attune::keystore;

namespace {

// --- the implementation before issue 6's optimisation (for comparison only) -------------------
// Base64 of the whole text into a zeroed vector, combined-mode decryption into a second buffer,
// and a copy of the plaintext (minus its tag byte) into the JSON string.
namespace previous {

bool b64_decode(std::string_view in, std::vector<unsigned char>& out) {
  static const auto kTable = [] {
    constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::array<uint32_t, 256> t{};
    t.fill(0xffffffffu);
    for (uint32_t i = 0; i < 64; ++i) t[static_cast<unsigned char>(kChars[i])] = i;
    return t;
  }();
  if (in.empty() || in.size() % 4 != 0) return false;
  const size_t pad = in.back() != '=' ? 0 : in[in.size() - 2] == '=' ? 2 : 1;
  out.resize(in.size() / 4 * 3 - pad);
  const auto* src = reinterpret_cast<const unsigned char*>(in.data());
  unsigned char* dst = out.data();
  const size_t groups = in.size() / 4 - 1;
  uint32_t bad = 0;
  for (size_t g = 0; g < groups; ++g, src += 4, dst += 3) {
    const uint32_t a = kTable[src[0]], b = kTable[src[1]], c = kTable[src[2]], d = kTable[src[3]];
    bad |= a | b | c | d;
    const uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
    dst[0] = static_cast<unsigned char>(v >> 16);
    dst[1] = static_cast<unsigned char>(v >> 8);
    dst[2] = static_cast<unsigned char>(v);
  }
  if (bad & ~63u) return false;
  const uint32_t a = kTable[src[0]], b = kTable[src[1]];
  const uint32_t c = pad >= 2 ? 0 : kTable[src[2]], d = pad >= 1 ? 0 : kTable[src[3]];
  if ((a | b | c | d) & ~63u) return false;
  const uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
  dst[0] = static_cast<unsigned char>(v >> 16);
  if (pad < 2) dst[1] = static_cast<unsigned char>(v >> 8);
  if (pad < 1) dst[2] = static_cast<unsigned char>(v);
  return true;
}

// The bench's key: the same derivation as Cipher (BLAKE2b of the secret under the context).
std::array<unsigned char, 32> derive(std::string_view secret) {
  constexpr std::string_view kContext = "attune.keystore.v1";
  std::array<unsigned char, 32> key{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, reinterpret_cast<const unsigned char*>(kContext.data()),
                          kContext.size(), key.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(secret.data()),
                            secret.size());
  crypto_generichash_final(&st, key.data(), key.size());
  return key;
}

bool open(const std::array<unsigned char, 32>& key, std::string_view sealed, std::string_view aad,
          std::string& plain) {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
  std::vector<unsigned char> raw;
  if (!b64_decode(sealed.substr(3), raw) || raw.size() < kNonce + kTag) return false;
  plain.assign(raw.size() - kNonce - kTag, '\0');
  unsigned long long plen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plain.data()), &plen, nullptr, raw.data() + kNonce,
          raw.size() - kNonce, reinterpret_cast<const unsigned char*>(aad.data()), aad.size(),
          raw.data(), key.data()) != 0) {
    return false;
  }
  plain.resize(static_cast<size_t>(plen));
  return true;
}

Json read_value(const std::array<unsigned char, 32>& key, const Json& k) {
  std::string plain;
  if (!open(key, k[kSealedField].get_ref<const std::string&>(),
            k["ref"].get_ref<const std::string&>(), plain)) {
    std::abort();
  }
  if (plain.front() == 's') return Json(plain.substr(1));
  return Json::from_cbor(plain.begin() + 1, plain.end(), true, false);
}

}  // namespace previous

// The floor: libsodium's authenticated decryption alone, on bytes already decoded from base64.
struct AeadOnly {
  std::array<unsigned char, 32> key;
  std::array<unsigned char, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES> nonce{};
  std::vector<unsigned char> ciphertext;  // ciphertext || tag
  std::string aad;
  std::vector<unsigned char> out;

  AeadOnly(const std::array<unsigned char, 32>& k, std::string_view sealed, std::string aad_in)
      : key(k), aad(std::move(aad_in)) {
    std::vector<unsigned char> raw;
    if (!previous::b64_decode(sealed.substr(3), raw)) std::abort();
    std::copy(raw.begin(), raw.begin() + nonce.size(), nonce.begin());
    ciphertext.assign(raw.begin() + nonce.size(), raw.end());
    out.resize(ciphertext.size());
  }
  size_t run() {
    unsigned long long n = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            out.data(), &n, nullptr, ciphertext.data(), ciphertext.size(),
            reinterpret_cast<const unsigned char*>(aad.data()), aad.size(), nonce.data(),
            key.data()) != 0) {
      std::abort();
    }
    return n;
  }
};

size_t consume(const Json& v) {
  return v.is_string() ? v.get_ref<const std::string&>().size() : v.size();
}

double ns_per(int n, const std::function<size_t()>& op) {
  const auto t0 = std::chrono::steady_clock::now();
  size_t sink = 0;
  for (int i = 0; i < n; ++i) sink += op();
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
  constexpr std::string_view kSecret = "bench-secret-0123456789abcdef0123456789";
  const Cipher cipher(kSecret);
  const auto previous_key = previous::derive(kSecret);
  struct Case {
    const char* name;
    Json value;
  };
  const std::vector<Case> cases = {
      {"32 B string", std::string(32, 'x')},
      {"256 B string", std::string(256, 'z')},
      {"256 B object", Json{{"user", "svc"}, {"password", std::string(200, 'p')}, {"port", 5432}}},
      {"4 KiB string", std::string(4096, 'y')},
      {"64 KiB string", std::string(65536, 'w')},
  };
  std::printf("%-14s %9s | %12s %11s %11s | %12s %11s %11s | %10s\n", "value", "plain ns",
              "sealed ns", "added us", "open-only", "prev sealed", "prev added", "prev open",
              "aead only");
  for (const auto& c : cases) {
    // Larger values get fewer reads per round, so every case takes about as long.
    const size_t bytes = c.value.is_string() ? c.value.get_ref<const std::string&>().size() : 256;
    const int reads = std::max(1000, static_cast<int>(n / std::max<size_t>(1, bytes / 4096)));
    Json plain = {{"ref", "system.bench"}}, sealed = plain;
    set_value(plain, c.value, false, cipher);
    set_value(sealed, c.value, true, cipher);
    if (*read_value(sealed, cipher) != c.value ||
        previous::read_value(previous_key, sealed) != c.value) {
      std::fprintf(stderr, "%s: round trip mismatch\n", c.name);
      return 1;
    }
    const std::string text = sealed[kSealedField];
    const std::string aad = sealed["ref"];
    AeadOnly aead(previous_key, text, aad);
    std::vector<double> p, s, o, ps, po, a;
    for (int round = 0; round < 7; ++round) {
      p.push_back(ns_per(reads, [&] { return consume(*read_value(plain, cipher)); }));
      s.push_back(ns_per(reads, [&] { return consume(*read_value(sealed, cipher)); }));
      o.push_back(ns_per(reads, [&] { return cipher.open(text, aad)->size(); }));
      ps.push_back(
          ns_per(reads, [&] { return consume(previous::read_value(previous_key, sealed)); }));
      po.push_back(ns_per(reads, [&] {
        std::string out;
        if (!previous::open(previous_key, text, aad, out)) std::abort();
        return out.size();
      }));
      a.push_back(ns_per(reads, [&] { return aead.run(); }));
    }
    const double mp = median(p), ms = median(s), mps = median(ps);
    std::printf("%-14s %9.1f | %12.1f %11.3f %11.1f | %12.1f %11.3f %11.1f | %10.1f\n", c.name, mp,
                ms, (ms - mp) / 1000.0, median(o), mps, (mps - mp) / 1000.0, median(po), median(a));
  }
  return 0;
}
