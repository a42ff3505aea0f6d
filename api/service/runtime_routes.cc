// Webhook receipt, events, enforcements and executions (API.md §9.1, §9.2, §10, §11). Writes go
// to the log; reads come from the projections; every write waits for its own effect.
#include <spdlog/spdlog.h>

#include "api/projections/projections.h"
#include "api/rest/pagination.h"
#include "api/service/fields.h"
#include "api/service/service.h"
#include "api/service/consistency.h"
#include "api/service/webhook_checks.h"
#include "topology/core/time.h"

namespace attune::service {

using detail::data;
using detail::error;
using detail::validation;

namespace {

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

}  // namespace

// GET of an id-addressed row (API.md §2.4: events, enforcements, executions are ids only).
rest::HttpResponse ApiService::get_row(
    Req& req, std::string_view label,
    const std::function<Result<std::optional<Json>>(int64_t)>& lookup) {
  const std::string& id = req.params["id"];
  const std::string missing = std::string(label) + " " + id + " not found";
  if (!detail::all_digits(id)) return error(Errc::kNotFound, missing);
  auto row = lookup(std::stoll(id));
  if (!row.ok()) return Resp::error(row.error());
  if (!row->has_value()) return error(Errc::kNotFound, missing);
  return data(200, **row);
}

// --- webhooks and events -----------------------------------------------------------------------

rest::HttpResponse ApiService::receive_webhook(Req& req) {
  const std::string key = req.params["key"];
  auto refuse = [&](std::string_view outcome, Errc code, std::string message) {
    metrics_.webhook_request(outcome);
    spdlog::info("webhook {}…: refused ({}): {}", key.substr(0, 6), outcome, message);
    return error(code, std::move(message));
  };
  auto trigger = defs_.trigger_for_webhook(key);
  if (!trigger) return refuse("invalid_key", Errc::kNotFound, "Invalid webhook key");
  const std::string ref = (*trigger)["ref"];
  if (!trigger->value("webhook_enabled", false)) {
    return refuse("disabled", Errc::kBadRequest,
                  "Webhooks are not enabled for trigger '" + ref + "'");
  }
  if (!trigger->value("enabled", true)) {
    return refuse("trigger_disabled", Errc::kBadRequest, "Trigger '" + ref + "' is disabled");
  }
  const Json config = trigger->value("webhook_config", Json::object());
  const Json ipw = config.is_object() ? config.value("ip_whitelist", Json::object()) : Json();
  if (ipw.is_object() && ipw.value("enabled", false) &&
      !ip_allowed(req.remote_ip, ipw.value("ips", Json::array()))) {
    return refuse("ip_not_allowed", Errc::kForbidden, "IP address not allowed");
  }
  const Json rl = config.is_object() ? config.value("rate_limit", Json::object()) : Json();
  if (rl.is_object() && rl.value("enabled", false)) {
    const int64_t window_ms = rl.value("window_seconds", int64_t{60}) * 1000;
    const size_t limit = static_cast<size_t>(rl.value("requests", int64_t{100}));
    const int64_t now = now_ms();
    std::lock_guard lock(rate_mu_);
    auto& q = rate_[key];
    while (!q.empty() && q.front() <= now - window_ms) q.pop_front();
    if (q.size() >= limit) {
      auto resp = refuse("rate_limited", Errc::kTooManyRequests, "Rate limit exceeded");
      const int64_t retry_s = std::max<int64_t>(1, (q.front() + window_ms - now + 999) / 1000);
      resp.headers.emplace_back("Retry-After", std::to_string(retry_s));
      return resp;
    }
    q.push_back(now);
  }
  if (auto lim = config.is_object() ? config.find("payload_size_limit_kb") : config.end();
      config.is_object() && lim != config.end() && lim->is_number_integer()) {
    const size_t max = static_cast<size_t>(lim->get<int64_t>()) * 1024;
    if (req.body.size() > max) {
      return refuse("payload_too_large", Errc::kBadRequest,
                    "Payload too large: " + std::to_string(req.body.size()) +
                        " bytes exceeds limit of " + std::to_string(max) + " bytes");
    }
  }
  bool hmac_verified = false;
  const Json hmac = config.is_object() ? config.value("hmac", Json::object()) : Json();
  if (hmac.is_object() && hmac.value("enabled", false)) {
    auto sig = req.header("X-Webhook-Signature");
    if (!sig) sig = req.header("X-Hub-Signature-256");
    if (!sig || !hmac_valid(req.body, hmac.value("secret", ""), hmac.value("algorithm", "sha256"),
                            *sig)) {
      return refuse("hmac_invalid", Errc::kUnauthorized, "Invalid or missing webhook signature");
    }
    hmac_verified = true;
  }
  Json body = Json::parse(req.body, nullptr, false);
  if (body.is_discarded()) {
    return refuse("invalid_json", Errc::kBadRequest, "Invalid JSON payload: body is not valid JSON");
  }
  if (!body.is_object() || !body.contains("payload")) {
    return refuse("invalid_json", Errc::kBadRequest,
                  "Invalid JSON payload: expected an object with a 'payload' member");
  }

  const std::string received = now_str();
  Json event_config = {{"source", "webhook"}, {"webhook_key", key}, {"received_at", received}};
  for (const char* f : {"headers", "source_ip", "user_agent"}) {
    if (body.contains(f) && !body[f].is_null()) event_config[f] = body[f];
  }
  if (!event_config.contains("source_ip") && !req.remote_ip.empty()) {
    event_config["source_ip"] = req.remote_ip;
  }
  if (hmac_verified) event_config["hmac_verified"] = true;
  const int64_t id = req.derived_id ? *req.derived_id : ids_.next();
  Json event = {{"id", id},
                {"trigger", (*trigger)["id"]},
                {"trigger_ref", ref},
                {"config", event_config},
                {"payload", std::move(body["payload"])},
                {"source", nullptr},
                {"source_ref", "webhook"},
                {"rule", nullptr},
                {"rule_ref", nullptr},
                {"created", received},
                {"updated", received},
                {"defs_offset", log_.end_offset({std::string(topics::kDefinitions), 0})}};
  auto env = std::make_shared<const Envelope>(Envelope{
      "event.created", id, "event:" + std::to_string(id), now_ms(), "api", std::move(event)});
  // Durable in the log is enough to answer: event reads wait for the projection instead
  // (events_caught_up). The answer is deferred rather than waited for, so REST threads keep
  // reading other requests meanwhile and a burst of webhooks shares few log writes.
  auto answer = std::make_shared<rest::DeferredResponse>();
  auto accepted = data(200, Json{{"event_id", id},
                                 {"trigger_ref", ref},
                                 {"received_at", received},
                                 {"message", "Webhook received successfully"}});
  log_.produce_async(
      {OutRecord{std::string(topics::kEvents), ref, env->dump(), -1, {}, env}},
      [&metrics = metrics_, answer, accepted = std::move(accepted),
       tokens = options_.consistency_tokens](
          Result<std::vector<RecordPosition>> pos) mutable {
        if (!pos.ok()) {
          metrics.webhook_request("error");
          answer->complete(Resp::error(pos.error()));
          return;
        }
        metrics.webhook_request("accepted");
        if (tokens && !pos->empty()) {
          // Answered once durable, not once applied: the token names the event itself.
          const auto& at = pos->front();
          accepted.headers.emplace_back(std::string(kConsistencyHeader),
                                        encode_positions({{at.tp, at.offset + 1}}));
        }
        answer->complete(std::move(accepted));
      });
  return Resp::later(std::move(answer));
}

Status ApiService::produce_and_wait(OutRecord record, bool wait_projection) {
  auto pos = log_.produce({std::move(record)});
  if (!pos.ok()) return pos.error();
  if (wait_projection && !views_.wait_applied((*pos)[0].tp, (*pos)[0].offset,
                                              options_.write_timeout)) {
    return make_error(Errc::kUnavailable, "Database operation temporarily unavailable; please retry");
  }
  return {};
}

Status ApiService::events_caught_up() {
  const std::string topic(topics::kEvents);
  for (int32_t p = 0; p < log_.partitions(topic); ++p) {
    const TopicPartition tp{topic, p};
    const int64_t end = log_.end_offset(tp);
    if (end > 0 && !views_.wait_applied(tp, end - 1, options_.write_timeout)) {
      return make_error(Errc::kUnavailable,
                        "Database operation temporarily unavailable; please retry");
    }
  }
  return {};
}

rest::HttpResponse ApiService::create_event(Req& req) {
  auto principal = authenticate(req);
  if (!principal.ok()) return Resp::error(principal.error());
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto trigger_ref = f.str("trigger_ref", false, 1);
  std::optional<int64_t> trigger_id = f.integer("trigger", 1, kMaxId);
  auto config = f.object("config");
  auto source_ref = f.str_or_null("source_ref");
  auto rule_ref = f.str_or_null("rule_ref");
  if (!trigger_ref && !trigger_id) f.fail("trigger_ref", "is required");
  if (!f.ok()) return validation(f.errors());
  auto trigger = trigger_ref ? defs_.resolve("trigger", *trigger_ref)
                             : defs_.get_by_id("trigger", *trigger_id);
  if (!trigger) {
    return error(Errc::kNotFound, "Trigger '" +
                                      (trigger_ref ? *trigger_ref : std::to_string(*trigger_id)) +
                                      "' not found");
  }
  const std::string ref = (*trigger)["ref"];
  if (principal->token_type == auth::kAccessToken && !principal->admin) {
    return error(Errc::kForbidden, "Missing permission events:create");
  }
  // A sensor token may fire the triggers its sensor serves (API.md §9.2), as that sensor.
  JsonPtr sensor;
  if (principal->token_type == auth::kSensorToken) {
    bool allowed = false;
    for (const auto& t : principal->trigger_types) allowed = allowed || t == ref;
    if (!allowed) {
      return error(Errc::kForbidden, "Sensor token may not fire trigger '" + ref + "'");
    }
    const auto& attrs = principal->identity ? principal->identity->value("attributes", Json::object())
                                            : Json::object();
    if (attrs.is_object() && attrs.value("sensor_ref", Json()).is_string()) {
      sensor = defs_.get("sensor", attrs["sensor_ref"].get<std::string>());
    }
  }
  if (!trigger->value("enabled", true)) {
    return error(Errc::kBadRequest, "Trigger '" + ref + "' is disabled");
  }
  JsonPtr rule;
  if (rule_ref && rule_ref->is_string()) {
    rule = defs_.resolve("rule", rule_ref->get<std::string>());
    if (!rule) return error(Errc::kNotFound, "Rule '" + rule_ref->get<std::string>() + "' not found");
  }
  const std::string now = now_str();
  const int64_t id = req.derived_id ? *req.derived_id : ids_.next();
  Json event = {{"id", id},
                {"trigger", (*trigger)["id"]},
                {"trigger_ref", ref},
                {"config", config ? *config : Json(nullptr)},
                {"payload", body->value("payload", Json(nullptr))},
                {"source", sensor ? (*sensor)["id"] : Json(nullptr)},
                {"source_ref", sensor ? (*sensor)["ref"]
                                      : (source_ref ? *source_ref : Json(nullptr))},
                {"rule", rule ? (*rule)["id"] : Json(nullptr)},
                {"rule_ref", rule ? (*rule)["ref"] : Json(nullptr)},
                {"created", now},
                {"updated", now},
                {"defs_offset", log_.end_offset({std::string(topics::kDefinitions), 0})}};
  Envelope env{"event.created", id, "event:" + std::to_string(id), now_ms(), "api", event};
  auto st = produce_and_wait(OutRecord{std::string(topics::kEvents), ref, env.dump()}, true);
  if (!st.ok()) return Resp::error(st.error());
  auto row = views_.get_event(id);
  Json out = row.ok() && row->has_value() ? **row : event;
  present_row("event", out, false);
  return data(201, out);
}

rest::HttpResponse ApiService::list_events(Req& req) {
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  projections::EventFilter filter;
  if (auto e = int_param(req, "trigger", filter.trigger)) return *e;
  filter.trigger_ref = str_param(req, "trigger_ref");
  filter.source = str_param(req, "source");
  if (auto e = time_param(req, "created_after", filter.created_after)) return *e;
  if (auto st = events_caught_up(); !st.ok()) return Resp::error(st.error());
  auto res = views_.list_events(filter, to_page(*page));
  if (!res.ok()) return Resp::error(res.error());
  Json body = rest::list_envelope(std::move(res->items), *page, res->total);
  present_list("event", body);
  return Resp::json(200, body);
}

namespace {

// A GET of an id-addressed row, redacted (API.md §16.4) unless include_secret_values is set and
// allowed.
using RowLookup = std::function<Result<std::optional<Json>>(int64_t)>;

// Authenticates, checks include_secret_values (`reveal`), then answers `get_row` over `lookup`
// with each found row passed through `present`.
rest::HttpResponse get_presented(const std::function<Result<Principal>()>& auth,
                                 const std::function<Result<bool>(const Principal&)>& reveal,
                                 const RowLookup& lookup,
                                 const std::function<void(Json&, bool)>& present,
                                 const std::function<rest::HttpResponse(const RowLookup&)>& get_row) {
  auto p = auth();
  if (!p.ok()) return rest::HttpResponse::error(p.error());
  auto show = reveal(*p);
  if (!show.ok()) return rest::HttpResponse::error(show.error());
  const bool on = *show;
  return get_row([&](int64_t id) -> Result<std::optional<Json>> {
    auto row = lookup(id);
    if (row.ok() && row->has_value()) present(**row, on);
    return row;
  });
}

}  // namespace

rest::HttpResponse ApiService::get_event(Req& req) {
  if (auto st = events_caught_up(); !st.ok()) return Resp::error(st.error());
  return get_presented(
      [&] { return authenticate(req); },
      [&](const Principal& p) { return reveal_secrets(req, p, "events:decrypt"); },
      [this](int64_t id) { return views_.get_event(id); },
      [this](Json& row, bool on) { present_row("event", row, on); },
      [&](const RowLookup& lookup) { return get_row(req, "Event", lookup); });
}

// --- enforcements ------------------------------------------------------------------------------

rest::HttpResponse ApiService::list_enforcements(Req& req) {
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
  auto res = views_.list_enforcements(filter, to_page(*page));
  if (!res.ok()) return Resp::error(res.error());
  Json body = rest::list_envelope(std::move(res->items), *page, res->total);
  present_list("enforcement", body);
  return Resp::json(200, body);
}

rest::HttpResponse ApiService::get_enforcement(Req& req) {
  return get_presented(
      [&] { return authenticate(req); },
      [&](const Principal& p) { return reveal_secrets(req, p, "enforcements:decrypt"); },
      [this](int64_t id) { return views_.get_enforcement(id); },
      [this](Json& row, bool on) { present_row("enforcement", row, on); },
      [&](const RowLookup& lookup) { return get_row(req, "Enforcement", lookup); });
}

rest::HttpResponse ApiService::enforcement_executions(Req& req) {
  const std::string& id = req.params["id"];
  auto enf = detail::all_digits(id) ? views_.get_enforcement(std::stoll(id))
                                    : Result<std::optional<Json>>(std::optional<Json>());
  if (!enf.ok()) return Resp::error(enf.error());
  if (!enf->has_value()) {
    return error(Errc::kNotFound, "Enforcement " + id + " not found");
  }
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  projections::ExecutionFilter filter;
  filter.enforcement = std::stoll(id);
  auto res = views_.list_executions(filter, to_page(*page));
  if (!res.ok()) return Resp::error(res.error());
  Json body = rest::list_envelope(std::move(res->items), *page, res->total);
  present_list("execution", body);
  return Resp::json(200, body);
}

// --- executions --------------------------------------------------------------------------------

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

}  // namespace

rest::HttpResponse ApiService::list_executions(Req& req,
                                               std::optional<std::string> status_override) {
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  projections::ExecutionFilter filter;
  if (auto e = execution_filter(req, filter, std::move(status_override))) return *e;
  auto res = views_.list_executions(filter, to_page(*page));
  if (!res.ok()) return Resp::error(res.error());
  Json body = rest::list_envelope(std::move(res->items), *page, res->total);
  present_list("execution", body);
  return Resp::json(200, body);
}

rest::HttpResponse ApiService::execution_stats(Req& req) {
  projections::ExecutionFilter filter;
  if (auto e = execution_filter(req, filter, std::nullopt)) return *e;
  auto stats = views_.execution_stats(filter);
  if (!stats.ok()) return Resp::error(stats.error());
  return data(200, stats->to_json());
}

rest::HttpResponse ApiService::get_execution(Req& req) {
  return get_presented(
      [&] { return authenticate(req); },
      [&](const Principal& p) { return reveal_secrets(req, p, "executions:decrypt"); },
      [this](int64_t id) { return views_.get_execution(id); },
      [this](Json& row, bool on) { present_row("execution", row, on); },
      [&](const RowLookup& lookup) { return get_row(req, "Execution", lookup); });
}

rest::HttpResponse ApiService::execute(Req& req) {
  auto principal = authenticate(req);
  if (!principal.ok()) return Resp::error(principal.error());
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto action_ref = f.str("action_ref", true, 1);
  auto parameters = f.object("parameters");
  auto env_vars = f.object("env_vars");
  auto sets = f.string_array("permission_set_refs");
  auto timeout = f.integer("timeout_seconds", 1, 7 * 24 * 3600);
  if (env_vars) {
    for (auto it = env_vars->begin(); it != env_vars->end(); ++it) {
      if (!it.value().is_string()) f.fail("env_vars." + it.key(), "must be a string");
    }
  }
  if (!f.ok()) return validation(f.errors());
  auto action = defs_.resolve("action", *action_ref);
  if (!action) return error(Errc::kNotFound, "Action '" + *action_ref + "' not found");
  const std::string ref = (*action)["ref"];
  if (!action->value("enabled", true)) {
    return error(Errc::kBadRequest, "Action '" + ref + "' is disabled");
  }
  Json errors = Json::object();
  auto params = validate_against_schema(action->value("param_schema", Json::object()),
                                        parameters ? *parameters : Json::object(), errors);
  if (!params) return validation(errors);

  const std::string now = now_str();
  const int64_t id = ids_.next();
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
                    {"max_retries", 0},
                    {"retry_reason", nullptr},
                    {"original_execution", nullptr},
                    {"started_at", nullptr},
                    {"workflow_task", nullptr},
                    {"created", now},
                    {"updated", now}};
  execution = seal_execution_config(std::move(execution), *action);
  Envelope env{"execution.requested", id, "execution:" + std::to_string(id), now_ms(), "api",
               Json{{"execution", execution}}};
  auto st = produce_and_wait(
      OutRecord{std::string(topics::kCommands), std::to_string(id), env.dump()}, false);
  if (!st.ok()) return Resp::error(st.error());
  auto row = views_.wait_for_execution(id, options_.write_timeout);
  if (!row) {
    return error(Errc::kUnavailable, "Database operation temporarily unavailable; please retry");
  }
  present_row("execution", *row, false);
  return data(201, *row);
}

rest::HttpResponse ApiService::cancel_execution(Req& req) {
  const std::string& id_str = req.params["id"];
  if (!detail::all_digits(id_str)) return error(Errc::kNotFound, "Execution '" + id_str + "' not found");
  const int64_t id = std::stoll(id_str);
  auto found = views_.get_execution(id);
  if (!found.ok()) return Resp::error(found.error());
  if (!found->has_value()) return error(Errc::kNotFound, "Execution " + id_str + " not found");
  const Json row = **found;
  const std::string status = row["status"];
  if (projections::is_terminal_execution_status(status)) {
    return error(Errc::kBadRequest, "Execution " + id_str + " is already " + status);
  }
  const int64_t root = row["parent"].is_number_integer() ? row["parent"].get<int64_t>() : id;
  Envelope env{"execution.cancel", id, "cancel:" + id_str, now_ms(), "api", Json{{"id", id}}};
  auto st = produce_and_wait(
      OutRecord{std::string(topics::kCommands), std::to_string(root), env.dump()}, false);
  if (!st.ok()) return Resp::error(st.error());
  auto changed = views_.wait_for_execution(
      id, options_.write_timeout, [&](const Json& r) { return r.value("status", "") != status; });
  Json out = changed ? *changed : row;
  present_row("execution", out, false);
  return data(200, out);
}

}  // namespace attune::service
