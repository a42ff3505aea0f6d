// Key refs, TTL decisions, stored values and the injection/template views of the datastore.
#include "processors/keystore/keys.h"

#include <algorithm>

#include "topology/core/time.h"

namespace attune::keystore {
namespace {

constexpr std::array<std::pair<OwnerType, std::string_view>, 5> kOwnerNames = {{
    {OwnerType::kSystem, "system"},
    {OwnerType::kIdentity, "identity"},
    {OwnerType::kPack, "pack"},
    {OwnerType::kAction, "action"},
    {OwnerType::kSensor, "sensor"},
}};

std::string str(const Json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string_view to_string(OwnerType t) {
  for (const auto& [type, name] : kOwnerNames) {
    if (type == t) return name;
  }
  return "system";
}

std::optional<OwnerType> parse_owner_type(std::string_view text) {
  for (const auto& [type, name] : kOwnerNames) {
    if (name == text) return type;
  }
  return std::nullopt;
}

bool valid_local_ref(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string canonical_ref(OwnerType type, std::string_view owner, std::string_view local_ref) {
  std::string out(to_string(type));
  out += '.';
  if (type != OwnerType::kSystem) {
    out += owner;
    out += '.';
  }
  out += local_ref;
  return out;
}

std::optional<KeyRef> parse_ref(std::string_view segment) {
  if (segment.empty()) return std::nullopt;
  const auto first = segment.find('.');
  if (first == std::string_view::npos) {
    if (!valid_local_ref(segment)) return std::nullopt;
    return KeyRef{OwnerType::kSystem, "", std::string(segment),
                  canonical_ref(OwnerType::kSystem, "", segment)};
  }
  auto type = parse_owner_type(segment.substr(0, first));
  if (!type) return std::nullopt;
  const auto last = segment.rfind('.');
  const std::string_view local = segment.substr(last + 1);
  if (!valid_local_ref(local)) return std::nullopt;
  KeyRef out;
  out.owner_type = *type;
  out.local_ref = std::string(local);
  if (*type == OwnerType::kSystem) {
    if (last != first) return std::nullopt;  // system.<a>.<b> is not a ref
  } else {
    if (last == first) return std::nullopt;  // owner missing
    out.owner = std::string(segment.substr(first + 1, last - first - 1));
    if (out.owner.empty()) return std::nullopt;
  }
  out.ref = canonical_ref(out.owner_type, out.owner, out.local_ref);
  return out;
}

std::optional<int64_t> expires_at_ms(const Json& key) {
  auto it = key.find("expires_at");
  if (it == key.end() || !it->is_string()) return std::nullopt;
  return parse_rfc3339_ms(it->get<std::string>());
}

bool is_expired(const Json& key, int64_t now_ms) {
  auto at = expires_at_ms(key);
  return at && *at <= now_ms;
}

OutRecord expiry_record(const Json& key, int64_t now_ms, std::string_view source) {
  const std::string ref = str(key, "ref");
  OutRecord rec = definition_tombstone(kKind, ref, key.value("id", int64_t{0}), now_ms, source);
  Envelope e;
  std::string error;
  Envelope::parse(rec.value, e, error);
  e.payload["reason"] = "expired";
  e.payload["expires_at"] = key.value("expires_at", Json(nullptr));
  e.payload["if_match"] = {{"rev", key.value("rev", Json(nullptr))}};
  rec.value = e.dump();
  return rec;
}

void set_value(Json& key, const Json& value, bool encrypted, const Cipher& cipher) {
  key["encrypted"] = encrypted;
  if (encrypted) {
    key.erase("value");  // stored sparsely; the API shape shows null
    // Plaintext: 's' + the raw bytes of a string value (decoding is a copy), else 'c' + CBOR
    // (much faster to decode than JSON text).
    std::string plain;
    if (value.is_string()) {
      plain = "s" + value.get<std::string>();
    } else {
      const std::vector<uint8_t> cbor = Json::to_cbor(value);
      plain.reserve(cbor.size() + 1);
      plain += 'c';
      plain.append(reinterpret_cast<const char*>(cbor.data()), cbor.size());
    }
    key[kSealedField] = cipher.seal(plain, str(key, "ref"));
  } else {
    key["value"] = value;
    key.erase(kSealedField);
  }
}

Result<Json> read_value(const Json& key, const Cipher& cipher) {
  auto it = key.find(kSealedField);
  if (it == key.end() || !it->is_string()) return key.value("value", Json(nullptr));
  auto ref = key.find("ref");
  auto plain = cipher.open(it->get_ref<const std::string&>(),
                           ref != key.end() && ref->is_string()
                               ? std::string_view(ref->get_ref<const std::string&>())
                               : std::string_view());
  if (!plain.ok()) return plain.error();
  std::string& text = *plain;
  if (!text.empty() && text.front() == 's') {
    text.erase(0, 1);  // a move in place; the buffer becomes the JSON string without a copy
    return Json(std::move(text));
  }
  Json v = text.empty() || text.front() != 'c'
               ? Json(Json::value_t::discarded)
               : Json::from_cbor(text.begin() + 1, text.end(), true, false);
  if (v.is_discarded()) return make_error(Errc::kInternal, "decrypted value is not readable");
  return v;
}

std::string secret_text(const Json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

ActionKeys keys_for_action(const DefinitionsTable& table, std::string_view pack_ref,
                           std::string_view action_ref, int64_t now_ms, const Cipher& cipher) {
  ActionKeys out;
  auto add = [&](const std::string& prefix) {
    for (const auto& k : table.list_prefix(kKind, prefix)) {
      if (is_expired(*k, now_ms)) continue;
      const std::string ref = str(*k, "ref");
      if (ref.find('.', prefix.size()) != std::string::npos) continue;  // a deeper owner
      auto v = read_value(*k, cipher);
      if (!v.ok()) {
        out.errors.push_back(ref + ": " + v.error().message);
        continue;
      }
      if (k->value("encrypted", false)) out.secrets.push_back(secret_text(*v));
      out.values[str(*k, "local_ref")] = std::move(*v);
    }
  };
  if (!pack_ref.empty()) add("pack." + std::string(pack_ref) + ".");
  if (!action_ref.empty()) add("action." + std::string(action_ref) + ".");
  return out;
}

TemplateKeys template_context(const DefinitionsTable& table, std::string_view pack_ref,
                              std::string_view owner_login, int64_t now_ms, const Cipher& cipher) {
  TemplateKeys out;
  Json& root = out.root;
  auto add = [&](const std::string& prefix, Json& into, Json* also) {
    for (const auto& k : table.list_prefix(kKind, prefix)) {
      if (is_expired(*k, now_ms)) continue;
      const std::string ref = str(*k, "ref");
      if (ref.find('.', prefix.size()) != std::string::npos) continue;
      auto v = read_value(*k, cipher);
      if (!v.ok()) continue;  // renders as a missing value
      if (k->value("encrypted", false)) out.secrets.push_back(secret_text(*v));
      const std::string local = str(*k, "local_ref");
      if (also != nullptr && !also->contains(local)) (*also)[local] = *v;
      into[local] = std::move(*v);
    }
  };
  root["system"] = Json::object();
  add("system.", root["system"], nullptr);
  // Datastore style: keystore.<local_ref> for system keys (a canonical root name wins).
  for (const auto& [local, v] : root["system"].items()) {
    if (local != "system" && local != "pack" && local != "identity") root[local] = v;
  }
  if (!pack_ref.empty()) {
    root["pack"] = Json::object();
    Json& mine = root["pack"][std::string(pack_ref)];
    mine = Json::object();
    add("pack." + std::string(pack_ref) + ".", mine, nullptr);
  }
  if (!owner_login.empty()) {
    root["identity"] = Json::object();
    Json& mine = root["identity"][std::string(owner_login)];
    mine = Json::object();
    add("identity." + std::string(owner_login) + ".", mine, nullptr);
  }
  return out;
}

}  // namespace attune::keystore
