// Hashing helpers shared by the layers.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace attune {

// Hash for unordered containers keyed by std::string that are looked up by std::string_view
// without building a string (use with std::equal_to<>).
struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace attune
