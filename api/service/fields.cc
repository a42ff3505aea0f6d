#include "api/service/fields.h"

#include "processors/expr/param_schema.h"

namespace attune::service {

std::optional<std::string> FieldReader::str(const char* name, bool required, size_t min_len,
                                            size_t max_len) {
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) {
    if (required) fail(name, "is required");
    return std::nullopt;
  }
  if (!it->is_string()) {
    fail(name, std::string("must be a string, got ") + expr::json_type_name(*it));
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
  fail(name, std::string("must be a string or null, got ") + expr::json_type_name(*it));
  return std::nullopt;
}

std::optional<bool> FieldReader::boolean(const char* name) {
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) {
    fail(name, std::string("must be a boolean, got ") + expr::json_type_name(*it));
    return std::nullopt;
  }
  return it->get<bool>();
}

std::optional<int64_t> FieldReader::integer(const char* name, int64_t min, int64_t max) {
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!expr::matches_type(*it, "integer")) {
    fail(name, std::string("must be an integer, got ") + expr::json_type_name(*it));
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
    fail(name, std::string("must be an object, got ") + expr::json_type_name(*it));
    return std::nullopt;
  }
  return *it;
}

std::optional<Json> FieldReader::array(const char* name) {
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!it->is_array()) {
    fail(name, std::string("must be an array, got ") + expr::json_type_name(*it));
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

}  // namespace attune::service
