// Permission evaluation (see authz.h).
#include "api/authz/authz.h"

#include <algorithm>

namespace attune::authz {
namespace {

Json set_json(const std::set<std::string>& s) { return Json(std::vector<std::string>(s.begin(), s.end())); }

// A list of strings at `path` of `entry`, or an error naming it.
Result<std::optional<std::set<std::string>>> string_set(const Json& entry, const char* key,
                                                        const std::string& path) {
  auto it = entry.find(key);
  if (it == entry.end() || it->is_null()) return std::optional<std::set<std::string>>();
  if (!it->is_array()) return make_error(Errc::kValidation, path + "." + key + ": must be a list of strings");
  std::set<std::string> out;
  for (const auto& v : *it) {
    if (!v.is_string()) {
      return make_error(Errc::kValidation, path + "." + key + ": must be a list of strings");
    }
    out.insert(v.get<std::string>());
  }
  return std::optional<std::set<std::string>>(std::move(out));
}

Grant grant(std::string resource, std::set<std::string> actions) {
  Grant g;
  g.resource = std::move(resource);
  g.actions = std::move(actions);
  return g;
}

bool admits(const std::optional<std::set<std::string>>& constraint, const std::string& value) {
  return !constraint || (!value.empty() && constraint->count(value) > 0);
}

}  // namespace

Json Grant::to_json() const {
  Json j = {{"resource", resource}, {"actions", set_json(actions)}};
  Json c = Json::object();
  if (pack_refs) c["pack_refs"] = set_json(*pack_refs);
  if (owner_types) c["owner_types"] = set_json(*owner_types);
  if (owner_refs) c["owner_refs"] = set_json(*owner_refs);
  if (!c.empty()) j["constraints"] = std::move(c);
  return j;
}

const std::map<std::string, std::set<std::string>>& resource_actions() {
  static const std::map<std::string, std::set<std::string>> m = {
      {"packs", {"read", "create", "install", "configure", "delete", "update"}},
      {"actions", {"read", "create", "update", "delete", "execute"}},
      {"triggers", {"read", "create", "update", "delete"}},
      {"sensors", {"read", "create", "update", "delete"}},
      {"rules", {"read", "create", "update", "delete"}},
      {"workflows", {"read", "create", "update", "delete"}},
      {"policies", {"read", "create", "update", "delete"}},
      {"identities", {"read", "create", "update", "delete"}},
      {"executions", {"read", "update", "cancel", "decrypt"}},
      {"events", {"read", "create", "decrypt"}},
      {"enforcements", {"read", "decrypt"}},
      {"inquiries", {"read", "create", "update", "delete", "respond"}},
      {"keys", {"read", "create", "update", "delete", "decrypt", "use"}},
      {"runtimes", {"read"}},
      {"workers", {"read"}},
      {"permissions", {"read", "manage"}},
  };
  return m;
}

Result<std::vector<Grant>> parse_grants(const Json& grants) {
  if (grants.is_null()) return std::vector<Grant>{};
  if (!grants.is_array()) return make_error(Errc::kValidation, "grants: must be a list");
  std::vector<Grant> out;
  for (size_t i = 0; i < grants.size(); ++i) {
    const Json& e = grants[i];
    const std::string path = "grants[" + std::to_string(i) + "]";
    if (!e.is_object()) return make_error(Errc::kValidation, path + ": must be an object");
    Grant g;
    if (!e.value("resource", Json()).is_string() || e["resource"].get<std::string>().empty()) {
      return make_error(Errc::kValidation, path + ".resource: must be a non-empty string");
    }
    g.resource = e["resource"];
    auto actions = string_set(e, "actions", path);
    if (!actions.ok()) return actions.error();
    if (!*actions) return make_error(Errc::kValidation, path + ".actions: is required");
    g.actions = std::move(**actions);
    const Json constraints = e.value("constraints", Json::object());
    if (!constraints.is_object()) {
      return make_error(Errc::kValidation, path + ".constraints: must be an object");
    }
    const std::string cpath = path + ".constraints";
    for (auto [key, slot] : {std::pair{"pack_refs", &g.pack_refs},
                             std::pair{"owner_types", &g.owner_types},
                             std::pair{"owner_refs", &g.owner_refs}}) {
      auto v = string_set(constraints, key, cpath);
      if (!v.ok()) return v.error();
      *slot = std::move(*v);
    }
    out.push_back(std::move(g));
  }
  return out;
}

const std::map<std::string, std::vector<Grant>>& builtin_sets() {
  static const std::map<std::string, std::vector<Grant>> sets = [] {
    std::vector<Grant> admin, viewer;
    for (const auto& [resource, actions] : resource_actions()) {
      admin.push_back(grant(resource, actions));
      viewer.push_back(grant(resource, {"read"}));
    }
    std::vector<Grant> executor = viewer;
    executor.push_back(grant("actions", {"execute"}));
    executor.push_back(grant("executions", {"cancel"}));
    executor.push_back(grant("inquiries", {"respond"}));
    std::vector<Grant> editor = executor;
    for (const char* r :
         {"packs", "actions", "triggers", "sensors", "rules", "workflows", "policies", "keys"}) {
      editor.push_back(grant(r, {"create", "update", "delete"}));
    }
    editor.push_back(grant("packs", {"install", "configure"}));
    return std::map<std::string, std::vector<Grant>>{{"core.admin", admin},
                                                     {"core.editor", editor},
                                                     {"core.executor", executor},
                                                     {"core.viewer", viewer}};
  }();
  return sets;
}

bool allowed(const std::vector<Grant>& grants, std::string_view action, const Object& object) {
  return std::any_of(grants.begin(), grants.end(), [&](const Grant& g) {
    return g.resource == object.resource && g.actions.count(std::string(action)) > 0 &&
           admits(g.pack_refs, object.pack_ref) && admits(g.owner_types, object.owner_type) &&
           admits(g.owner_refs, object.owner_ref);
  });
}

bool pack_visible(const Principal& principal, const Json& pack) {
  const std::string ref = pack.value("ref", "");
  if (ref == "core") return true;
  const Json owner = pack.value("owner_identity", Json(nullptr));
  if (principal.identity_id != 0 && owner.is_number_integer() &&
      owner.get<int64_t>() == principal.identity_id) {
    return true;
  }
  for (const auto& g : principal.grants) {
    if (g.pack_refs && g.pack_refs->count(ref) > 0) return true;
    if (owner.is_null() && g.resource == "packs" && !g.pack_refs && g.actions.count("read") > 0) {
      return true;  // operator-installed packs: unconstrained packs:read
    }
  }
  return false;
}

namespace {

// Definition resources whose `core` objects every identity may read without a grant.
bool catalogue_resource(std::string_view resource) {
  static const std::set<std::string, std::less<>> r = {
      "actions", "triggers", "sensors", "rules", "workflows", "policies", "runtimes"};
  return r.count(resource) > 0;
}

constexpr std::string_view kRecordResources[] = {"events", "enforcements", "executions",
                                                 "inquiries"};

}  // namespace

View::View(Principal principal, const std::vector<std::shared_ptr<const Json>>& packs)
    : principal_(std::move(principal)) {
  Principal visibility = principal_;
  for (const auto& pack : packs) {
    const std::string ref = pack->value("ref", "");
    if (ref.empty()) continue;
    if (pack_visible(visibility, *pack)) packs_.insert(ref);
    const Json owner = pack->value("owner_identity", Json(nullptr));
    bool named = principal_.identity_id != 0 && owner.is_number_integer() &&
                 owner.get<int64_t>() == principal_.identity_id;
    for (const auto& g : principal_.grants) named = named || (g.pack_refs && g.pack_refs->count(ref));
    if (named) explicit_packs_.insert(ref);
  }
  packs_.insert("core");
  if (!principal_.standard_pack_ref.empty()) packs_.insert(principal_.standard_pack_ref);
  for (std::string_view resource : kRecordResources) {
    std::vector<std::string> scopes;
    for (const auto& ref : packs_) {
      if (allowed(principal_.grants, "read", Object{std::string(resource), ref})) {
        scopes.push_back("p:" + ref);
      }
    }
    if (principal_.identity_id != 0 &&
        allowed(principal_.grants, "read", Object{std::string(resource), "core"})) {
      scopes.push_back("i:" + std::to_string(principal_.identity_id));
    }
    std::sort(scopes.begin(), scopes.end());
    scopes_.emplace(std::string(resource), std::move(scopes));
  }
}

bool View::sees_pack(std::string_view ref) const { return packs_.count(ref) > 0; }

bool View::sees(std::string_view pack_ref, std::string_view reference_visibility) const {
  if (!sees_pack(pack_ref)) return false;
  if (reference_visibility != "private") return true;
  return explicit_packs_.count(pack_ref) > 0 || pack_ref == principal_.standard_pack_ref;
}

bool View::may(std::string_view action, const Object& object) const {
  if (allowed(principal_.grants, action, object)) return true;
  if (action != "read") return false;
  if (object.resource == "packs" && principal_.execution_id == 0) return true;
  if (object.pack_ref == "core" && catalogue_resource(object.resource) &&
      principal_.execution_id == 0) {
    return true;
  }
  if (principal_.execution_id != 0) {
    if (object.resource == "packs") return object.pack_ref == principal_.standard_pack_ref;
    if (object.resource == "actions") {
      return !object.ref.empty() && object.ref == principal_.standard_action_ref;
    }
  }
  return false;
}

bool View::may_some(std::string_view resource, std::string_view action) const {
  return std::any_of(principal_.grants.begin(), principal_.grants.end(), [&](const Grant& g) {
    return g.resource == resource && g.actions.count(std::string(action)) > 0;
  });
}

const std::vector<std::string>& View::record_scopes(std::string_view resource) const {
  static const std::vector<std::string> none;
  auto it = scopes_.find(resource);
  return it == scopes_.end() ? none : it->second;
}

bool View::may_read_record(std::string_view resource, std::string_view scope,
                           int64_t record_id) const {
  if (principal_.execution_id != 0 && record_id == principal_.execution_id &&
      (resource == "executions" || resource == "inquiries")) {
    return true;
  }
  const auto& scopes = record_scopes(resource);
  return std::binary_search(scopes.begin(), scopes.end(), scope);
}

std::string View::scope_pack(std::string_view scope) {
  if (scope.rfind("p:", 0) == 0) return std::string(scope.substr(2));
  return "core";
}

namespace {

std::string str_field(const Json& obj, const char* key, const char* def) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string(def);
}

}  // namespace

bool may_reference(const Json& target, std::string_view from_pack) {
  if (str_field(target, "pack_ref", "") == from_pack) return true;
  const std::string vis = str_field(target, "reference_visibility", "public");
  if (vis == "public") return true;
  if (vis != "restricted") return false;
  auto allowed = target.find("reference_allowed_pack_refs");
  if (allowed == target.end() || !allowed->is_array()) return false;
  return std::any_of(allowed->begin(), allowed->end(),
                     [&](const Json& p) { return p.is_string() && p.get<std::string>() == from_pack; });
}

bool discoverable(const View& view, const Json& target, std::string_view referencing_pack) {
  const std::string pack = str_field(target, "pack_ref", "");
  const std::string vis = str_field(target, "reference_visibility", "public");
  if (view.sees(pack, vis)) return true;
  if (vis == "public") return true;
  return vis == "restricted" && !referencing_pack.empty() && view.sees_pack(referencing_pack) &&
         may_reference(target, referencing_pack);
}

Json effective_permissions(const std::vector<Grant>& grants) {
  std::map<std::string, std::set<std::string>> plain;
  std::vector<Grant> constrained;
  for (const auto& g : grants) {
    if (!g.pack_refs && !g.owner_types && !g.owner_refs) {
      plain[g.resource].insert(g.actions.begin(), g.actions.end());
    } else if (std::none_of(constrained.begin(), constrained.end(), [&](const Grant& c) {
                 return c.resource == g.resource && c.actions == g.actions &&
                        c.pack_refs == g.pack_refs && c.owner_types == g.owner_types &&
                        c.owner_refs == g.owner_refs;
               })) {
      constrained.push_back(g);
    }
  }
  Json out = Json::array();
  for (const auto& [resource, actions] : plain) out.push_back(grant(resource, actions).to_json());
  for (const auto& g : constrained) out.push_back(g.to_json());
  return out;
}

}  // namespace attune::authz
