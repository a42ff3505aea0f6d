// Runtimes (API.md §6): read-only, pack-scoped like every definition.
#include "api/rest/pagination.h"
#include "api/service/service.h"

namespace attune::service {

using Resp = rest::HttpResponse;

void register_runtime_routes(RouteTable& t, ServiceContext& s) {
  t.add("GET", "/api/v1/runtimes", Access::to("runtimes", "read"), [&s](Call& c) {
    auto page = rest::parse_page_request(c.req);
    if (!page.ok()) return Resp::error(page.error());
    return Resp::json(200, detail::sorted_page(s.visible_definitions(c, "runtime", {}), *page));
  });
  t.add("GET", "/api/v1/runtimes/{ref}", Access::to("runtimes", "read"),
        [&s](Call& c) { return s.get_definition(c, "runtime", "Runtime"); });
}

}  // namespace attune::service
