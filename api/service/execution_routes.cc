// Executions (API.md §11): lists, stats and GET limited to the rows the caller may read (record
// scopes, §16.3); execute needs actions:execute on the action, cancel executions:cancel.
#include <algorithm>
#include <mutex>

#include "api/service/fields.h"
#include "api/service/record_queries.h"
#include "api/service/service.h"
#include "processors/admission/policy.h"
#include "processors/expr/param_schema.h"

namespace attune::service {

using detail::data;
using detail::error;
using detail::validation;
using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;

namespace {

std::optional<rest::HttpResponse> execution_filter(const rest::HttpRequest& req,
                                                   projections::ExecutionFilter& filter,
                                                   std::optional<std::string> status_override) {
  filter.action_ref = str_param(req, "action_ref");
  filter.pack_ref = str_param(req, "pack_ref");
  if (!filter.pack_ref) filter.pack_ref = str_param(req, "pack_name");
  std::optional<std::string> statuses = status_override ? status_override : str_param(req, "status");
  if (statuses) {
    size_t start = 0;
    while (start <= statuses->size()) {
      const auto comma = statuses->find(',', start);
      std::string s = statuses->substr(start, comma == std::string::npos ? std::string::npos
                                                                          : comma - start);
      s.erase(0, s.find_first_not_of(' '));
      s.erase(s.find_last_not_of(' ') + 1);
      if (!s.empty()) {
        if (projections::execution_status_rank(s) < 0) {
          return error(Errc::kBadRequest, "Unknown execution status '" + s + "'");
        }
        filter.statuses.push_back(s);
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (auto e = int_param(req, "enforcement", filter.enforcement)) return e;
  if (auto e = int_param(req, "parent", filter.parent)) return e;
  if (auto e = int_param(req, "rule", filter.rule)) return e;
  filter.rule_ref = str_param(req, "rule_ref");
  filter.trigger_ref = str_param(req, "trigger_ref");
  if (auto e = time_param(req, "created_after", filter.created_after)) return e;
  if (auto e = time_param(req, "created_before", filter.created_before)) return e;
  filter.result_contains = str_param(req, "result_contains");
  return std::nullopt;
}


Resp list_executions(ServiceContext& s, Call& c,
                                               std::optional<std::string> status_override) {
  Req& req = c.req;
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  projections::ExecutionFilter filter;
  if (auto e = execution_filter(req, filter, std::move(status_override))) return *e;
  filter.scopes = readable_scopes(c, "executions");
  auto res = s.views.list_executions(filter, to_page(*page));
  if (!res.ok()) return Resp::error(res.error());
  Json body = rest::list_envelope(std::move(res->items), *page, res->total);
  s.present_list("execution", body);
  return Resp::json(200, body);
}


Resp execution_stats(ServiceContext& s, Call& c) {
  Req& req = c.req;
  projections::ExecutionFilter filter;
  if (auto e = execution_filter(req, filter, std::nullopt)) return *e;
  filter.scopes = readable_scopes(c, "executions");
  auto stats = s.views.execution_stats(filter);
  if (!stats.ok()) return Resp::error(stats.error());
  return data(200, stats->to_json());
}


Resp get_execution(ServiceContext& s, Call& c) {
  return get_record(s, c, "execution", "Execution",
                    [&s](int64_t id) { return s.views.get_execution(id); });
}

// How long a client refused by an executions_total quota should wait: the quota counts every
// execution ever made in its scope, so only a policy change (or history retention) lifts it.
constexpr int kQuotaRetryAfterSeconds = 60;

// The 429 when the executions of the quota's scope (the projection's counters: action, pack or
// all) have reached its limit.
std::optional<Resp> quota_exceeded(ServiceContext& s, const admission::Effective& e) {
  const admission::Effective::Total& q = *e.executions_total;
  projections::ExecutionFilter filter;
  std::string what = "all actions";
  if (q.scope_type == "action") {
    filter.action_ref = q.scope_ref;
    what = "action '" + q.scope_ref + "'";
  } else if (q.scope_type == "pack") {
    filter.pack_ref = q.scope_ref;
    what = "pack '" + q.scope_ref + "'";
  }
  auto counted = s.views.list_executions(filter, projections::Page{0, 1, true});
  if (!counted.ok()) return Resp::error(counted.error());
  if (counted->total < q.limit) return std::nullopt;
  auto resp = error(Errc::kTooManyRequests, "Quota exceeded: policy " + q.policy_ref + " allows " +
                                                std::to_string(q.limit) + " executions of " + what);
  resp.headers.emplace_back("Retry-After", std::to_string(kQuotaRetryAfterSeconds));
  return resp;
}

Resp execute(ServiceContext& s, Call& c) {
  Req& req = c.req;
  const Principal* principal = &c.who();
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto action_ref = f.str("action_ref", true, 1);
  auto parameters = f.object("parameters");
  auto env_vars = f.object("env_vars");
  auto sets = f.string_array("permission_set_refs");
  auto timeout = f.integer("timeout_seconds", 1, 7 * 24 * 3600);
  // Retries of this execution alone (API.md §15): `retry`, with `max_retries` winning over its
  // count; `max_retries` alone is the default retry with that count.
  auto max_retries = f.integer("max_retries", 0, admission::kMaxRetryCount);
  std::optional<admission::RetrySpec> retry;
  if (body->contains("retry") && !(*body)["retry"].is_null()) {
    auto parsed = admission::parse_retry((*body)["retry"], "retry");
    if (parsed.ok()) {
      retry = *parsed;
    } else {
      const std::string& m = parsed.error().message;
      const auto colon = m.find(": ");
      f.fail(colon == std::string::npos ? "retry" : m.substr(0, colon),
             colon == std::string::npos ? m : m.substr(colon + 2));
    }
  }
  if (max_retries) {
    if (!retry) retry = admission::RetrySpec{};
    retry->max_retries = *max_retries;
  }
  if (env_vars) {
    for (auto it = env_vars->begin(); it != env_vars->end(); ++it) {
      if (!it.value().is_string()) f.fail("env_vars." + it.key(), "must be a string");
    }
  }
  if (!f.ok()) return validation(f.errors());
  auto action = s.defs.resolve("action", *action_ref);
  if (!action) return error(Errc::kNotFound, "Action '" + *action_ref + "' not found");
  if (auto refused = c.check_definition("Action", *action, "execute")) return *refused;
  if (sets) {
    if (auto refused = s.check_set_refs(c, Json(*sets))) return *refused;
  }
  const std::string ref = (*action)["ref"];
  if (!action->value("enabled", true)) {
    return error(Errc::kBadRequest, "Action '" + ref + "' is disabled");
  }
  Json errors = Json::object();
  auto params = expr::validate_parameters(action->value("param_schema", Json::object()),
                                        parameters ? *parameters : Json::object(), errors);
  if (!params) return validation(errors);

  // An executions_total quota (API.md §15) is checked and the execution written under one lock,
  // so that this instance's concurrent requests cannot pass it together.
  static std::mutex quota_mu;
  std::unique_lock<std::mutex> quota_lock(quota_mu, std::defer_lock);
  const admission::Effective effective =
      admission::resolve(s.defs.list(admission::kPolicyKind), ref, detail::pack_ref_of(*action));
  if (effective.executions_total) {
    quota_lock.lock();
    if (auto refused = quota_exceeded(s, effective)) return *refused;
  }

  const std::string now = s.now_str();
  const int64_t id = s.ids.next();
  Json execution = {{"id", id},
                    {"action", (*action)["id"]},
                    {"action_ref", ref},
                    {"pack_ref", (*action)["pack_ref"]},
                    {"config", *params},
                    {"env_vars", env_vars ? *env_vars : Json::object()},
                    {"parent", nullptr},
                    {"enforcement", nullptr},
                    {"rule", nullptr},
                    {"rule_ref", nullptr},
                    {"trigger_ref", nullptr},
                    {"executor", principal->id},
                    {"worker", nullptr},
                    {"permission_set_refs", sets ? *sets : Json::array()},
                    {"status", "requested"},
                    {"timeout_seconds", timeout ? Json(*timeout) : Json(nullptr)},
                    {"result", nullptr},
                    {"retry_count", 0},
                    {"max_retries", retry ? retry->max_retries : 0},
                    {"retry_reason", nullptr},
                    {"original_execution", nullptr},
                    {"started_at", nullptr},
                    {"workflow_task", nullptr},
                    {"created", now},
                    {"updated", now}};
  if (retry) execution["retry"] = retry->to_json();
  execution = s.seal_execution_config(std::move(execution), *action);
  // defs_offset: the executor decides with at least the definitions this request saw (a policy
  // created just before must hold it, also when the executor's table follows from afar).
  Envelope env{"execution.requested", id, "execution:" + std::to_string(id), s.now_ms(), "api",
               Json{{"execution", execution},
                    {"defs_offset", s.defs.applied()}}};
  auto st = s.produce_and_wait(
      OutRecord{std::string(topics::kCommands), std::to_string(id), env.dump()}, false);
  if (!st.ok()) return Resp::error(st.error());
  auto row = s.views.wait_for_execution(id, s.options.write_timeout);
  if (!row) {
    return error(Errc::kUnavailable, "Database operation temporarily unavailable; please retry");
  }
  s.present_row("execution", *row, false);
  return data(201, *row);
}


Resp cancel_execution(ServiceContext& s, Call& c) {
  Req& req = c.req;
  const std::string& id_str = req.params["id"];
  if (!detail::all_digits(id_str)) return error(Errc::kNotFound, "Execution '" + id_str + "' not found");
  const int64_t id = std::stoll(id_str);
  auto found = s.views.get_execution(id);
  if (!found.ok()) return Resp::error(found.error());
  if (!found->has_value()) return error(Errc::kNotFound, "Execution " + id_str + " not found");
  const Json row = **found;
  if (auto refused = c.check_record("Execution " + id_str, "execution", row)) return *refused;
  const std::string pack = authz::View::scope_pack(
      projections::record_scope(projections::Entity::kExecution, row));
  if (!c.can().may("cancel", authz::Object{"executions", pack})) {
    return error(Errc::kForbidden, "Permission denied: needs executions:cancel");
  }
  const std::string status = row["status"];
  if (projections::is_terminal_execution_status(status)) {
    return error(Errc::kBadRequest, "Execution " + id_str + " is already " + status);
  }
  const int64_t root = row["parent"].is_number_integer() ? row["parent"].get<int64_t>() : id;
  Envelope env{"execution.cancel", id, "cancel:" + id_str, s.now_ms(), "api", Json{{"id", id}}};
  auto st = s.produce_and_wait(
      OutRecord{std::string(topics::kCommands), std::to_string(root), env.dump()}, false);
  if (!st.ok()) return Resp::error(st.error());
  auto changed = s.views.wait_for_execution(
      id, s.options.write_timeout, [&](const Json& r) { return r.value("status", "") != status; });
  Json out = changed ? *changed : row;
  s.present_row("execution", out, false);
  return data(200, out);
}

}  // namespace

void register_execution_routes(RouteTable& t, ServiceContext& s) {
  const std::string v1 = "/api/v1/executions";
  t.add("GET", v1, Access::to("executions", "read"),
        [&s](Call& c) { return list_executions(s, c, std::nullopt); });
  t.add("POST", v1 + "/execute", Access::to("actions", "execute").on_object(),
        [&s](Call& c) { return execute(s, c); });
  t.add("GET", v1 + "/stats", Access::to("executions", "read"),
        [&s](Call& c) { return execution_stats(s, c); });
  t.add("GET", v1 + "/status/{status}", Access::to("executions", "read"),
        [&s](Call& c) { return list_executions(s, c, c.req.params["status"]); });
  t.add("GET", v1 + "/{id}", Access::to("executions", "read"),
        [&s](Call& c) { return get_execution(s, c); });
  t.add("POST", v1 + "/{id}/cancel", Access::to("executions", "cancel"),
        [&s](Call& c) { return cancel_execution(s, c); });
}

}  // namespace attune::service
