#include "api/service/rule_check.h"

#include "api/service/fields.h"
#include "processors/expr/param_schema.h"
#include "processors/expr/condition.h"
#include "processors/expr/expr.h"
#include "processors/sensor/schedule.h"
#include "topology/core/clock.h"

namespace attune::service {

namespace {

// Compiles `conditions` (API.md §10.1) the way the rules stage will, so what it cannot run is
// refused here with the compiler's message (the position included, e.g. "conditions.expression:
// unexpected ')' at column 17").
std::optional<std::string> check_conditions(const Json& c) {
  auto compiled = expr::Condition::compile(c);
  if (!compiled.ok()) return compiled.error().message;
  return std::nullopt;
}

// Compiles every template string of `action_params` (API.md §10.2); null means no parameters.
std::optional<std::string> check_action_params(const Json& params) {
  if (params.is_null()) return std::nullopt;
  if (!params.is_object()) return "must be an object of action parameters";
  auto compiled = expr::CompiledParams::compile(params, "action_params");
  if (!compiled.ok()) return compiled.error().message;
  return std::nullopt;
}

}  // namespace

bool check_rule(Json& rule, const Json& trigger, Json& errors) {
  if (auto err = check_conditions(rule["conditions"])) errors["conditions"] = *err;
  if (auto err = check_action_params(rule["action_params"])) errors["action_params"] = *err;
  Json param_errors = Json::object();
  auto params = expr::validate_parameters(trigger.value("param_schema", Json::object()),
                                        rule["trigger_params"], param_errors);
  if (!params) {
    for (auto it = param_errors.begin(); it != param_errors.end(); ++it) {
      errors["trigger_params." + it.key()] = it.value();
    }
  } else {
    rule["trigger_params"] = std::move(*params);
    // Timer triggers: the schedule itself must be usable (cron syntax, time zone, ...).
    const std::string trigger_ref = trigger.value("ref", "");
    if (sensor::is_timer_trigger(trigger_ref)) {
      const Json timer_errors = sensor::validate_timer_params(
          trigger_ref, rule["trigger_params"], SystemClock::instance().now_ms());
      for (auto it = timer_errors.begin(); it != timer_errors.end(); ++it) {
        errors[it.key()] = it.value();
      }
    }
  }
  return errors.empty();
}

std::optional<std::string> check_webhook_config(const Json& config) {
  if (config.is_null()) return std::nullopt;
  if (!config.is_object()) return "must be an object";
  if (auto it = config.find("payload_size_limit_kb"); it != config.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1) {
      return "payload_size_limit_kb must be a positive integer";
    }
  }
  if (auto it = config.find("rate_limit"); it != config.end() && !it->is_null()) {
    if (!it->is_object()) return "rate_limit must be an object";
    if (it->value("enabled", false)) {
      auto r = it->find("requests");
      auto w = it->find("window_seconds");
      if (r == it->end() || !r->is_number_integer() || r->get<int64_t>() < 1 || w == it->end() ||
          !w->is_number_integer() || w->get<int64_t>() < 1) {
        return "rate_limit needs positive integers 'requests' and 'window_seconds'";
      }
    }
  }
  if (auto it = config.find("hmac"); it != config.end() && !it->is_null()) {
    if (!it->is_object()) return "hmac must be an object";
    if (it->value("enabled", false)) {
      auto s = it->find("secret");
      if (s == it->end() || !s->is_string() || s->get<std::string>().empty()) {
        return "hmac needs a non-empty 'secret'";
      }
      const std::string alg = it->value("algorithm", "sha256");
      if (alg != "sha256" && alg != "sha512") {
        return "hmac algorithm must be sha256 or sha512";
      }
    }
  }
  if (auto it = config.find("ip_whitelist"); it != config.end() && !it->is_null()) {
    if (!it->is_object()) return "ip_whitelist must be an object";
    auto ips = it->find("ips");
    if (ips != it->end() && !ips->is_array()) return "ip_whitelist.ips must be an array";
  }
  return std::nullopt;
}

}  // namespace attune::service
