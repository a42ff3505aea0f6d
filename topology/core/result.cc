#include "topology/core/result.h"

namespace attune {

const char* errc_name(Errc c) {
  switch (c) {
    case Errc::kBadRequest: return "BAD_REQUEST";
    case Errc::kUnauthorized: return "UNAUTHORIZED";
    case Errc::kForbidden: return "FORBIDDEN";
    case Errc::kNotFound: return "NOT_FOUND";
    case Errc::kConflict: return "CONFLICT";
    case Errc::kValidation: return "VALIDATION_ERROR";
    case Errc::kTooManyRequests: return "TOO_MANY_REQUESTS";
    case Errc::kUnavailable: return "RETRYABLE_DATABASE_ERROR";
    case Errc::kInternal: return "INTERNAL_ERROR";
  }
  return "INTERNAL_ERROR";
}

int errc_http_status(Errc c) {
  switch (c) {
    case Errc::kBadRequest: return 400;
    case Errc::kUnauthorized: return 401;
    case Errc::kForbidden: return 403;
    case Errc::kNotFound: return 404;
    case Errc::kConflict: return 409;
    case Errc::kValidation: return 422;
    case Errc::kTooManyRequests: return 429;
    case Errc::kUnavailable: return 503;
    case Errc::kInternal: return 500;
  }
  return 500;
}

}  // namespace attune
