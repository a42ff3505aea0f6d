// UTF-8 helpers for captured process output (API.md §11.5: invalid UTF-8 is replaced, truncation
// happens on a character boundary).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace attune::runners {

// Returns `text` with every ill-formed UTF-8 sequence (including overlongs, surrogates and code
// points above U+10FFFF) replaced by U+FFFD, one replacement per maximal invalid subpart.
std::string sanitize_utf8(std::string_view text);

// The largest n <= max_bytes such that text[0, n) does not end inside a multi-byte sequence that
// is complete in `text`. Cuts only ever move backwards, by at most 3 bytes.
size_t utf8_cut(std::string_view text, size_t max_bytes);

}  // namespace attune::runners
