// Random secret material: URL-safe random strings (webhook keys, generated passwords) and secret
// files created once with mode 0600 and re-read on later starts (API.md §1).
#pragma once

#include <cstddef>
#include <string>

#include "topology/core/result.h"

namespace attune::auth {

// `chars` characters drawn uniformly from [A-Za-z0-9_-] by libsodium's CSPRNG (6 bits each).
std::string random_urlsafe(size_t chars);

// Returns the secret stored at `path` (trailing whitespace/newlines trimmed). If the file does
// not exist, creates it with mode 0600 holding random_urlsafe(chars) plus a newline: written to
// a temporary file, fsynced, then link()ed into place so readers never see a partial file and two
// racing processes agree on one secret. Errors: kInternal with the path and errno text for I/O
// failures; kValidation if an existing file is empty.
Result<std::string> load_or_create_secret(const std::string& path, size_t chars);

}  // namespace attune::auth
