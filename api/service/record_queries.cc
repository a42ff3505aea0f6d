#include "api/service/record_queries.h"

#include "topology/core/time.h"

namespace attune::service {

using detail::data;
using detail::error;

projections::Page to_page(const rest::PageRequest& p) {
  return projections::Page{p.offset, p.page_size, p.order == rest::SortOrder::kDesc};
}

// Reads an optional integer query parameter; a non-numeric value is a 400.
std::optional<rest::HttpResponse> int_param(const rest::HttpRequest& req, const char* name,
                                            std::optional<int64_t>& out) {
  auto v = req.query_param(name);
  if (!v || v->empty()) return std::nullopt;
  if (!detail::all_digits(*v)) {
    return error(Errc::kBadRequest, std::string("Query parameter '") + name + "' must be an integer");
  }
  out = std::stoll(*v);
  return std::nullopt;
}

std::optional<rest::HttpResponse> time_param(const rest::HttpRequest& req, const char* name,
                                             std::optional<int64_t>& out) {
  auto v = req.query_param(name);
  if (!v || v->empty()) return std::nullopt;
  auto ms = parse_rfc3339_ms(*v);
  if (!ms) {
    return error(Errc::kBadRequest,
                 std::string("Query parameter '") + name + "' must be an RFC 3339 timestamp");
  }
  out = *ms;
  return std::nullopt;
}

std::optional<std::string> str_param(const rest::HttpRequest& req, const char* name) {
  auto v = req.query_param(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}


rest::HttpResponse get_record(ServiceContext& s, Call& c, std::string_view entity,
                              std::string_view label, const RowLookup& lookup) {
  const std::string& id = c.req.params["id"];
  const std::string missing = std::string(label) + " " + id;
  if (!detail::all_digits(id)) return error(Errc::kNotFound, missing + " not found");
  auto row = lookup(std::stoll(id));
  if (!row.ok()) return rest::HttpResponse::error(row.error());
  if (!row->has_value()) return error(Errc::kNotFound, missing + " not found");
  if (auto refused = c.check_record(missing, entity, **row)) return *refused;
  auto reveal = s.reveal_secrets(c, c.access.resource(), **row, entity);
  if (!reveal.ok()) return rest::HttpResponse::error(reveal.error());
  s.present_row(entity, **row, *reveal);
  return data(200, std::move(**row));
}

}  // namespace attune::service
