// List pagination per API.md §3: query parameters → PageRequest, and the list envelope.
#pragma once

#include <cstdint>

#include "api/rest/http.h"

namespace attune::rest {

enum class SortOrder { kDesc, kAsc };  // desc = newest first (created, then id)

inline constexpr int64_t kDefaultPageSize = 50;
inline constexpr int64_t kMaxPageSize = 100;

struct PageRequest {
  int64_t page = 1;                   // 1-based, as reported back to the client
  int64_t page_size = kDefaultPageSize;  // 1..kMaxPageSize
  int64_t offset = 0;                 // rows to skip; always consistent with page/page_size
  SortOrder order = SortOrder::kDesc;
};

// Reads `page`, `page_size` (aliases `per_page`, `limit`; the first present in that order wins),
// `offset` and `order` (asc|desc, case-insensitive). page < 1 ⇒ 1; page_size clamped to 1..100;
// offset < 0 ⇒ 0; an offset overrides page and the reported page is offset/page_size + 1.
// kBadRequest naming the parameter for non-integer values or an unknown order.
Result<PageRequest> parse_page_request(const HttpRequest& req);

// {"items": items, "data": items, "pagination": {page, page_size, total_items, total_pages,
// has_previous, has_next}}. `items` must be an array (a page of rows selected with `page`).
Json list_envelope(Json items, const PageRequest& page, int64_t total);

}  // namespace attune::rest
