// Base64 codec of sealed values: scalar table-driven encode/decode and an AVX2 decoder (the
// vectorised classification and packing of Muła and Lemire, "Faster Base64 Encoding and Decoding
// using AVX2 Instructions", 2018).
#include "processors/keystore/base64.h"

#include <immintrin.h>

#include <array>
#include <cstdint>

namespace attune::keystore {
namespace {

constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr uint32_t kBad = 0xffffffffu;

const std::array<uint32_t, 256>& table() {
  static const auto t = [] {
    std::array<uint32_t, 256> out{};
    out.fill(kBad);
    for (uint32_t i = 0; i < 64; ++i) out[static_cast<unsigned char>(kChars[i])] = i;
    return out;
  }();
  return t;
}

// Decodes `groups` unpadded 4-character groups; false on a character outside the alphabet.
bool decode_groups(const unsigned char* src, size_t groups, unsigned char* dst) {
  const auto& t = table();
  uint32_t bad = 0;
  for (size_t g = 0; g < groups; ++g, src += 4, dst += 3) {
    const uint32_t a = t[src[0]], b = t[src[1]], c = t[src[2]], d = t[src[3]];
    bad |= a | b | c | d;
    const uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
    dst[0] = static_cast<unsigned char>(v >> 16);
    dst[1] = static_cast<unsigned char>(v >> 8);
    dst[2] = static_cast<unsigned char>(v);
  }
  return (bad & ~63u) == 0;
}

size_t padding(std::string_view in) {
  return in.back() != '=' ? 0 : in[in.size() - 2] == '=' ? 2 : 1;
}

// The last group, which may carry 1 or 2 padding characters.
bool decode_last(const unsigned char* src, size_t pad, unsigned char* dst) {
  const auto& t = table();
  const uint32_t a = t[src[0]], b = t[src[1]];
  const uint32_t c = pad >= 2 ? 0 : t[src[2]], d = pad >= 1 ? 0 : t[src[3]];
  if ((a | b | c | d) & ~63u) return false;
  const uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
  dst[0] = static_cast<unsigned char>(v >> 16);
  if (pad < 2) dst[1] = static_cast<unsigned char>(v >> 8);
  if (pad < 1) dst[2] = static_cast<unsigned char>(v);
  return true;
}

// 32 characters → 24 bytes, written as a 32-byte store (the caller guarantees the room).
// False when any of the 32 characters is outside the alphabet ('=' included).
__attribute__((target("avx2"))) bool decode32_avx2(const unsigned char* src, unsigned char* dst) {
  const __m256i lut_lo =
      _mm256_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B,
                       0x1B, 0x1B, 0x1A, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                       0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A);
  const __m256i lut_hi =
      _mm256_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10,
                       0x10, 0x10, 0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10,
                       0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
  const __m256i lut_roll =
      _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 19, 4, -65,
                       -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i mask_2f = _mm256_set1_epi8(0x2f);

  __m256i str = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
  // Classify by nibbles: a character is valid iff its low- and high-nibble classes share no bit.
  const __m256i hi_nibbles = _mm256_and_si256(_mm256_srli_epi32(str, 4), mask_2f);
  const __m256i lo_nibbles = _mm256_and_si256(str, mask_2f);
  const __m256i hi = _mm256_shuffle_epi8(lut_hi, hi_nibbles);
  const __m256i lo = _mm256_shuffle_epi8(lut_lo, lo_nibbles);
  if (!_mm256_testz_si256(lo, hi)) return false;
  // Map to 6-bit values: add a per-range delta ('/' is the one character needing its own).
  const __m256i eq_2f = _mm256_cmpeq_epi8(str, mask_2f);
  const __m256i roll = _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(eq_2f, hi_nibbles));
  str = _mm256_add_epi8(str, roll);
  // Pack 4 × 6 bits into 3 bytes per group, then the 12 bytes of each lane together.
  const __m256i merged_ab_bc = _mm256_maddubs_epi16(str, _mm256_set1_epi32(0x01400140));
  __m256i out = _mm256_madd_epi16(merged_ab_bc, _mm256_set1_epi32(0x00011000));
  out = _mm256_shuffle_epi8(
      out, _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2, 1, 0, 6, 5,
                            4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
  out = _mm256_permutevar8x32_epi32(out, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, -1, -1));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), out);
  return true;
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

}  // namespace

void base64_encode(const unsigned char* in, size_t n, std::string& out) {
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    out += kChars[v >> 18];
    out += kChars[(v >> 12) & 63];
    out += kChars[(v >> 6) & 63];
    out += kChars[v & 63];
  }
  if (i + 1 == n) {
    const uint32_t v = uint32_t{in[i]} << 16;
    out += kChars[v >> 18];
    out += kChars[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == n) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8);
    out += kChars[v >> 18];
    out += kChars[(v >> 12) & 63];
    out += kChars[(v >> 6) & 63];
    out += '=';
  }
}

size_t base64_decoded_size(std::string_view in) {
  if (in.empty()) return 0;
  if (in.size() % 4 != 0) return std::string_view::npos;
  return in.size() / 4 * 3 - padding(in);
}

bool base64_decode_scalar(std::string_view in, unsigned char* out) {
  if (in.empty()) return true;
  if (in.size() % 4 != 0) return false;
  const auto* src = reinterpret_cast<const unsigned char*>(in.data());
  const size_t groups = in.size() / 4 - 1;  // every group but the last, which may be padded
  return decode_groups(src, groups, out) &&
         decode_last(src + groups * 4, padding(in), out + groups * 3);
}

bool base64_decode_avx2_available() { return has_avx2(); }

bool base64_decode_avx2(std::string_view in, unsigned char* out) {
  if (!has_avx2()) return false;
  if (in.empty()) return true;
  if (in.size() % 4 != 0) return false;
  const auto* src = reinterpret_cast<const unsigned char*>(in.data());
  const size_t pad = padding(in);
  const size_t total = in.size() / 4 * 3 - pad;
  size_t groups = in.size() / 4 - 1;
  // Each step stores 32 bytes for 24 decoded ones: stay 8 bytes short of the end of `out`.
  size_t written = 0;
  while (groups >= 8 && written + 32 <= total) {
    if (!decode32_avx2(src, out + written)) return false;
    src += 32;
    written += 24;
    groups -= 8;
  }
  return decode_groups(src, groups, out + written) &&
         decode_last(src + groups * 4, pad, out + written + groups * 3);
}

bool base64_decode(std::string_view in, unsigned char* out) {
  return has_avx2() ? base64_decode_avx2(in, out) : base64_decode_scalar(in, out);
}

}  // namespace attune::keystore
