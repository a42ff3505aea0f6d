#include "api/service/fields.h"

#include <cmath>

namespace attune::service {

namespace {

const char* type_name(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

bool matches_type(const Json& v, const std::string& type) {
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
  return true;  // "any" or unknown types do not constrain
}

}  // namespace

std::optional<std::string> FieldReader::str(const char* name, bool required, size_t min_len,
                                            size_t max_len) {
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) {
    if (required) fail(name, "is required");
    return std::nullopt;
  }
  if (!it->is_string()) {
    fail(name, std::string("must be a string, got ") + type_name(*it));
    return std::nullopt;
  }
  auto s = it->get<std::string>();
  if (s.size() < min_len) {
    fail(name, min_len == 1 ? "must not be empty"
                            : "must be at least " + std::to_string(min_len) + " characters");
    return std::nullopt;
  }
  if (s.size() > max_len) {
    fail(name, "must be at most " + std::to_string(max_len) + " characters");
    return std::nullopt;
  }
  return s;
}

std::optional<Json> FieldReader::str_or_null(const char* name) {
  auto it = body_.find(name);
  if (it == body_.end()) return std::nullopt;
  if (it->is_null() || it->is_string()) return *it;
  fail(name, std::string("must be a string or null, got ") + type_name(*it));
  return std::nullopt;
}

std::optional<bool> FieldReader::boolean(const char* name) {
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) {
    fail(name, std::string("must be a boolean, got ") + type_name(*it));
    return std::nullopt;
  }
  return it->get<bool>();
}

std::optional<int64_t> FieldReader::integer(const char* name, int64_t min, int64_t max) {
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!matches_type(*it, "integer")) {
    fail(name, std::string("must be an integer, got ") + type_name(*it));
    return std::nullopt;
  }
  const auto v = it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
  if (v < min || v > max) {
    fail(name, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return std::nullopt;
  }
  return v;
}

std::optional<Json> FieldReader::object(const char* name) {
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) {
    fail(name, std::string("must be an object, got ") + type_name(*it));
    return std::nullopt;
  }
  return *it;
}

std::optional<Json> FieldReader::array(const char* name) {
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!it->is_array()) {
    fail(name, std::string("must be an array, got ") + type_name(*it));
    return std::nullopt;
  }
  return *it;
}

std::optional<Json> FieldReader::string_array(const char* name) {
  auto a = array(name);
  if (!a) return std::nullopt;
  for (const auto& v : *a) {
    if (!v.is_string()) {
      fail(name, "must be an array of strings");
      return std::nullopt;
    }
  }
  return a;
}

std::optional<Json> FieldReader::any(const char* name) {
  auto it = body_.find(name);
  if (it == body_.end()) return std::nullopt;
  return *it;
}

Json flat_schema(const Json& schema) {
  if (!schema.is_object()) return Json::object();
  auto props = schema.find("properties");
  if (schema.value("type", "") == "object" && props != schema.end() && props->is_object()) {
    Json flat = *props;
    if (auto req = schema.find("required"); req != schema.end() && req->is_array()) {
      for (const auto& r : *req) {
        if (r.is_string() && flat.contains(r.get<std::string>())) {
          flat[r.get<std::string>()]["required"] = true;
        }
      }
    }
    return flat;
  }
  return schema;
}

std::optional<Json> validate_against_schema(const Json& schema, const Json& params, Json& errors) {
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
    const std::string type = spec.value("type", "");
    if (!type.empty() && !matches_type(*v, type)) {
      errors[name] = "must be of type " + type + ", got " + type_name(*v);
      continue;
    }
    if (auto e = spec.find("enum"); e != spec.end() && e->is_array()) {
      bool found = false;
      for (const auto& allowed : *e) found = found || allowed == *v;
      if (!found) {
        errors[name] = "must be one of " + e->dump();
        continue;
      }
    }
    if (v->is_number()) {
      const double d = v->get<double>();
      if (auto mn = spec.find("minimum"); mn != spec.end() && mn->is_number() &&
                                          d < mn->get<double>()) {
        errors[name] = "must be >= " + mn->dump();
      } else if (auto mx = spec.find("maximum"); mx != spec.end() && mx->is_number() &&
                                                 d > mx->get<double>()) {
        errors[name] = "must be <= " + mx->dump();
      }
    }
  }
  if (!errors.empty()) return std::nullopt;
  return out;
}

}  // namespace attune::service
