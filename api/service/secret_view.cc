// Secret redaction of stored rows on their way out (API.md §16.4). Executions and enforcements
// keep secret parameters sealed in `secret_config` (processors/keystore/sealed.h) with markers in
// `config`; events keep their payload as received and are redacted here by the trigger's schema.
#include <spdlog/spdlog.h>

#include "api/rest/http.h"
#include "api/projections/schema.h"
#include "api/service/context.h"
#include "processors/keystore/sealed.h"

namespace attune::service {

namespace {

std::set<std::string> trigger_secret_fields(const DefinitionsTable& defs, const Json& row) {
  std::set<std::string> names;
  const Json ref = row.value("trigger_ref", Json());
  if (!ref.is_string()) return names;
  auto trigger = defs.get("trigger", ref.get<std::string>());
  if (!trigger) return names;
  for (const char* schema : {"out_schema", "payload_schema"}) {
    auto more = keystore::secret_fields(trigger->value(schema, Json::object()));
    names.insert(more.begin(), more.end());
  }
  return names;
}

std::set<std::string> action_secret_fields(const DefinitionsTable& defs, const Json& row) {
  const Json ref = row.value("action_ref", Json());
  if (!ref.is_string()) return {};
  auto action = defs.get("action", ref.get<std::string>());
  return action ? keystore::secret_fields(action->value("param_schema", Json::object()))
                : std::set<std::string>();
}

}  // namespace

Result<bool> ServiceContext::reveal_secrets(const Call& c, std::string_view resource,
                                            const Json& row, std::string_view entity) const {
  auto v = c.req.query_param("include_secret_values");
  if (!v || v->empty()) return false;
  auto on = rest::parse_bool(*v);
  if (!on) {
    return make_error(Errc::kBadRequest, "Query parameter 'include_secret_values' must be a boolean");
  }
  if (!*on) return false;
  // API.md §16.4: <resource>:decrypt on the row's pack.
  const std::string pack = authz::View::scope_pack(
      projections::record_scope(projections::entity_of(entity), row));
  if (!c.can().may("decrypt", authz::Object{std::string(resource), pack})) {
    return make_error(Errc::kForbidden, "Missing permission " + std::string(resource) + ":decrypt");
  }
  return true;
}

void ServiceContext::present_row(std::string_view entity, Json& row, bool reveal) const {
  if (!row.is_object()) return;
  if (entity == "event") {
    if (reveal) return;
    const auto names = trigger_secret_fields(defs, row);
    if (names.empty()) return;
    if (auto it = row.find("payload"); it != row.end()) keystore::redact_fields(*it, names);
    if (auto it = row.find("config"); it != row.end()) keystore::redact_fields(*it, names);
    return;
  }
  // execution | enforcement
  auto sealed = row.find(keystore::kSecretConfigField);
  if (sealed != row.end()) {
    if (reveal && sealed->is_string() && options.cipher) {
      const int64_t id = row.value("id", int64_t{0});
      auto open = keystore::unseal_config(row.value("config", Json::object()),
                                          sealed->get<std::string>(), *options.cipher,
                                          keystore::sealed_aad(entity, id));
      if (open.ok()) {
        row["config"] = std::move(*open);
      } else {
        spdlog::error("{} {}: cannot open its secret parameters: {}", entity, id,
                      open.error().message);
      }
    }
    row.erase(keystore::kSecretConfigField);
  }
  if (entity == "enforcement") {
    // The event payload copy stays redacted regardless (§16.4).
    const auto names = trigger_secret_fields(defs, row);
    if (auto it = row.find("payload"); it != row.end() && !names.empty()) {
      keystore::redact_fields(*it, names);
    }
    return;
  }
  if (!reveal) {
    // Rows written before sealing existed, or by a writer without a cipher.
    const auto names = action_secret_fields(defs, row);
    if (auto it = row.find("config"); it != row.end() && !names.empty()) {
      keystore::redact_fields(*it, names);
    }
  }
}

void ServiceContext::present_list(std::string_view entity, Json& envelope) const {
  for (const char* field : {"items", "data"}) {
    auto it = envelope.find(field);
    if (it == envelope.end() || !it->is_array()) continue;
    for (auto& row : *it) present_row(entity, row, false);
  }
}

Json ServiceContext::seal_execution_config(Json execution, const Json& action) const {
  if (!options.cipher) return execution;
  const auto names = keystore::secret_fields(action.value("param_schema", Json::object()));
  if (names.empty()) return execution;
  auto sealed = keystore::seal_config(execution.value("config", Json::object()), names, {},
                                      *options.cipher,
                                      keystore::sealed_aad("execution", execution["id"]));
  execution["config"] = std::move(sealed.config);
  if (sealed.sealed) execution[keystore::kSecretConfigField] = *sealed.sealed;
  return execution;
}

}  // namespace attune::service
