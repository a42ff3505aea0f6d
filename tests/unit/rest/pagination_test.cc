// Pagination parameters (table-driven) and the list envelope.
#include "api/rest/pagination.h"

#include <gtest/gtest.h>

#include <limits>

namespace attune::rest {
namespace {

HttpRequest with_query(std::multimap<std::string, std::string> query) {
  HttpRequest req;
  req.query = std::move(query);
  return req;
}

TEST(PageRequestTest, ValidTable) {
  struct Case {
    std::multimap<std::string, std::string> query;
    int64_t page, page_size, offset;
    SortOrder order;
  };
  const Case cases[] = {
      {{}, 1, 50, 0, SortOrder::kDesc},
      {{{"page", "3"}}, 3, 50, 100, SortOrder::kDesc},
      {{{"page", "0"}}, 1, 50, 0, SortOrder::kDesc},
      {{{"page", "-4"}}, 1, 50, 0, SortOrder::kDesc},
      {{{"page", "+2"}}, 2, 50, 50, SortOrder::kDesc},
      {{{"page_size", "10"}, {"page", "2"}}, 2, 10, 10, SortOrder::kDesc},
      {{{"page_size", "0"}}, 1, 1, 0, SortOrder::kDesc},
      {{{"page_size", "1000"}}, 1, 100, 0, SortOrder::kDesc},
      {{{"per_page", "7"}}, 1, 7, 0, SortOrder::kDesc},
      {{{"limit", "5"}}, 1, 5, 0, SortOrder::kDesc},
      // First present in the order page_size, per_page, limit wins.
      {{{"limit", "5"}, {"per_page", "7"}}, 1, 7, 0, SortOrder::kDesc},
      {{{"limit", "5"}, {"per_page", "7"}, {"page_size", "9"}}, 1, 9, 0, SortOrder::kDesc},
      // offset overrides page; reported page = offset / page_size + 1.
      {{{"offset", "25"}, {"page_size", "10"}, {"page", "9"}}, 3, 10, 25, SortOrder::kDesc},
      {{{"offset", "0"}, {"page", "9"}}, 1, 50, 0, SortOrder::kDesc},
      {{{"offset", "-3"}}, 1, 50, 0, SortOrder::kDesc},
      {{{"order", "asc"}}, 1, 50, 0, SortOrder::kAsc},
      {{{"order", "ASC"}}, 1, 50, 0, SortOrder::kAsc},
      {{{"order", "desc"}}, 1, 50, 0, SortOrder::kDesc},
  };
  for (const Case& c : cases) {
    const Json q = c.query;
    auto r = parse_page_request(with_query(c.query));
    ASSERT_TRUE(r.ok()) << q << ": " << r.error().message;
    EXPECT_EQ(r->page, c.page) << q;
    EXPECT_EQ(r->page_size, c.page_size) << q;
    EXPECT_EQ(r->offset, c.offset) << q;
    EXPECT_EQ(r->order, c.order) << q;
  }
}

TEST(PageRequestTest, InvalidTable) {
  struct Case {
    std::multimap<std::string, std::string> query;
    std::string message;
  };
  const Case cases[] = {
      {{{"page", "x"}}, "Invalid query parameter 'page': expected an integer, got 'x'"},
      {{{"page", ""}}, "Invalid query parameter 'page': expected an integer, got ''"},
      {{{"page", "1.5"}}, "Invalid query parameter 'page': expected an integer, got '1.5'"},
      {{{"page", "2x"}}, "Invalid query parameter 'page': expected an integer, got '2x'"},
      {{{"page_size", "ten"}}, "Invalid query parameter 'page_size': expected an integer, got 'ten'"},
      {{{"per_page", "-"}}, "Invalid query parameter 'per_page': expected an integer, got '-'"},
      {{{"limit", " 5"}}, "Invalid query parameter 'limit': expected an integer, got ' 5'"},
      {{{"offset", "99999999999999999999"}},
       "Invalid query parameter 'offset': expected an integer, got '99999999999999999999'"},
      {{{"order", "newest"}},
       "Invalid query parameter 'order': expected 'asc' or 'desc', got 'newest'"},
  };
  for (const Case& c : cases) {
    auto r = parse_page_request(with_query(c.query));
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.error().code, Errc::kBadRequest);
    EXPECT_EQ(r.error().message, c.message);
  }
}

TEST(PageRequestTest, HugePageSaturatesInsteadOfOverflowing) {
  auto r = parse_page_request(with_query({{"page", "9223372036854775807"}, {"page_size", "100"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r->offset, 0);
  EXPECT_LE(r->offset, std::numeric_limits<int64_t>::max() - 100);
}

TEST(ListEnvelopeTest, Shape) {
  PageRequest page;
  page.page = 2;
  page.page_size = 2;
  page.offset = 2;
  const Json items = Json::array({Json{{"id", 3}}, Json{{"id", 4}}});
  const Json env = list_envelope(items, page, 5);
  EXPECT_EQ(env["items"], items);
  EXPECT_EQ(env["data"], items);
  EXPECT_EQ(env["pagination"], (Json{{"page", 2},
                                      {"page_size", 2},
                                      {"total_items", 5},
                                      {"total_pages", 3},
                                      {"has_previous", true},
                                      {"has_next", true}}));
}

TEST(ListEnvelopeTest, EdgesTable) {
  struct Case {
    int64_t page, page_size, offset, total, total_pages;
    bool has_previous, has_next;
  };
  const Case cases[] = {
      {1, 50, 0, 0, 0, false, false},      // empty
      {1, 50, 0, 50, 1, false, false},     // exactly one page
      {1, 50, 0, 51, 2, false, true},      //
      {2, 50, 50, 51, 2, true, false},     // last page
      {9, 50, 400, 51, 2, true, false},    // past the end: empty, totals still right
      {1, 10, 5, 30, 3, true, true},       // offset inside page 1
  };
  for (const Case& c : cases) {
    PageRequest page;
    page.page = c.page;
    page.page_size = c.page_size;
    page.offset = c.offset;
    const Json p = list_envelope(Json::array(), page, c.total)["pagination"];
    EXPECT_EQ(p["page"], c.page);
    EXPECT_EQ(p["total_items"], c.total);
    EXPECT_EQ(p["total_pages"], c.total_pages) << p;
    EXPECT_EQ(p["has_previous"], c.has_previous) << p;
    EXPECT_EQ(p["has_next"], c.has_next) << p;
  }
}

}  // namespace
}  // namespace attune::rest
