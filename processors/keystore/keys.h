// The datastore's key model (API.md §14): owners and canonical refs, stored values (plaintext or
// sealed), TTL expiry decisions, and the views other stages take of the keys — the secrets
// injected into an action's parameter document and the `keystore.*` template context.
//
// A key is a definition of kind "key" on attune.definitions (record key "key:<ref>"). Its stored
// object is the API shape of §7, stored sparsely (absent links are null), except that an encrypted
// key holds no `value` but `value_sealed`: the sealed value ('s' + a string's bytes, or 'c' +
// CBOR; AAD = the key ref), which never leaves the process in a response.
// Expiry is a conditional tombstone on the same topic (expiry_record), so every view agrees.
// Everything here is a pure function of its arguments (time is passed in), and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "processors/keystore/cipher.h"
#include "topology/definitions_table.h"

namespace attune::keystore {

inline constexpr std::string_view kKind = "key";
inline constexpr const char* kSealedField = "value_sealed";

enum class OwnerType { kSystem, kIdentity, kPack, kAction, kSensor };

std::string_view to_string(OwnerType t);
std::optional<OwnerType> parse_owner_type(std::string_view text);

// 1–63 characters of [a-z0-9_-].
bool valid_local_ref(std::string_view local_ref);

// system.<local>, identity.<login>.<local>, pack.<pack>.<local>, action.<action>.<local>,
// sensor.<sensor>.<local>.
std::string canonical_ref(OwnerType type, std::string_view owner, std::string_view local_ref);

struct KeyRef {
  OwnerType owner_type = OwnerType::kSystem;
  std::string owner;  // "" for system keys
  std::string local_ref;
  std::string ref;  // canonical
};

// A key path segment (API.md §2.4): without '.' it means system.<segment>; otherwise it must be
// a canonical ref with a known owner prefix and a valid local ref. nullopt otherwise.
std::optional<KeyRef> parse_ref(std::string_view segment);

// --- TTL ------------------------------------------------------------------------------------

// `expires_at` of a stored key in epoch ms, or nullopt when it never expires.
std::optional<int64_t> expires_at_ms(const Json& key);
// A key whose deadline has come (deadline <= now) behaves as deleted (404, unlisted, not
// injected, ref reusable) even before its expiry record is applied.
bool is_expired(const Json& key, int64_t now_ms);
// (Finding the keys that are due is the DefinitionsTable's deadline index: expiring().)
// The `definition.delete` record that expires `key`: payload {id, ref, reason: "expired",
// expires_at, if_match: {rev}}. Every write of a key stamps a new `rev` (an id); the table
// applies the expiry only if the key's `rev` is unchanged, so an expiry racing an update (which may
// extend the TTL) never deletes the new version, and expiries produced twice (several API
// instances) are harmless.
OutRecord expiry_record(const Json& key, int64_t now_ms, std::string_view source);

// --- values ---------------------------------------------------------------------------------

// Stores `value` into the key object: encrypted ⇒ no value, value_sealed set; else the plain
// value and no value_sealed. The key's "ref" must be set (it is the associated data).
void set_value(Json& key, const Json& value, bool encrypted, const Cipher& cipher);
// The key's value as JSON: decrypted if sealed. Errors when the ciphertext does not open.
Result<Json> read_value(const Json& key, const Cipher& cipher);

// --- views for actions and templates -----------------------------------------------------------

// Keys delivered to an action (API.md §11.4): those owned by its pack, then those owned by the
// action itself (which win on a shared local_ref), unexpired, decrypted, under their local_ref.
// `secrets` lists the string forms of the encrypted ones (for output redaction). A key that does
// not decrypt is left out and named in `errors`.
struct ActionKeys {
  Json values = Json::object();
  std::vector<std::string> secrets;
  std::vector<std::string> errors;
};
ActionKeys keys_for_action(const DefinitionsTable& table, std::string_view pack_ref,
                           std::string_view action_ref, int64_t now_ms, const Cipher& cipher);

// The `keystore` root of a rule's (or workflow's) templates: `keystore.system.<x>`,
// `keystore.pack.<pack>.<x>` for the rule's own pack, `keystore.identity.<login>.<x>` for its
// owner, and the datastore-style `keystore.<x>` for system keys. Encrypted values are decrypted
// only into this object; `secrets` lists them so a caller can keep them out of stored records.
struct TemplateKeys {
  Json root = Json::object();
  std::vector<std::string> secrets;
};
TemplateKeys template_context(const DefinitionsTable& table, std::string_view pack_ref,
                              std::string_view owner_login, int64_t now_ms, const Cipher& cipher);

// The text form of a value used for redaction: strings as they are, others as compact JSON.
std::string secret_text(const Json& value);

}  // namespace attune::keystore
