// The built-in `core` pack: its files (api/packs/core/) are compiled into the binary and installed
// at start through the ordinary pack installer, like any pack.
#pragma once

#include <filesystem>
#include <string>

#include "topology/core/result.h"

namespace attune::packs {

// SHA-256 of the embedded files (changes whenever a file of the core pack does).
std::string core_files_hash();

// Writes the embedded files under `dest` (created); "@CONTENT_HASH@" in pack.yaml becomes `hash`.
Status write_core_files(const std::filesystem::path& dest, const std::string& hash);

}  // namespace attune::packs
