// Pagination parameter parsing and the list envelope.
#include "api/rest/pagination.h"

#include <strings.h>

#include <algorithm>
#include <charconv>
#include <limits>

namespace attune::rest {
namespace {

Result<std::optional<int64_t>> int_param(const HttpRequest& req, std::string_view name) {
  const auto text = req.query_param(name);
  if (!text) return std::optional<int64_t>();
  int64_t value = 0;
  const char* begin = text->data();
  const char* end = begin + text->size();
  if (!text->empty() && *begin == '+') ++begin;
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (text->empty() || ec != std::errc() || ptr != end) {
    return make_error(Errc::kBadRequest, "Invalid query parameter '" + std::string(name) +
                                             "': expected an integer, got '" + *text + "'");
  }
  return std::optional<int64_t>(value);
}

}  // namespace

Result<PageRequest> parse_page_request(const HttpRequest& req) {
  PageRequest out;

  for (const std::string_view name : {"page_size", "per_page", "limit"}) {
    if (!req.query_param(name)) continue;
    auto size = int_param(req, name);
    if (!size.ok()) return size.error();
    out.page_size = std::clamp<int64_t>(**size, 1, kMaxPageSize);
    break;
  }

  auto page = int_param(req, "page");
  if (!page.ok()) return page.error();
  if (*page) out.page = std::max<int64_t>(**page, 1);

  auto offset = int_param(req, "offset");
  if (!offset.ok()) return offset.error();
  if (*offset) {
    out.offset = std::max<int64_t>(**offset, 0);
    out.page = out.offset / out.page_size + 1;
  } else {
    // Saturate instead of overflowing for absurd page numbers: such a page is simply empty.
    const int64_t max_page = std::numeric_limits<int64_t>::max() / out.page_size;
    out.page = std::min(out.page, max_page);
    out.offset = (out.page - 1) * out.page_size;
  }

  if (const auto order = req.query_param("order")) {
    if (::strcasecmp(order->c_str(), "desc") == 0) {
      out.order = SortOrder::kDesc;
    } else if (::strcasecmp(order->c_str(), "asc") == 0) {
      out.order = SortOrder::kAsc;
    } else {
      return make_error(Errc::kBadRequest, "Invalid query parameter 'order': expected 'asc' or "
                                           "'desc', got '" + *order + "'");
    }
  }
  return out;
}

Json list_envelope(Json items, const PageRequest& page, int64_t total) {
  total = std::max<int64_t>(total, 0);
  const int64_t total_pages = (total + page.page_size - 1) / page.page_size;
  Json pagination = {
      {"page", page.page},
      {"page_size", page.page_size},
      {"total_items", total},
      {"total_pages", total_pages},
      {"has_previous", page.offset > 0},
      {"has_next", page.offset < total - page.page_size},
  };
  Json out = Json::object();
  out["data"] = items;
  out["items"] = std::move(items);
  out["pagination"] = std::move(pagination);
  return out;
}

}  // namespace attune::rest
