// Sealed secret parameters (API.md §11.4, §16.4). A secret never sits in plaintext in a stored
// record: where an execution's or enforcement's `config` would hold one, it holds the redaction
// marker {"$attune_secret": true, "redacted": true} and the record carries `secret_config`, the
// real values sealed with the master key (AAD "<entity>:<id>"). The worker opens it to build the
// parameter document; the API opens it only for `include_secret_values=true` with the decrypt
// right. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "processors/keystore/cipher.h"
#include "topology/core/record.h"

namespace attune::keystore {

inline constexpr const char* kSecretConfigField = "secret_config";
inline constexpr const char* kMarkerKey = "$attune_secret";

// {"$attune_secret": true, "redacted": true}
const Json& redaction_marker();
bool is_marker(const Json& v);

// Names of the fields a schema marks `secret: true` — flat ({name: {secret}}) or JSON-Schema
// style ({properties: {name: {secret}}}).
std::set<std::string> secret_fields(const Json& schema);

// AAD of a record's sealed config: "execution:<id>" / "enforcement:<id>".
std::string sealed_aad(std::string_view entity, int64_t id);

struct SealedConfig {
  Json config;                        // secret fields replaced by the marker
  std::optional<std::string> sealed;  // the replaced fields, sealed; nullopt when none
  std::vector<std::string> secrets;   // their text forms (for output redaction)
};
// Moves the top-level fields of `config` that are named in `names`, or whose text contains one
// of `secret_values` (>= 4 chars; e.g. a decrypted key rendered by a template), into a sealed
// object. A non-object config is returned unchanged.
SealedConfig seal_config(const Json& config, const std::set<std::string>& names,
                         const std::vector<std::string>& secret_values, const Cipher& cipher,
                         std::string_view aad);

// `config` with its markers replaced by the sealed values. Errors when the seal does not open.
Result<Json> unseal_config(const Json& config, const std::string& sealed, const Cipher& cipher,
                           std::string_view aad);

// Replaces the named fields of `object` (when present) with the marker, in place.
void redact_fields(Json& object, const std::set<std::string>& names);

}  // namespace attune::keystore
