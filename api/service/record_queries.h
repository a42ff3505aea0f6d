// What the events, enforcements and executions routes units share: query parameters, pages, and
// the GET of one id-addressed row with its visibility (§16.3) and secret (§16.4) checks.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "api/projections/projections.h"
#include "api/rest/pagination.h"
#include "api/service/context.h"

namespace attune::service {

projections::Page to_page(const rest::PageRequest& p);
// An optional integer query parameter; a non-numeric value is a 400.
std::optional<rest::HttpResponse> int_param(const rest::HttpRequest& req, const char* name,
                                            std::optional<int64_t>& out);
// An optional RFC 3339 query parameter (epoch ms); an invalid one is a 400.
std::optional<rest::HttpResponse> time_param(const rest::HttpRequest& req, const char* name,
                                             std::optional<int64_t>& out);
std::optional<std::string> str_param(const rest::HttpRequest& req, const char* name);

// GET /<entity>s/{id}: 404 when absent or not readable by the caller, the
// include_secret_values check (needs <resource>:decrypt on the row's pack), then the row as
// presented (redacted unless revealed).
using RowLookup = std::function<Result<std::optional<Json>>(int64_t)>;
rest::HttpResponse get_record(ServiceContext& s, Call& c, std::string_view entity,
                              std::string_view label, const RowLookup& lookup);

// The scopes whose rows of `resource` the caller may read (the lists' `scopes` filter).
inline std::vector<std::string> readable_scopes(const Call& c, std::string_view resource) {
  return c.can().record_scopes(resource);
}

}  // namespace attune::service
