// Safe extraction of uploaded pack archives (tar, tar.gz): no entry may escape the destination
// (absolute paths, `..`, symlinks pointing outside), and the archive may not expand past a limit.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "topology/core/result.h"

namespace attune::packs {

struct ExtractLimits {
  int64_t max_unpacked_bytes = 512LL << 20;  // sum of file sizes; beyond ⇒ kTooLarge
  int64_t max_entries = 100000;
};

// Why an extraction failed, with the HTTP status it answers (400 bad archive, 413 too large).
struct ExtractError {
  int status = 400;
  std::string message;
};

// Extracts `data` into `dest` (an existing, empty directory). Regular files keep their executable
// bits (0755/0644); directories are 0755; symlinks are kept only when they stay inside `dest`;
// hard links, devices and fifos are refused. On error `dest` may hold part of the archive: the
// caller removes it.
bool extract_archive(std::string_view data, const std::filesystem::path& dest,
                     const ExtractLimits& limits, ExtractError& error);

// The pack root inside an extracted archive: `dest` itself when it holds pack.yaml, else its one
// top-level directory when that holds it; empty when neither.
std::filesystem::path pack_root_of(const std::filesystem::path& dest);

}  // namespace attune::packs
