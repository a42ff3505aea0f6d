// multipart/form-data request bodies (RFC 7578), e.g. POST /api/v1/packs/upload.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "topology/core/result.h"

namespace attune::rest {

struct FormPart {
  std::string filename;  // empty for plain fields
  std::string content_type;
  std::string data;
};

// The parts of a multipart/form-data body by field name (the first of repeated names).
// `content_type` is the request's Content-Type header (it carries the boundary). Errors
// (kBadRequest): not multipart/form-data, no boundary, a malformed or unterminated body.
Result<std::map<std::string, FormPart>> parse_multipart(std::string_view content_type,
                                                        std::string_view body);

}  // namespace attune::rest
