// The datastore (API.md §14): keys with owners, encryption at rest, TTL. Keys are definitions of
// kind "key" on attune.definitions (processors/keystore/keys.h); reads come from the
// DefinitionsTable, with expired keys treated as absent until their expiry record lands.
//
// Rights (may_key, API.md §16.1–16.4):
//   * identity keys: their owner alone (read, write, decrypt); invisible to everyone else,
//     administrators included.
//   * system keys: the keys:<action> grant; pack, action and sensor keys: a visible owning pack
//     and the grant (constraints pack_refs / owner_types / owner_refs narrow it). Without
//     keys:read a key is invisible (404, unlisted); without keys:decrypt an encrypted key reads
//     `value: null`.
//   * execution tokens — system keys, keys of the action's pack and of the action itself: read
//     (decrypted), write, delete; everything else is invisible.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

#include "api/rest/pagination.h"
#include "api/service/fields.h"
#include "api/service/service.h"
#include "processors/keystore/expiry.h"
#include "processors/keystore/keys.h"
#include "topology/core/time.h"

namespace attune::service {

using detail::deleted;
using detail::error;
using detail::validation;
using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;
using keystore::OwnerType;

namespace {

constexpr int64_t kMaxTtlSeconds = int64_t{10} * 365 * 24 * 3600;

std::string str(const Json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t id_of(const Json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// The pack a key belongs to ("" for system and identity keys).
std::string key_pack_ref(const Json& key) { return str(key, "owner_pack_ref"); }

// A key as grants see it (API.md §16.1: constraints pack_refs, owner_types, owner_refs).
authz::Object key_object(const Json& key) {
  authz::Object o;
  o.resource = "keys";
  o.pack_ref = key_pack_ref(key);
  o.owner_type = str(key, "owner_type");
  o.owner_ref = str(key, "owner");
  o.ref = str(key, "ref");
  return o;
}

// Execution tokens (API.md §11.4): system keys and those of their own pack and action.
bool in_execution_scope(const Principal& p, const Json& key) {
  const std::string type = str(key, "owner_type");
  if (type == "system") return true;
  if (type == "pack") return str(key, "owner") == p.execution_pack_ref;
  if (type == "action") return str(key, "owner") == p.execution_action_ref;
  return false;
}

// Whether the caller may `action` (read, create, update, delete, decrypt) on `key`: identity
// keys are their owner's alone (API.md §16.3); other keys need the grant (constraints narrow
// it), and pack-owned ones a visible pack.
bool may_key(const Call& c, const Json& key, std::string_view action) {
  const Principal& p = c.who();
  if (p.execution_id != 0) return in_execution_scope(p, key);
  const std::string type = str(key, "owner_type");
  if (type == "identity") return id_of(key, "owner_identity") == p.id && p.id != 0;
  if (type != "system" && !c.can().sees_pack(key_pack_ref(key))) return false;
  return c.can().may(action, key_object(key));
}

bool key_visible(const Call& c, const Json& key) { return may_key(c, key, "read"); }
bool may_decrypt(const Call& c, const Json& key) { return may_key(c, key, "decrypt"); }

// Stored sparsely (every record is parsed by every reader); the API shape has every link.
constexpr std::array<std::string_view, 9> kLinks = {
    "owner",        "owner_identity",   "owner_pack",   "owner_pack_ref",  "owner_action",
    "owner_action_ref", "owner_sensor", "owner_sensor_ref", "expires_at"};

// Stored fields the API does not show: the sealed text, the revision, the creator.
bool internal_field(std::string_view field) {
  return field == keystore::kSealedField || field == "rev" || field == "created_by";
}

// The API shape of a key in a list: internal fields and the value removed (API.md §14: lists
// carry no values), every owner link present.
Json present_listed_key(const Json& key) {
  // Copies only what is shown: neither the sealed text (a third larger than the value) nor the
  // value.
  Json out = Json::object();
  for (const auto& [field, v] : key.items()) {
    if (internal_field(field) || field == "value") continue;
    out[field] = v;
  }
  for (std::string_view link : kLinks) {
    if (!out.contains(link)) out[std::string(link)] = nullptr;
  }
  return out;
}

// The API shape of one key, with its value (decrypted when `decrypt`, else null for encrypted
// keys; `known` is the plaintext when the caller has it at hand, which saves decrypting it), as
// the response body {"data": key, "message"?}. Written straight to JSON text: the fields in the
// order nlohmann would print them (sorted), without copying the key into new objects first (a key
// read or written is answered this way at API rates).
rest::HttpResponse key_response(int status, const Json& key, bool decrypt,
                                const keystore::Cipher& cipher, const Json* known = nullptr,
                                std::optional<std::string_view> message = std::nullopt) {
  static const Json kNull = nullptr;
  std::vector<std::pair<std::string_view, const Json*>> fields;
  fields.reserve(key.size() + kLinks.size());
  for (auto it = key.begin(); it != key.end(); ++it) {
    const std::string& field = it.key();
    if (internal_field(field)) continue;
    fields.emplace_back(field, &*it);
  }
  for (std::string_view link : kLinks) {
    if (!key.contains(link)) fields.emplace_back(link, &kNull);
  }
  Json decrypted;
  if (key.value("encrypted", false)) {
    const Json* value = &kNull;
    if (decrypt && known != nullptr) {
      value = known;
    } else if (decrypt) {
      auto v = keystore::read_value(key, cipher);
      if (v.ok()) {
        decrypted = std::move(*v);
        value = &decrypted;
      } else {
        spdlog::error("key {}: cannot decrypt: {}", str(key, "ref"), v.error().message);
      }
    }
    auto at = std::find_if(fields.begin(), fields.end(),
                           [](const auto& f) { return f.first == "value"; });
    if (at != fields.end()) {
      at->second = value;
    } else {
      fields.emplace_back("value", value);
    }
  }
  std::sort(fields.begin(), fields.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  rest::HttpResponse r;
  r.status = status;
  std::string& out = r.body;
  out.reserve(512);
  nlohmann::detail::serializer<Json> json(
      nlohmann::detail::output_adapter<char, std::string>(out), ' ',
      Json::error_handler_t::replace);
  out += "{\"data\":{";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    json.dump(Json(fields[i].first), false, false, 0);
    out += ':';
    json.dump(*fields[i].second, false, false, 0);
  }
  out += '}';
  if (message) {
    out += ",\"message\":";
    json.dump(Json(*message), false, false, 0);
  }
  out += '}';
  return r;
}

// `ttl_seconds` of a create/update body into `expires_at`: a positive integer sets it, null
// clears it, absence keeps it. False (with a field error) for anything else.
bool apply_ttl(FieldReader& f, const Json& body, Json& key, int64_t now_ms) {
  auto it = body.find("ttl_seconds");
  if (it == body.end()) return true;
  if (it->is_null()) {
    key.erase("expires_at");
    return true;
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > kMaxTtlSeconds) {
    f.fail("ttl_seconds", "must be a positive integer (at most " +
                              std::to_string(kMaxTtlSeconds) + ")");
    return false;
  }
  key["expires_at"] = format_rfc3339_ms(now_ms + it->get<int64_t>() * 1000);
  return true;
}



// The live, visible key a path segment names, or nullptr.
JsonPtr find_key(const DefinitionsTable& defs, const Call& c, const std::string& segment,
                 int64_t now_ms) {
  JsonPtr key;
  if (detail::all_digits(segment)) {
    key = defs.get_by_id(keystore::kKind, std::stoll(segment));
  } else if (auto ref = keystore::parse_ref(segment)) {
    key = defs.get(keystore::kKind, ref->ref);
  }
  if (!key || keystore::is_expired(*key, now_ms) || !key_visible(c, *key)) return nullptr;
  return key;
}

rest::HttpResponse get_key(ServiceContext& s, Call& c) {
  Req& req = c.req;
  const std::string& segment = req.params["ref"];
  auto key = find_key(s.defs, c, segment, s.now_ms());
  if (!key) return error(Errc::kNotFound, "Key '" + segment + "' not found");
  return key_response(200, *key, may_decrypt(c, *key), *s.options.cipher);
}

rest::HttpResponse list_keys(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  // Empty = no filter.
  const std::string owner_type = req.query_param("owner_type").value_or("");
  const std::string owner = req.query_param("owner").value_or("");
  if (!owner_type.empty() && !keystore::parse_owner_type(owner_type)) {
    return error(Errc::kBadRequest,
                 "Query parameter 'owner_type' must be one of system, identity, pack, action, "
                 "sensor");
  }
  const int64_t now = s.now_ms();
  // With an owner type (and owner) the refs share a prefix: a range scan, not a full one.
  std::string prefix;
  if (!owner_type.empty()) {
    prefix = owner_type + ".";
    if (!owner.empty() && owner_type != "system") prefix += owner + ".";
  }
  std::vector<JsonPtr> rows;
  for (auto& k : s.defs.list_prefix(keystore::kKind, prefix)) {
    if (keystore::is_expired(*k, now) || !key_visible(c, *k)) continue;
    if (!owner.empty() && owner_type != "system" && str(*k, "owner") != owner) continue;
    rows.push_back(std::move(k));
  }
  return Resp::json(200, detail::sorted_page(std::move(rows), *page, [](const Json& key) {
    return present_listed_key(key);
  }));
}

rest::HttpResponse create_key(ServiceContext& s, Call& c) {
  Req& req = c.req;
  const Principal* p = &c.who();
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  // `local_ref` is the contract; a bare `ref` (or a canonical one) is read the same way.
  std::optional<std::string> local = f.str("local_ref", false);
  std::optional<keystore::KeyRef> given;
  if (!local && body->contains("ref")) {
    if (auto ref = f.str("ref", true, 1, 512)) {
      given = keystore::parse_ref(*ref);
      if (!given) f.fail("ref", "is not a key ref");
      else local = given->local_ref;
    }
  }
  if (!local && !body->contains("ref")) f.fail("local_ref", "is required");
  if (local && !keystore::valid_local_ref(*local)) {
    f.fail("local_ref", "must be 1-63 characters of [a-z0-9_-]");
  }
  if (!body->contains("value")) f.fail("value", "is required");
  auto name = f.str("name", false, 0, 255);
  auto encrypted = f.boolean("encrypted");
  std::string type_text = given ? std::string(keystore::to_string(given->owner_type)) : "system";
  if (auto t = f.str("owner_type", false)) type_text = *t;
  auto type = keystore::parse_owner_type(type_text);
  if (!type) f.fail("owner_type", "must be one of system, identity, pack, action, sensor");
  if (!f.ok()) return validation(f.errors());

  // Owner: from the body's owner field for the type, else the ref given, else (identity) the
  // caller.
  auto owner_field = [&](const char* field) -> std::optional<std::string> {
    if (auto v = f.str(field, false, 1)) return v;
    if (given && given->owner_type == *type && !given->owner.empty()) return given->owner;
    if (auto v = f.str("owner", false, 1)) return v;
    return std::nullopt;
  };
  Json key = Json::object();
  std::string owner;
  switch (*type) {
    case OwnerType::kSystem:
      break;
    case OwnerType::kIdentity: {
      if (p->execution_id != 0) {
        return error(Errc::kForbidden, "Execution tokens cannot own identity keys");
      }
      owner = owner_field("owner_identity_login").value_or(p->login);
      auto identity = s.defs.get("identity", owner);
      if (!identity) return error(Errc::kNotFound, "Identity '" + owner + "' not found");
      if (id_of(*identity, "id") != p->id) {
        return error(Errc::kForbidden, "Identity keys can only be created for yourself");
      }
      key.update(Json{{"owner", owner}, {"owner_identity", (*identity)["id"]}});
      break;
    }
    case OwnerType::kPack: {
      auto ref = owner_field("owner_pack_ref");
      if (!ref) return validation(Json{{"owner_pack_ref", "is required for pack keys"}});
      auto pack = s.defs.resolve("pack", *ref);
      if (!pack || (p->execution_id == 0 && !c.can().sees_pack(str(*pack, "ref")))) {
        return error(Errc::kNotFound, "Pack '" + *ref + "' not found");
      }
      owner = str(*pack, "ref");
      key.update(Json{{"owner", owner}, {"owner_pack", (*pack)["id"]}, {"owner_pack_ref", owner}});
      break;
    }
    case OwnerType::kAction:
    case OwnerType::kSensor: {
      const bool action = *type == OwnerType::kAction;
      const char* kind = action ? "action" : "sensor";
      auto ref = owner_field(action ? "owner_action_ref" : "owner_sensor_ref");
      if (!ref) {
        return validation(Json{{action ? "owner_action_ref" : "owner_sensor_ref",
                                std::string("is required for ") + kind + " keys"}});
      }
      auto obj = s.defs.resolve(kind, *ref);
      auto pack = obj ? s.defs.get("pack", str(*obj, "pack_ref")) : nullptr;
      if (!obj || (p->execution_id == 0 && !c.can().sees_pack(str(*obj, "pack_ref")))) {
        return error(Errc::kNotFound, std::string(action ? "Action" : "Sensor") + " '" + *ref +
                                          "' not found");
      }
      owner = str(*obj, "ref");
      key.update(Json{{"owner", owner},
                      {"owner_pack", pack ? (*pack)["id"] : Json(nullptr)},
                      {"owner_pack_ref", str(*obj, "pack_ref")},
                      {action ? "owner_action" : "owner_sensor", (*obj)["id"]},
                      {action ? "owner_action_ref" : "owner_sensor_ref", owner}});
      break;
    }
  }
  const std::string ref = keystore::canonical_ref(*type, owner, *local);
  key.update(Json{{"ref", ref},
                  {"local_ref", *local},
                  {"owner_type", keystore::to_string(*type)},
                  {"name", name && !name->empty() ? *name : *local}});
  if (p->execution_id != 0 && !in_execution_scope(*p, key)) {
    return error(Errc::kForbidden,
                 "Execution tokens may only write system keys and keys of their own pack");
  }
  if (!may_key(c, key, "create")) {
    return error(Errc::kForbidden, "Permission denied: needs keys:create for '" +
                                       keystore::canonical_ref(*type, owner, *local) + "'");
  }
  const int64_t now = s.now_ms();
  if (!apply_ttl(f, *body, key, now)) return validation(f.errors());
  keystore::set_value(key, (*body)["value"], encrypted.value_or(true), *s.options.cipher);

  auto held = s.key_holds.hold(ref);  // until the write is applied (or refused)
  if (auto existing = s.defs.get(keystore::kKind, ref);
      existing && !keystore::is_expired(*existing, now)) {
    return error(Errc::kConflict, "Key '" + ref + "' already exists");
  }
  // An expired key may be replaced: the claim then only needs nobody else creating it now.
  auto claimant = s.claim(keystore::kKind, ref, !s.defs.get(keystore::kKind, ref));
  if (!claimant.ok()) return s.claim_failed(claimant.error(), "Key '" + ref + "' already exists");
  const std::string stamp = format_rfc3339_ms(now);
  key.update(Json{{"id", s.ids.next()},
                  {"rev", s.ids.next()},
                  {"created_by", p->id},
                  {"created", stamp},
                  {"updated", stamp}});
  const bool reveal = may_decrypt(c, key);
  // One object for the table (applied without a re-parse) and the answer.
  JsonPtr written;
  std::vector<OutRecord> records{
      shared_definition_record(keystore::kKind, std::move(key), now, "api", &written)};
  s.claim_release(records, keystore::kKind, ref, *claimant);
  return s.write_definitions_then(
      std::move(records), std::move(held),
      [&s, written, reveal, value = std::move((*body)["value"])] {
        if (written->contains("expires_at") && s.key_expiry) s.key_expiry->notify();
        return key_response(201, *written, reveal, *s.options.cipher, &value, "Key created");
      });
}

rest::HttpResponse update_key(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto name = f.str("name", false, 0, 255);
  auto encrypted = f.boolean("encrypted");
  if (!f.ok()) return validation(f.errors());
  const std::string& segment = req.params["ref"];
  auto found = find_key(s.defs, c, segment, s.now_ms());
  if (!found) return error(Errc::kNotFound, "Key '" + segment + "' not found");
  if (!may_key(c, *found, "update")) {
    return error(Errc::kForbidden, "Permission denied: needs keys:update");
  }
  const std::string ref = str(*found, "ref");
  auto held = s.key_holds.hold(ref);  // until the write is applied (or refused)
  const int64_t now = s.now_ms();
  // Again, holding the key: unchanged since (the usual case) it needs no second check.
  JsonPtr existing = s.defs.get(keystore::kKind, ref);
  if (existing != found) existing = find_key(s.defs, c, segment, now);
  if (!existing || keystore::is_expired(*existing, now)) {
    return error(Errc::kNotFound, "Key '" + segment + "' not found");
  }
  Json key = *existing;
  if (!apply_ttl(f, *body, key, now)) return validation(f.errors());
  if (name && !name->empty()) key["name"] = *name;
  const bool encrypt = encrypted.value_or(key.value("encrypted", false));
  if (body->contains("value")) {
    keystore::set_value(key, (*body)["value"], encrypt, *s.options.cipher);
  } else if (encrypt != key.value("encrypted", false)) {
    auto v = keystore::read_value(key, *s.options.cipher);
    if (!v.ok()) return error(Errc::kInternal, "The key's value cannot be decrypted");
    keystore::set_value(key, *v, encrypt, *s.options.cipher);
  }
  key["rev"] = s.ids.next();
  key["updated"] = format_rfc3339_ms(now);
  const bool reveal = may_decrypt(c, key);
  std::optional<Json> known;
  if (body->contains("value")) known = std::move((*body)["value"]);
  JsonPtr written;
  OutRecord record =
      shared_definition_record(keystore::kKind, std::move(key), now, "api", &written);
  return s.write_definitions_then(
      {std::move(record)}, std::move(held),
      [&s, written, reveal, known = std::move(known)] {
        if (written->contains("expires_at") && s.key_expiry) s.key_expiry->notify();
        return key_response(200, *written, reveal, *s.options.cipher, known ? &*known : nullptr,
                            "Key updated");
      });
}

rest::HttpResponse delete_key(ServiceContext& s, Call& c) {
  Req& req = c.req;
  const std::string& segment = req.params["ref"];
  auto found = find_key(s.defs, c, segment, s.now_ms());
  if (!found) return error(Errc::kNotFound, "Key '" + segment + "' not found");
  if (!may_key(c, *found, "delete")) {
    return error(Errc::kForbidden, "Permission denied: needs keys:delete");
  }
  auto held = s.key_holds.hold(str(*found, "ref"));  // until the delete is applied (or refused)
  auto key = find_key(s.defs, c, segment, s.now_ms());
  if (!key) return error(Errc::kNotFound, "Key '" + segment + "' not found");
  const std::string ref = str(*key, "ref");
  return s.write_definitions_then(
      {definition_tombstone(keystore::kKind, ref, id_of(*key, "id"), s.now_ms(), "api")},
      std::move(held), [ref] { return deleted("Key '" + ref + "' deleted"); });
}

}  // namespace

void register_key_routes(RouteTable& t, ServiceContext& s) {
  const std::string v1 = "/api/v1/keys";
  // Execution tokens are welcome here (API.md §11.4: their own pack's and action's keys).
  t.add("GET", v1, Access::to("keys", "read"), bound(s, list_keys));
  t.add("POST", v1, Access::to("keys", "create").on_object(), bound(s, create_key));
  t.add("GET", v1 + "/{ref}", Access::to("keys", "read"), bound(s, get_key));
  t.add("PUT", v1 + "/{ref}", Access::to("keys", "update"), bound(s, update_key));
  t.add("DELETE", v1 + "/{ref}", Access::to("keys", "delete"), bound(s, delete_key));
}

}  // namespace attune::service
