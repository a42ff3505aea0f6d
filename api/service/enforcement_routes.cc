// Enforcements (API.md §10): read-only, visible with their rule's pack (record scopes, §16.3).
#include "api/service/record_queries.h"
#include "api/service/service.h"

namespace attune::service {

using detail::data;
using detail::error;
using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;

namespace {

Resp list_enforcements(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  projections::EnforcementFilter filter;
  if (auto e = int_param(req, "rule", filter.rule)) return *e;
  if (!filter.rule) {
    if (auto e = int_param(req, "rule_id", filter.rule)) return *e;
  }
  filter.rule_ref = str_param(req, "rule_ref");
  if (auto e = int_param(req, "event", filter.event)) return *e;
  filter.status = str_param(req, "status");
  filter.trigger_ref = str_param(req, "trigger_ref");
  if (auto e = time_param(req, "created_after", filter.created_after)) return *e;
  filter.scopes = readable_scopes(c, "enforcements");
  auto res = s.views.list_enforcements(filter, to_page(*page));
  if (!res.ok()) return Resp::error(res.error());
  Json body = rest::list_envelope(std::move(res->items), *page, res->total);
  s.present_list("enforcement", body);
  return Resp::json(200, body);
}


Resp get_enforcement(ServiceContext& s, Call& c) {
  return get_record(s, c, "enforcement", "Enforcement",
                    [&s](int64_t id) { return s.views.get_enforcement(id); });
}

Resp enforcement_executions(ServiceContext& s, Call& c) {
  Req& req = c.req;
  const std::string& id = req.params["id"];
  auto enf = detail::all_digits(id) ? s.views.get_enforcement(std::stoll(id))
                                    : Result<std::optional<Json>>(std::optional<Json>());
  if (!enf.ok()) return Resp::error(enf.error());
  if (!enf->has_value()) {
    return error(Errc::kNotFound, "Enforcement " + id + " not found");
  }
  if (auto refused = c.check_record("Enforcement " + id, "enforcement", **enf)) return *refused;
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  projections::ExecutionFilter filter;
  filter.enforcement = std::stoll(id);
  filter.scopes = readable_scopes(c, "executions");
  auto res = s.views.list_executions(filter, to_page(*page));
  if (!res.ok()) return Resp::error(res.error());
  Json body = rest::list_envelope(std::move(res->items), *page, res->total);
  s.present_list("execution", body);
  return Resp::json(200, body);
}

}  // namespace

void register_enforcement_routes(RouteTable& t, ServiceContext& s) {
  const std::string v1 = "/api/v1/enforcements";
  t.add("GET", v1, Access::to("enforcements", "read"),
        [&s](Call& c) { return list_enforcements(s, c); });
  t.add("GET", v1 + "/{id}", Access::to("enforcements", "read"),
        [&s](Call& c) { return get_enforcement(s, c); });
  t.add("GET", v1 + "/{id}/executions", Access::to("executions", "read"),
        [&s](Call& c) { return enforcement_executions(s, c); });
}

}  // namespace attune::service
