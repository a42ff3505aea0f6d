// Policy resolution and retry backoff (policy.h).
#include "processors/admission/policy.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace attune::admission {
namespace {

Error field_error(std::string_view field, std::string_view name, std::string_view message) {
  return make_error(Errc::kValidation,
                    std::string(field) + "." + std::string(name) + ": " + std::string(message));
}

std::string str(const Json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The scope of a stored policy: rank 2 action, 1 pack, 0 global, and its ref.
struct Scope {
  int rank = 0;
  std::string ref;
};

Scope scope_of(const Json& p) {
  const auto it = p.find("scope");
  const Json scope = it != p.end() && it->is_object() ? *it : Json::object();
  const std::string type = scope.is_object() ? str(scope, "type") : std::string();
  if (type == "action") return {2, str(scope, "action_ref")};
  if (type == "pack") return {1, str(scope, "pack_ref")};
  return {0, ""};
}

std::optional<int64_t> positive_int(const Json& o, const char* name) {
  auto it = o.find(name);
  if (it == o.end() || !it->is_number_integer()) return std::nullopt;
  const int64_t v = it->get<int64_t>();
  return v >= 1 ? std::optional<int64_t>(v) : std::nullopt;
}

}  // namespace

Json RetrySpec::to_json() const {
  Json on = Json::array();
  if (on_failed) on.push_back("failed");
  if (on_timeout) on.push_back("timeout");
  const char* b = backoff == Backoff::kConstant ? "constant"
                  : backoff == Backoff::kLinear ? "linear"
                                                : "exponential";
  return Json{{"max_retries", max_retries},
              {"on", std::move(on)},
              {"backoff", b},
              {"delay_seconds", delay_seconds},
              {"max_delay_seconds", max_delay_seconds}};
}

Result<RetrySpec> parse_retry(const Json& j, std::string_view field) {
  if (!j.is_object()) {
    return make_error(Errc::kValidation, std::string(field) + ": must be an object");
  }
  RetrySpec r;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const Json& v = it.value();
    if (k == "max_retries") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxRetryCount) {
        return field_error(field, k, "must be an integer from 0 to 100");
      }
      r.max_retries = v.get<int64_t>();
    } else if (k == "on") {
      if (!v.is_array()) return field_error(field, k, "must be an array of statuses");
      r.on_failed = r.on_timeout = false;
      for (const Json& s : v) {
        if (s == "failed") {
          r.on_failed = true;
        } else if (s == "timeout") {
          r.on_timeout = true;
        } else {
          return field_error(field, k, "may contain only \"failed\" and \"timeout\"");
        }
      }
    } else if (k == "backoff") {
      const std::string b = v.is_string() ? v.get<std::string>() : std::string();
      if (b == "constant") {
        r.backoff = Backoff::kConstant;
      } else if (b == "linear") {
        r.backoff = Backoff::kLinear;
      } else if (b == "exponential") {
        r.backoff = Backoff::kExponential;
      } else {
        return field_error(field, k, "must be one of constant, linear, exponential");
      }
    } else if (k == "delay_seconds" || k == "max_delay_seconds") {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 7 * 24 * 3600) {
        return field_error(field, k, "must be a number of seconds from 0 to 604800");
      }
      (k == "delay_seconds" ? r.delay_seconds : r.max_delay_seconds) = v.get<double>();
    } else {
      return field_error(field, k, "is not a retry field");
    }
  }
  return r;
}

int64_t backoff_delay_ms(const RetrySpec& r, int64_t n) {
  n = std::max<int64_t>(n, 1);
  double d = r.delay_seconds;
  switch (r.backoff) {
    case Backoff::kConstant:
      break;
    case Backoff::kLinear:
      d *= static_cast<double>(n);
      break;
    case Backoff::kExponential:
      d *= std::ldexp(1.0, static_cast<int>(std::min<int64_t>(n - 1, 62)));
      break;
  }
  d = std::min(d, r.max_delay_seconds);
  return static_cast<int64_t>(std::llround(d * 1000.0));
}

bool retries_on(const RetrySpec& r, std::string_view status) {
  return (status == "failed" && r.on_failed) || (status == "timeout" && r.on_timeout);
}

Effective resolve(const std::vector<JsonPtr>& policies, std::string_view action_ref,
                  std::string_view pack_ref) {
  // Applicable policies, most specific first: (rank desc, priority desc, ref asc).
  struct Candidate {
    int rank;
    int64_t priority;
    std::string ref;
    const Json* p;
  };
  std::vector<Candidate> c;
  for (const JsonPtr& ptr : policies) {
    if (!ptr || !ptr->is_object()) continue;
    const Json& p = *ptr;
    // A stored object is normalised by the API; anything else (a hand-made record) must not stop
    // admission: a non-boolean `enabled` counts as disabled.
    if (auto en = p.find("enabled"); en != p.end() && !(en->is_boolean() && en->get<bool>())) {
      continue;
    }
    const Scope s = scope_of(p);
    if ((s.rank == 2 && s.ref != action_ref) || (s.rank == 1 && s.ref != pack_ref)) continue;
    const auto pit = p.find("priority");
    const Json pr = pit != p.end() ? *pit : Json(0);
    c.push_back({s.rank, pr.is_number_integer() ? pr.get<int64_t>() : 0, str(p, "ref"), &p});
  }
  std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(b.rank, b.priority, a.ref) < std::tie(a.rank, a.priority, b.ref);
  });

  Effective e;
  std::optional<int64_t> running_quota;
  auto contributed = [&](const Candidate& x) {
    if (std::find(e.policy_refs.begin(), e.policy_refs.end(), x.ref) == e.policy_refs.end()) {
      e.policy_refs.push_back(x.ref);
    }
  };
  for (const Candidate& x : c) {
    const Json& p = *x.p;
    if (!e.concurrency && p.contains("concurrency") && p["concurrency"].is_object()) {
      const Json& cj = p["concurrency"];
      if (auto limit = positive_int(cj, "limit")) {
        ConcurrencySpec cs;
        cs.limit = *limit;
        cs.cancel = str(cj, "method") == "cancel";
        if (cj.contains("parameters") && cj["parameters"].is_array()) {
          for (const Json& n : cj["parameters"]) {
            if (n.is_string()) cs.parameters.push_back(n.get<std::string>());
          }
        }
        e.concurrency = std::move(cs);
        contributed(x);
      }
    }
    if (!e.rate_limit && p.contains("rate_limit") && p["rate_limit"].is_object()) {
      const Json& rj = p["rate_limit"];
      auto max = positive_int(rj, "max_executions");
      auto window = positive_int(rj, "window_seconds");
      if (max && window) {
        e.rate_limit = RateSpec{*max, *window};
        contributed(x);
      }
    }
    if (!e.retry && p.contains("retry") && p["retry"].is_object()) {
      if (auto r = parse_retry(p["retry"]); r.ok()) {
        e.retry = *r;
        contributed(x);
      }
    }
    if (p.contains("quotas") && p["quotas"].is_array()) {
      for (const Json& q : p["quotas"]) {
        if (!q.is_object() || !q.contains("limit") || !q["limit"].is_number_integer()) continue;
        const int64_t limit = q["limit"].get<int64_t>();
        const std::string type = str(q, "quota_type");
        if (type == "running_executions" && !running_quota && limit >= 1) {
          running_quota = limit;
          contributed(x);
        } else if (type == "executions_total" && !e.executions_total && limit >= 0) {
          e.executions_total = Effective::Total{
              limit, x.rank == 2 ? "action" : x.rank == 1 ? "pack" : "global", scope_of(p).ref,
              x.ref};
          contributed(x);
        }
      }
    }
  }
  if (running_quota) {
    if (!e.concurrency) {
      e.concurrency = ConcurrencySpec{*running_quota, false, {}};
    } else if (*running_quota < e.concurrency->limit) {
      e.concurrency->limit = *running_quota;
    }
  }
  return e;
}

std::string group_key(const ConcurrencySpec& c, const Json& config) {
  if (c.parameters.empty()) return std::string();
  Json values = Json::array();
  for (const std::string& name : c.parameters) {
    auto it = config.is_object() ? config.find(name) : config.end();
    values.push_back(config.is_object() && it != config.end() ? *it : Json(nullptr));
  }
  return values.dump();
}

const Effective& Resolver::of(std::string_view action_ref) {
  const uint64_t v = table_.version();
  if (v != version_) {
    version_ = v;
    policies_ = table_.list(kPolicyKind);
    cache_.clear();
  }
  auto it = cache_.find(std::string(action_ref));
  if (it != cache_.end()) return it->second;
  const auto dot = action_ref.find('.');
  const std::string_view pack =
      dot == std::string_view::npos ? action_ref : action_ref.substr(0, dot);
  if (cache_.size() > 4096) cache_.clear();
  return cache_.emplace(std::string(action_ref), resolve(policies_, action_ref, pack))
      .first->second;
}

}  // namespace attune::admission
