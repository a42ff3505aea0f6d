// A pack directory → tar.gz bytes in memory (libarchive stays in pack_archive.cc), for
// POST /api/v1/packs/upload (files at the archive root, API.md §8).
#pragma once

#include <string>

namespace attune::cli::client {

// Regular files (symlinks followed) and directories under `dir`, paths relative to it, modes kept,
// sorted for a stable archive. Returns false and sets *error when a file cannot be read.
bool archive_directory(const std::string& dir, std::string* tar_gz, std::string* error);

}  // namespace attune::cli::client
