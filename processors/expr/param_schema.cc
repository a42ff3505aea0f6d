#include "processors/expr/param_schema.h"

#include <cmath>

namespace attune::expr {

const char* json_type_name(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

bool matches_type(const Json& v, std::string_view type) {
  if (type == "string") return v.is_string();
  if (type == "integer") {
    if (v.is_number_integer() || v.is_number_unsigned()) return true;
    return v.is_number_float() && std::floor(v.get<double>()) == v.get<double>();
  }
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "array") return v.is_array();
  if (type == "object") return v.is_object();
  if (type == "null") return v.is_null();
  return true;
}

Json flat_schema(const Json& schema) {
  if (!schema.is_object()) return Json::object();
  auto props = schema.find("properties");
  if (props == schema.end() || !props->is_object()) return schema;
  Json flat = *props;
  if (auto req = schema.find("required"); req != schema.end() && req->is_array()) {
    for (const auto& r : *req) {
      if (r.is_string() && flat.contains(r.get<std::string>()) &&
          flat[r.get<std::string>()].is_object()) {
        flat[r.get<std::string>()]["required"] = true;
      }
    }
  }
  return flat;
}

std::optional<std::string> check_value(const Json& spec, const Json& v) {
  if (auto t = spec.find("type"); t != spec.end() && t->is_string()) {
    const std::string& type = t->get_ref<const std::string&>();
    if (!type.empty() && !matches_type(v, type)) {
      return "must be of type " + type + ", got " + json_type_name(v);
    }
  }
  if (auto e = spec.find("enum"); e != spec.end() && e->is_array()) {
    bool found = false;
    for (const auto& allowed : *e) found = found || allowed == v;
    if (!found) return "must be one of " + e->dump();
  }
  if (v.is_number()) {
    const double d = v.get<double>();
    if (auto mn = spec.find("minimum"); mn != spec.end() && mn->is_number() &&
                                        d < mn->get<double>()) {
      return "must be >= " + mn->dump();
    }
    if (auto mx = spec.find("maximum"); mx != spec.end() && mx->is_number() &&
                                        d > mx->get<double>()) {
      return "must be <= " + mx->dump();
    }
  }
  return std::nullopt;
}

std::optional<Json> validate_parameters(const Json& schema, const Json& params, Json& errors) {
  Json out = params.is_object() ? params : Json::object();
  const Json flat = flat_schema(schema);
  for (auto it = flat.begin(); it != flat.end(); ++it) {
    const std::string& name = it.key();
    const Json& spec = it.value();
    if (!spec.is_object()) continue;
    auto v = out.find(name);
    if (v == out.end() || v->is_null()) {
      if (spec.contains("default")) {
        out[name] = spec["default"];
      } else if (spec.value("required", false)) {
        errors[name] = "is required";
      }
      continue;
    }
    if (auto why = check_value(spec, *v)) errors[name] = std::move(*why);
  }
  if (!errors.empty()) return std::nullopt;
  return out;
}

}  // namespace attune::expr
