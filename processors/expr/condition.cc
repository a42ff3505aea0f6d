// Rule conditions: the always / expression / array-of-criteria forms of API.md §10.1.
#include "processors/expr/condition.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "processors/expr/evaluator.h"
#include "topology/core/time.h"

namespace attune::expr {
namespace {

enum class Operator : uint8_t {
  kEquals, kNotEquals, kIEquals, kContains, kNContains, kIContains, kStartsWith, kEndsWith,
  kRegex, kLt, kLte, kGt, kGte, kIn, kNin, kExists, kNExists, kTimediffLt, kTimediffGt,
};

struct OperatorInfo {
  const char* name;
  Operator op;
};

constexpr std::array kOperators = {
    OperatorInfo{"equals", Operator::kEquals},
    OperatorInfo{"not_equals", Operator::kNotEquals},
    OperatorInfo{"iequals", Operator::kIEquals},
    OperatorInfo{"contains", Operator::kContains},
    OperatorInfo{"ncontains", Operator::kNContains},
    OperatorInfo{"icontains", Operator::kIContains},
    OperatorInfo{"startswith", Operator::kStartsWith},
    OperatorInfo{"endswith", Operator::kEndsWith},
    OperatorInfo{"regex", Operator::kRegex},
    OperatorInfo{"lt", Operator::kLt},
    OperatorInfo{"lte", Operator::kLte},
    OperatorInfo{"gt", Operator::kGt},
    OperatorInfo{"gte", Operator::kGte},
    OperatorInfo{"in", Operator::kIn},
    OperatorInfo{"nin", Operator::kNin},
    OperatorInfo{"exists", Operator::kExists},
    OperatorInfo{"nexists", Operator::kNExists},
    OperatorInfo{"timediff_lt", Operator::kTimediffLt},
    OperatorInfo{"timediff_gt", Operator::kTimediffGt},
};

constexpr size_t kMaxRegexSubject = 8192;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Error invalid(const std::string& where, const std::string& message) {
  return make_error(Errc::kValidation, where + ": " + message);
}

}  // namespace

struct Condition::Impl {
  struct Criterion {
    std::string field;
    std::vector<std::string> path;
    Operator op = Operator::kEquals;
    const char* op_name = "";
    Json value;
    std::string lowered;  // iequals / icontains
    std::optional<std::regex> re;
    double seconds = 0;   // timediff
  };

  enum class Form : uint8_t { kAlways, kExpression, kCriteria };
  Form form = Form::kAlways;
  std::optional<Expression> expression;
  std::vector<Criterion> criteria;
};

namespace {

using Criterion = Condition::Impl::Criterion;

// The field inside the payload; nullptr when any step is missing.
const Json* lookup(const Json& payload, const std::vector<std::string>& path) {
  const Json* cur = &payload;
  for (const auto& step : path) {
    if (cur->is_object()) {
      const auto& obj = cur->get_ref<const Json::object_t&>();
      auto it = obj.find(step);
      if (it == obj.end()) return nullptr;
      cur = &it->second;
    } else if (cur->is_array() && !step.empty() &&
               std::all_of(step.begin(), step.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      if (step.size() > 9) return nullptr;
      size_t index = std::stoul(step);
      if (index >= cur->size()) return nullptr;
      cur = &(*cur)[index];
    } else {
      return nullptr;
    }
  }
  return cur;
}

// "now" for timediff: system.timestamp (epoch ms or RFC 3339) when bound, else the scope's clock.
int64_t now_ms(const Scope& scope) {
  if (const Json* system = scope.find("system"); system != nullptr && system->is_object()) {
    auto it = system->find("timestamp");
    if (it != system->end()) {
      if (it->is_number()) return it->get<int64_t>();
      if (it->is_string()) {
        if (auto ms = parse_rfc3339_ms(it->get_ref<const std::string&>())) return *ms;
      }
    }
  }
  return scope.clock().now_ms();
}

Result<bool> type_error(const Criterion& c, const Json& field) {
  return make_error(Errc::kValidation, "condition on '" + c.field + "': operator '" + c.op_name +
                                           "' not supported for " + internal::type_name(field) +
                                           " field");
}

bool contains(const Json& haystack, const Json& needle, bool* found) {
  if (haystack.is_string() && needle.is_string()) {
    *found = haystack.get_ref<const std::string&>().find(needle.get_ref<const std::string&>()) !=
             std::string::npos;
    return true;
  }
  if (haystack.is_array()) {
    *found = std::find(haystack.begin(), haystack.end(), needle) != haystack.end();
    return true;
  }
  if (haystack.is_object() && needle.is_string()) {
    *found = haystack.contains(needle.get_ref<const std::string&>());
    return true;
  }
  return false;
}

Result<bool> check(const Criterion& c, const Json* field, const Scope& scope) {
  if (field == nullptr) {
    return c.op == Operator::kNotEquals || c.op == Operator::kNContains || c.op == Operator::kNin ||
           c.op == Operator::kNExists;
  }
  const Json& f = *field;
  switch (c.op) {
    case Operator::kEquals: return f == c.value;
    case Operator::kNotEquals: return f != c.value;
    case Operator::kIEquals:
      if (!f.is_string()) return f == c.value;
      return lower(f.get_ref<const std::string&>()) == c.lowered;
    case Operator::kContains:
    case Operator::kNContains: {
      bool found = false;
      if (!contains(f, c.value, &found)) return type_error(c, f);
      return found == (c.op == Operator::kContains);
    }
    case Operator::kIContains:
      if (f.is_string()) return lower(f.get_ref<const std::string&>()).find(c.lowered) != std::string::npos;
      if (f.is_array()) {
        return std::any_of(f.begin(), f.end(), [&](const Json& e) {
          return e.is_string() && lower(e.get_ref<const std::string&>()) == c.lowered;
        });
      }
      return type_error(c, f);
    case Operator::kStartsWith:
    case Operator::kEndsWith: {
      if (!f.is_string()) return type_error(c, f);
      const auto& s = f.get_ref<const std::string&>();
      const auto& v = c.value.get_ref<const std::string&>();
      if (c.op == Operator::kStartsWith) return s.compare(0, v.size(), v) == 0 && s.size() >= v.size();
      return s.size() >= v.size() && s.compare(s.size() - v.size(), v.size(), v) == 0;
    }
    case Operator::kRegex: {
      if (!f.is_string()) return type_error(c, f);
      const auto& s = f.get_ref<const std::string&>();
      if (s.size() > kMaxRegexSubject) {
        return make_error(Errc::kValidation, "condition on '" + c.field + "': regex subject longer than " +
                                                 std::to_string(kMaxRegexSubject) + " bytes");
      }
      try {
        return std::regex_search(s, *c.re, std::regex_constants::match_continuous);
      } catch (const std::regex_error& e) {
        return make_error(Errc::kValidation,
                          "condition on '" + c.field + "': regex failed: " + e.what());
      }
    }
    case Operator::kLt:
    case Operator::kLte:
    case Operator::kGt:
    case Operator::kGte: {
      int cmp = 0;
      if (!internal::order(f, c.value, &cmp)) return type_error(c, f);
      switch (c.op) {
        case Operator::kLt: return cmp < 0;
        case Operator::kLte: return cmp <= 0;
        case Operator::kGt: return cmp > 0;
        default: return cmp >= 0;
      }
    }
    case Operator::kIn:
    case Operator::kNin: {
      bool found = false;
      if (!contains(c.value, f, &found)) return type_error(c, f);
      return found == (c.op == Operator::kIn);
    }
    case Operator::kExists: return true;
    case Operator::kNExists: return false;
    case Operator::kTimediffLt:
    case Operator::kTimediffGt: {
      std::optional<int64_t> t;
      if (f.is_string()) t = parse_rfc3339_ms(f.get_ref<const std::string&>());
      if (!t) {
        return make_error(Errc::kValidation, "condition on '" + c.field + "': operator '" +
                                                 c.op_name + "' needs an RFC 3339 timestamp, got " +
                                                 internal::dump_compact(f).substr(0, 64));
      }
      double diff = static_cast<double>(now_ms(scope) - *t) / 1000.0;
      return c.op == Operator::kTimediffLt ? diff < c.seconds : diff > c.seconds;
    }
  }
  return make_error(Errc::kInternal, "invalid condition operator");
}

Result<Criterion> compile_criterion(const Json& j, const std::string& where) {
  if (!j.is_object()) return invalid(where, "must be an object with field, operator and value");
  Criterion c;
  auto field = j.find("field");
  if (field == j.end() || !field->is_string() || field->get_ref<const std::string&>().empty()) {
    return invalid(where + ".field", "must be a non-empty string (a dotted path in the payload)");
  }
  c.field = field->get<std::string>();
  size_t start = 0;
  while (true) {
    size_t dot = c.field.find('.', start);
    std::string step = c.field.substr(start, dot == std::string::npos ? dot : dot - start);
    if (step.empty()) return invalid(where + ".field", "empty path segment in '" + c.field + "'");
    c.path.push_back(std::move(step));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  auto op = j.find("operator");
  if (op == j.end() || !op->is_string()) {
    return invalid(where + ".operator", "must be a string such as 'equals'");
  }
  const auto& name = op->get_ref<const std::string&>();
  auto info = std::find_if(kOperators.begin(), kOperators.end(),
                           [&](const OperatorInfo& o) { return name == o.name; });
  if (info == kOperators.end()) {
    std::string known;
    for (const auto& o : kOperators) known += std::string(known.empty() ? "" : ", ") + o.name;
    return invalid(where + ".operator", "unknown operator '" + name + "' (known: " + known + ")");
  }
  c.op = info->op;
  c.op_name = info->name;
  auto value = j.find("value");
  bool needs_value = c.op != Operator::kExists && c.op != Operator::kNExists;
  if (value == j.end()) {
    if (needs_value) return invalid(where + ".value", "required for operator '" + name + "'");
  } else {
    c.value = *value;
  }
  const std::string vwhere = where + ".value";
  switch (c.op) {
    case Operator::kIEquals:
    case Operator::kIContains:
      if (!c.value.is_string()) return invalid(vwhere, "must be a string for '" + name + "'");
      c.lowered = lower(c.value.get_ref<const std::string&>());
      break;
    case Operator::kStartsWith:
    case Operator::kEndsWith:
      if (!c.value.is_string()) return invalid(vwhere, "must be a string for '" + name + "'");
      break;
    case Operator::kRegex:
      if (!c.value.is_string()) return invalid(vwhere, "must be a regex string");
      try {
        c.re.emplace(c.value.get_ref<const std::string&>(), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return invalid(vwhere, "invalid regex '" + c.value.get<std::string>() + "': " + e.what());
      }
      break;
    case Operator::kLt:
    case Operator::kLte:
    case Operator::kGt:
    case Operator::kGte:
      if (!c.value.is_number() && !c.value.is_string()) {
        return invalid(vwhere, "must be a number or string for '" + name + "'");
      }
      break;
    case Operator::kIn:
    case Operator::kNin:
      if (!c.value.is_array() && !c.value.is_string()) {
        return invalid(vwhere, "must be an array or string for '" + name + "'");
      }
      break;
    case Operator::kTimediffLt:
    case Operator::kTimediffGt:
      if (!c.value.is_number()) return invalid(vwhere, "must be a number of seconds");
      c.seconds = c.value.get<double>();
      break;
    case Operator::kEquals:
    case Operator::kNotEquals:
    case Operator::kContains:
    case Operator::kNContains:
    case Operator::kExists:
    case Operator::kNExists:
      break;
  }
  return c;
}

}  // namespace

Result<Condition> Condition::compile(const Json& conditions) {
  auto impl = std::make_shared<Impl>();
  if (conditions.is_null() || (conditions.is_object() && conditions.empty()) ||
      (conditions.is_array() && conditions.empty())) {
    return Condition(std::move(impl));
  }
  if (conditions.is_object()) {
    for (const auto& [key, value] : conditions.items()) {
      if (key != "expression") {
        return invalid("conditions", "unknown key '" + key + "' (expected 'expression')");
      }
    }
    const Json& e = conditions["expression"];
    if (!e.is_string()) return invalid("conditions.expression", "must be a string");
    const auto& text = e.get_ref<const std::string&>();
    if (std::all_of(text.begin(), text.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); })) {
      return Condition(std::move(impl));
    }
    auto compiled = Expression::compile(text);
    if (!compiled.ok()) return invalid("conditions.expression", compiled.error().message);
    impl->form = Impl::Form::kExpression;
    impl->expression = std::move(compiled).value();
    return Condition(std::move(impl));
  }
  if (conditions.is_array()) {
    for (size_t i = 0; i < conditions.size(); ++i) {
      auto c = compile_criterion(conditions[i], "conditions[" + std::to_string(i) + "]");
      if (!c.ok()) return c.error();
      impl->criteria.push_back(std::move(c).value());
    }
    impl->form = Impl::Form::kCriteria;
    return Condition(std::move(impl));
  }
  return invalid("conditions", std::string("must be null, an object with 'expression', or an array "
                                           "of criteria; got ") +
                                   internal::type_name(conditions));
}

bool Condition::always() const { return impl_->form == Impl::Form::kAlways; }

Result<bool> Condition::matches(const Scope& scope) const {
  switch (impl_->form) {
    case Impl::Form::kAlways:
      return true;
    case Impl::Form::kExpression:
      return impl_->expression->test(scope);
    case Impl::Form::kCriteria: {
      const Json* event = scope.find("event");
      if (event == nullptr) event = scope.find("trigger");
      if (event == nullptr || !event->is_object()) return true;
      auto it = event->find("payload");
      if (it == event->end() || it->is_null()) return true;
      for (const auto& c : impl_->criteria) {
        auto r = check(c, lookup(*it, c.path), scope);
        if (!r.ok() || !*r) return r;
      }
      return true;
    }
  }
  return make_error(Errc::kInternal, "invalid condition form");
}

}  // namespace attune::expr
