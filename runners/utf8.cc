// UTF-8 sanitising and boundary-aware cutting for captured output.
#include "runners/utf8.h"

#include <cstdint>

namespace attune::runners {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Decodes the sequence starting at text[i]. Returns its length if well-formed (Unicode Table
// 3-7); otherwise returns 0 and sets *skip to the length of the maximal invalid subpart (>= 1).
size_t valid_sequence_length(std::string_view text, size_t i, size_t* skip) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t c = b(i);
  *skip = 1;
  if (c < 0x80) return 1;
  size_t len = 0;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k < len; ++k) {
    if (i + k >= text.size()) return 0;
    const uint8_t lower = k == 1 ? lo : 0x80;
    const uint8_t upper = k == 1 ? hi : 0xBF;
    if (b(i + k) < lower || b(i + k) > upper) return 0;
    *skip = k + 1;
  }
  return len;
}

}  // namespace

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t skip = 1;
    const size_t len = valid_sequence_length(text, i, &skip);
    if (len > 0) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out.append(kReplacement);
      i += skip;
    }
  }
  return out;
}

size_t utf8_cut(std::string_view text, size_t max_bytes) {
  if (max_bytes >= text.size()) return text.size();
  // text[max_bytes] is the first byte dropped; if it is a continuation byte, the character
  // it belongs to straddles the cut: move back to that character's lead byte.
  size_t n = max_bytes;
  for (int k = 0; k < 3 && n > 0 && (static_cast<uint8_t>(text[n]) & 0xC0) == 0x80; ++k) --n;
  if ((static_cast<uint8_t>(text[n]) & 0xC0) == 0x80) return max_bytes;  // not UTF-8 anyway
  return n;
}

}  // namespace attune::runners
