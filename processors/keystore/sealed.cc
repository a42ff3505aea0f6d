// Sealed secret parameters and redaction markers.
#include "processors/keystore/sealed.h"

#include "processors/keystore/keys.h"

namespace attune::keystore {
namespace {

constexpr size_t kMinSecretLength = 4;

void collect_secret(const Json& props, std::set<std::string>& out) {
  if (!props.is_object()) return;
  for (const auto& [name, spec] : props.items()) {
    if (spec.is_object() && spec.value("secret", false) == true) out.insert(name);
  }
}

bool contains_secret(const std::string& text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (s.size() >= kMinSecretLength && text.find(s) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

const Json& redaction_marker() {
  static const Json kMarker = {{kMarkerKey, true}, {"redacted", true}};
  return kMarker;
}

bool is_marker(const Json& v) {
  return v.is_object() && v.value(kMarkerKey, false) == true;
}

std::set<std::string> secret_fields(const Json& schema) {
  std::set<std::string> out;
  if (!schema.is_object()) return out;
  if (auto it = schema.find("properties"); it != schema.end()) {
    collect_secret(*it, out);
    return out;
  }
  collect_secret(schema, out);
  return out;
}

std::string sealed_aad(std::string_view entity, int64_t id) {
  return std::string(entity) + ":" + std::to_string(id);
}

SealedConfig seal_config(const Json& config, const std::set<std::string>& names,
                         const std::vector<std::string>& secret_values, const Cipher& cipher,
                         std::string_view aad) {
  SealedConfig out;
  out.config = config;
  if (!config.is_object()) return out;
  Json hidden = Json::object();
  for (const auto& [k, v] : config.items()) {
    if (is_marker(v)) continue;
    const std::string text = secret_text(v);
    if (names.count(k) > 0 || contains_secret(text, secret_values)) {
      hidden[k] = v;
      out.secrets.push_back(text);
      out.config[k] = redaction_marker();
    }
  }
  if (!hidden.empty()) out.sealed = cipher.seal(hidden.dump(), aad);
  return out;
}

Result<Json> unseal_config(const Json& config, const std::string& sealed, const Cipher& cipher,
                           std::string_view aad) {
  auto plain = cipher.open(sealed, aad);
  if (!plain.ok()) return plain.error();
  Json hidden = Json::parse(*plain, nullptr, false);
  if (!hidden.is_object()) return make_error(Errc::kInternal, "sealed config is not an object");
  Json out = config.is_object() ? config : Json::object();
  for (auto& [k, v] : hidden.items()) out[k] = std::move(v);
  return out;
}

void redact_fields(Json& object, const std::set<std::string>& names) {
  if (!object.is_object()) return;
  for (const auto& n : names) {
    if (auto it = object.find(n); it != object.end() && !it->is_null()) *it = redaction_marker();
  }
}

}  // namespace attune::keystore
