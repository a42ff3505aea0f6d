// API body / pack file → stored policy (see policy_def.h).
#include "processors/admission/policy_def.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "processors/admission/policy.h"
#include "processors/expr/param_schema.h"

namespace attune::admission {
namespace {

constexpr int64_t kMaxLimit = int64_t{1} << 40;
constexpr int64_t kMaxPriority = 1000000000;

// Typed reads of one object's members; every problem is recorded under `<prefix><name>`.
class Reader {
 public:
  Reader(const Json& obj, std::string prefix, Json& errors)
      : obj_(obj), prefix_(std::move(prefix)), errors_(errors) {}

  bool has(const char* name) const { return obj_.contains(name); }
  // The member, or nullptr when absent or null.
  const Json* get(const char* name) const {
    auto it = obj_.find(name);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  void fail(const std::string& name, std::string message) {
    if (!errors_.contains(prefix_ + name)) errors_[prefix_ + name] = std::move(message);
  }
  std::string field(const std::string& name) const { return prefix_ + name; }

  std::optional<std::string> str(const char* name, bool required) {
    const Json* v = get(name);
    if (!v) {
      if (required) fail(name, "is required");
      return std::nullopt;
    }
    if (!v->is_string()) return wrong(name, "a string", *v), std::nullopt;
    if (required && v->get<std::string>().empty()) {
      return fail(name, "must not be empty"), std::nullopt;
    }
    return v->get<std::string>();
  }
  std::optional<int64_t> integer(const char* name, int64_t min, int64_t max, bool required) {
    const Json* v = get(name);
    if (!v) {
      if (required) fail(name, "is required");
      return std::nullopt;
    }
    if (!expr::matches_type(*v, "integer")) return wrong(name, "an integer", *v), std::nullopt;
    const int64_t n =
        v->is_number_float() ? static_cast<int64_t>(v->get<double>()) : v->get<int64_t>();
    if (n < min || n > max) {
      const std::string range =
          max == kMaxLimit ? "at least " + std::to_string(min)
                           : "between " + std::to_string(min) + " and " + std::to_string(max);
      return fail(name, "must be " + range), std::nullopt;
    }
    return n;
  }
  std::optional<bool> boolean(const char* name) {
    const Json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) return wrong(name, "a boolean", *v), std::nullopt;
    return v->get<bool>();
  }
  std::optional<Json> strings(const char* name) {
    const Json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_array() ||
        !std::all_of(v->begin(), v->end(), [](const Json& x) { return x.is_string(); })) {
      return fail(name, "must be an array of strings"), std::nullopt;
    }
    return *v;
  }
  // One of `allowed`, or `def` when absent.
  std::optional<std::string> one_of(const char* name, const std::vector<std::string>& allowed,
                                    bool required) {
    auto v = str(name, required);
    if (!v) return std::nullopt;
    if (std::find(allowed.begin(), allowed.end(), *v) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return fail(name, "must be one of " + list), std::nullopt;
    }
    return v;
  }

 private:
  void wrong(const char* name, const char* what, const Json& v) {
    fail(name, std::string("must be ") + what + ", got " + expr::json_type_name(v));
  }

  const Json& obj_;
  std::string prefix_;
  Json& errors_;
};

// An object member for `field`, or nullopt (recorded) when it is not an object.
const Json* object_member(const Json& body, const char* field, Json& errors) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return nullptr;
  if (!it->is_object()) {
    errors[field] = std::string("must be an object or null, got ") + expr::json_type_name(*it);
    return nullptr;
  }
  return &*it;
}

Json read_scope(const Json& body, bool creating, const Json& current, Json& errors) {
  if (const Json* scope = object_member(body, "scope", errors)) {
    Reader r(*scope, "scope.", errors);
    auto type = r.one_of("type", {"global", "pack", "action"}, true);
    if (!type) return nullptr;
    if (*type == "global") return Json{{"type", "global"}};
    if (*type == "pack") {
      auto pack = r.str("pack_ref", true);
      return pack ? Json{{"type", "pack"}, {"pack_ref", *pack}} : Json(nullptr);
    }
    auto action = r.str("action_ref", true);
    if (action && pack_of_ref(*action).empty()) r.fail("action_ref", "must be '<pack>.<name>'");
    if (!action || pack_of_ref(*action).empty()) return nullptr;
    return Json{{"type", "action"},
                {"pack_ref", std::string(pack_of_ref(*action))},
                {"action_ref", *action}};
  }
  if (body.contains("scope") && !body["scope"].is_null()) return nullptr;  // recorded above
  Reader r(body, "", errors);
  if (auto action = r.str("action_ref", false)) {
    if (pack_of_ref(*action).empty()) {
      r.fail("action_ref", "must be '<pack>.<name>'");
      return nullptr;
    }
    return Json{{"type", "action"},
                {"pack_ref", std::string(pack_of_ref(*action))},
                {"action_ref", *action}};
  }
  if (!creating) return current.value("scope", Json{{"type", "global"}});
  if (auto pack = r.str("pack_ref", false)) return Json{{"type", "pack"}, {"pack_ref", *pack}};
  return Json{{"type", "global"}};
}

Json read_concurrency(const Json& c, Json& errors) {
  Reader r(c, "concurrency.", errors);
  auto limit = r.integer("limit", 1, kMaxLimit, true);
  auto method = r.one_of("method", {"enqueue", "cancel"}, false);
  auto parameters = r.strings("parameters");
  if (!limit || (r.get("method") && !method) || (r.get("parameters") && !parameters)) {
    return nullptr;
  }
  return Json{{"limit", *limit},
              {"method", method.value_or("enqueue")},
              {"parameters", parameters.value_or(Json::array())}};
}

Json read_rate_limit(const Json& c, Json& errors) {
  Reader r(c, "rate_limit.", errors);
  auto max = r.integer("max_executions", 1, kMaxLimit, true);
  auto window = r.integer("window_seconds", 1, kMaxLimit, true);
  if (!max || !window) return nullptr;
  return Json{{"max_executions", *max}, {"window_seconds", *window}};
}

Json read_quotas(const Json& q, Json& errors) {
  if (!q.is_array()) {
    errors["quotas"] = std::string("must be an array, got ") + expr::json_type_name(q);
    return nullptr;
  }
  Json out = Json::array();
  for (size_t i = 0; i < q.size(); ++i) {
    const std::string prefix = "quotas[" + std::to_string(i) + "]";
    if (!q[i].is_object()) {
      errors[prefix] = "must be an object";
      continue;
    }
    Reader r(q[i], prefix + ".", errors);
    auto type = r.one_of("quota_type", {"running_executions", "executions_total"}, true);
    auto limit = r.integer("limit", 0, kMaxLimit, true);
    if (type && limit) out.push_back(Json{{"quota_type", *type}, {"limit", *limit}});
  }
  return out;
}

// parse_retry's message is "<field>.<name>: <why>" (or "<field>: <why>").
void record_retry_error(const std::string& message, Json& errors) {
  const auto colon = message.find(": ");
  if (colon == std::string::npos) {
    errors["retry"] = message;
  } else {
    errors[message.substr(0, colon)] = message.substr(colon + 2);
  }
}

}  // namespace

std::string_view pack_of_ref(std::string_view ref) {
  const auto dot = ref.find('.');
  return dot == std::string_view::npos ? std::string_view() : ref.substr(0, dot);
}

Result<Json> normalize_policy(const Json& body, const Json& current, bool creating, Json& fields) {
  fields = Json::object();
  if (!body.is_object()) {
    fields["body"] = "must be an object";
    return make_error(Errc::kValidation, "body: must be an object");
  }
  Json policy = creating ? Json::object() : current;
  Reader r(body, "", fields);

  if (r.has("label")) {
    const Json* v = r.get("label");
    if (v && !v->is_string()) {
      r.fail("label", std::string("must be a string or null, got ") + expr::json_type_name(*v));
    } else {
      policy["label"] = v ? *v : Json(nullptr);
    }
  }
  if (r.has("description")) {
    if (auto v = r.str("description", false)) {
      policy["description"] = *v;
    } else if (!r.get("description")) {
      policy["description"] = "";
    }
  } else if (creating) {
    policy["description"] = "";
  }
  if (auto v = r.boolean("enabled")) {
    policy["enabled"] = *v;
  } else if (creating || (r.has("enabled") && !r.get("enabled"))) {
    policy["enabled"] = true;
  }
  if (auto v = r.integer("priority", -kMaxPriority, kMaxPriority, false)) {
    policy["priority"] = *v;
  } else if (creating) {
    policy["priority"] = 0;
  }
  if (auto v = r.strings("tags")) {
    policy["tags"] = *v;
  } else if (creating || (r.has("tags") && !r.get("tags"))) {
    policy["tags"] = Json::array();
  }

  Json scope = read_scope(body, creating, current, fields);
  if (!scope.is_null()) policy["scope"] = std::move(scope);

  if (const Json* c = object_member(body, "concurrency", fields)) {
    Json v = read_concurrency(*c, fields);
    if (!v.is_null()) policy["concurrency"] = std::move(v);
  } else if (creating || (r.has("concurrency") && !r.get("concurrency"))) {
    policy["concurrency"] = nullptr;
  }
  if (const Json* c = object_member(body, "rate_limit", fields)) {
    Json v = read_rate_limit(*c, fields);
    if (!v.is_null()) policy["rate_limit"] = std::move(v);
  } else if (creating || (r.has("rate_limit") && !r.get("rate_limit"))) {
    policy["rate_limit"] = nullptr;
  }
  if (const Json* q = r.get("quotas")) {
    Json v = read_quotas(*q, fields);
    if (!v.is_null()) policy["quotas"] = std::move(v);
  } else if (creating || r.has("quotas")) {
    policy["quotas"] = Json::array();
  }
  if (const Json* retry = r.get("retry")) {
    auto spec = parse_retry(*retry, "retry");
    if (spec.ok()) {
      policy["retry"] = spec->to_json();
    } else {
      record_retry_error(spec.error().message, fields);
    }
  } else if (creating || r.has("retry")) {
    policy["retry"] = nullptr;
  }

  if (!fields.empty()) {
    const auto first = fields.begin();
    return make_error(Errc::kValidation, first.key() + ": " + first->get<std::string>());
  }
  return policy;
}

}  // namespace attune::admission
