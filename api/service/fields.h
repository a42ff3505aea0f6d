// Request-body validation: FieldReader reads typed fields and collects per-field messages for a
// 422 VALIDATION_ERROR (details.fields). Values against parameter schemas (API.md §7):
// processors/expr/param_schema.h.
#pragma once

#include <optional>
#include <string>

#include "topology/core/record.h"

namespace attune::service {

class FieldReader {
 public:
  explicit FieldReader(const Json& body) : body_(body) {}
  bool has(const char* name) const { return body_.contains(name); }
  // Each returns nullopt when absent (recording "is required" if required) or of the wrong type
  // (recording the type error).
  std::optional<std::string> str(const char* name, bool required, size_t min_len = 0,
                                 size_t max_len = 1 << 20);
  // A string or null (null ⇒ Json null).
  std::optional<Json> str_or_null(const char* name);
  std::optional<bool> boolean(const char* name);
  std::optional<int64_t> integer(const char* name, int64_t min, int64_t max);
  std::optional<Json> object(const char* name);         // object (null ⇒ absent)
  std::optional<Json> array(const char* name);          // array of anything
  std::optional<Json> string_array(const char* name);   // array of strings
  std::optional<Json> any(const char* name);
  void fail(const std::string& field, std::string message) { errors_[field] = std::move(message); }
  bool ok() const { return errors_.empty(); }
  const Json& errors() const { return errors_; }

 private:
  const Json& body_;
  Json errors_ = Json::object();
};

}  // namespace attune::service
