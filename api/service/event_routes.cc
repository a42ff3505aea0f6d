// Webhook receipt and events (API.md §9.1, §9.2): webhooks are open (their key is the secret),
// events are readable by who may read their trigger's pack (record scopes, §16.3).
#include <spdlog/spdlog.h>

#include <deque>
#include <map>
#include <mutex>

#include "api/service/consistency.h"
#include "api/service/fields.h"
#include "api/service/record_queries.h"
#include "api/service/service.h"
#include "api/service/webhook_checks.h"

namespace attune::service {

using detail::data;
using detail::error;
using detail::validation;
using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;

namespace {

// Webhook rate limiting: per key, timestamps (ms) of accepted requests in the window.
struct WebhookRates {
  std::mutex mu;
  std::map<std::string, std::deque<int64_t>> accepted;
};

Resp receive_webhook(ServiceContext& s, WebhookRates& rates, Call& c) {
  Req& req = c.req;
  const std::string key = req.params["key"];
  auto refuse = [&](std::string_view outcome, Errc code, std::string message) {
    s.metrics.webhook_request(outcome);
    spdlog::info("webhook {}…: refused ({}): {}", key.substr(0, 6), outcome, message);
    return error(code, std::move(message));
  };
  auto trigger = s.defs.trigger_for_webhook(key);
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
    const int64_t now = s.now_ms();
    std::lock_guard lock(rates.mu);
    auto& q = rates.accepted[key];
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

  const std::string received = s.now_str();
  Json event_config = {{"source", "webhook"}, {"webhook_key", key}, {"received_at", received}};
  for (const char* f : {"headers", "source_ip", "user_agent"}) {
    if (body.contains(f) && !body[f].is_null()) event_config[f] = body[f];
  }
  if (!event_config.contains("source_ip") && !req.remote_ip.empty()) {
    event_config["source_ip"] = req.remote_ip;
  }
  if (hmac_verified) event_config["hmac_verified"] = true;
  const int64_t id = req.derived_id ? *req.derived_id : s.ids.next();
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
                {"defs_offset", s.log.end_offset({std::string(topics::kDefinitions), 0})}};
  auto env = std::make_shared<const Envelope>(Envelope{
      "event.created", id, "event:" + std::to_string(id), s.now_ms(), "api", std::move(event)});
  // Durable in the log is enough to answer: event reads wait for the projection instead
  // (events_caught_up). The answer is deferred rather than waited for, so REST threads keep
  // reading other requests meanwhile and a burst of webhooks shares few log writes.
  auto answer = std::make_shared<rest::DeferredResponse>();
  auto accepted = data(200, Json{{"event_id", id},
                                 {"trigger_ref", ref},
                                 {"received_at", received},
                                 {"message", "Webhook received successfully"}});
  s.log.produce_async(
      {OutRecord{std::string(topics::kEvents), ref, env->dump(), -1, {}, env}},
      [&metrics = s.metrics, answer, accepted = std::move(accepted),
       tokens = s.options.consistency_tokens](
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


Resp create_event(ServiceContext& s, Call& c) {
  Req& req = c.req;
  const Principal* principal = &c.who();
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
  auto trigger = trigger_ref ? s.defs.resolve("trigger", *trigger_ref)
                             : s.defs.get_by_id("trigger", *trigger_id);
  if (!trigger) {
    return error(Errc::kNotFound, "Trigger '" +
                                      (trigger_ref ? *trigger_ref : std::to_string(*trigger_id)) +
                                      "' not found");
  }
  const std::string ref = (*trigger)["ref"];
  const std::string missing = "Trigger '" + ref + "' not found";
  // API.md §9.2: a sensor token whose trigger_types list the trigger, or an identity with
  // events:create on the trigger's pack; a trigger the caller cannot see is not found.
  if (principal->token_type != auth::kSensorToken) {
    if (auto refused = c.check("Trigger '" + ref + "'",
                               authz::Object{"events", detail::pack_ref_of(*trigger)},
                               trigger->value("reference_visibility", "public"))) {
      return *refused;
    }
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
      sensor = s.defs.get("sensor", attrs["sensor_ref"].get<std::string>());
    }
  }
  if (!trigger->value("enabled", true)) {
    return error(Errc::kBadRequest, "Trigger '" + ref + "' is disabled");
  }
  JsonPtr rule;
  if (rule_ref && rule_ref->is_string()) {
    rule = s.defs.resolve("rule", rule_ref->get<std::string>());
    if (!rule) return error(Errc::kNotFound, "Rule '" + rule_ref->get<std::string>() + "' not found");
  }
  const std::string now = s.now_str();
  const int64_t id = req.derived_id ? *req.derived_id : s.ids.next();
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
                {"defs_offset", s.log.end_offset({std::string(topics::kDefinitions), 0})}};
  Envelope env{"event.created", id, "event:" + std::to_string(id), s.now_ms(), "api", event};
  auto st = s.produce_and_wait(OutRecord{std::string(topics::kEvents), ref, env.dump()}, true);
  if (!st.ok()) return Resp::error(st.error());
  auto row = s.views.get_event(id);
  Json out = row.ok() && row->has_value() ? **row : event;
  s.present_row("event", out, false);
  return data(201, out);
}


Resp list_events(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  projections::EventFilter filter;
  if (auto e = int_param(req, "trigger", filter.trigger)) return *e;
  filter.trigger_ref = str_param(req, "trigger_ref");
  filter.source = str_param(req, "source");
  if (auto e = time_param(req, "created_after", filter.created_after)) return *e;
  filter.scopes = readable_scopes(c, "events");
  if (auto st = s.events_caught_up(); !st.ok()) return Resp::error(st.error());
  auto res = s.views.list_events(filter, to_page(*page));
  if (!res.ok()) return Resp::error(res.error());
  Json body = rest::list_envelope(std::move(res->items), *page, res->total);
  s.present_list("event", body);
  return Resp::json(200, body);
}


Resp get_event(ServiceContext& s, Call& c) {
  if (auto st = s.events_caught_up(); !st.ok()) return Resp::error(st.error());
  return get_record(s, c, "event", "Event", [&s](int64_t id) { return s.views.get_event(id); });
}

}  // namespace

void register_event_routes(RouteTable& t, ServiceContext& s) {
  auto rates = std::make_shared<WebhookRates>();
  // The key in the path is the credential (API.md §4.1).
  t.add("POST", "/api/v1/webhooks/{key}", Access::open(),
        [&s, rates](Call& c) { return receive_webhook(s, *rates, c); });
  t.add("POST", "/api/v1/events", Access::to("events", "create").on_object(),
        [&s](Call& c) { return create_event(s, c); });
  t.add("GET", "/api/v1/events", Access::to("events", "read"),
        [&s](Call& c) { return list_events(s, c); });
  t.add("GET", "/api/v1/events/{id}", Access::to("events", "read"),
        [&s](Call& c) { return get_event(s, c); });
}

}  // namespace attune::service
