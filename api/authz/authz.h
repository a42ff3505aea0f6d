// Permission evaluation (API.md §16): grants of permission sets, the built-in sets, what a set of
// grants allows on an object, and pack visibility. Pure functions over JSON definitions, so the
// whole policy is table-tested in one place (tests/unit/authz/) and every route, list and
// notification can ask the same questions (issue 15).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::authz {

// One grant: `actions` on `resource`, optionally narrowed to objects of some packs and (keys) of
// some owner types / owner refs. Unknown resources and actions are kept as written and grant
// nothing (API.md §8).
struct Grant {
  std::string resource;
  std::set<std::string> actions;
  std::optional<std::set<std::string>> pack_refs, owner_types, owner_refs;

  Json to_json() const;
};

// What a grant is asked about. `pack_ref` empty: not pack-scoped (identities, workers, system
// keys...). owner_type/owner_ref: keys only (system|identity|pack|action|sensor, and its ref).
struct Object {
  std::string resource;
  std::string pack_ref;
  std::string owner_type, owner_ref;
};

// The resources of API.md §16.1 with their actions.
const std::map<std::string, std::set<std::string>>& resource_actions();

// Parses a permission set's `grants` (API.md §16.1). Errors (kValidation) name the entry:
// "grants[2].actions: must be a list of strings". Unknown resources/actions are accepted.
Result<std::vector<Grant>> parse_grants(const Json& grants);

// The built-in sets by ref: core.admin (everything), core.editor, core.executor, core.viewer.
const std::map<std::string, std::vector<Grant>>& builtin_sets();

// Whether any grant allows `action` on `object`: the grant's resource and action match, and each
// of its constraints present admits the object (pack_refs ∋ object.pack_ref; owner_types ∋
// object.owner_type; owner_refs ∋ object.owner_ref). A constrained grant never matches an object
// without the constrained attribute.
bool allowed(const std::vector<Grant>& grants, std::string_view action, const Object& object);

// Who is asking, for visibility: the identity id (0 for none) and its effective grants.
struct Principal {
  int64_t identity_id = 0;
  std::vector<Grant> grants;
};

// API.md §16.3: `core` is visible to everyone; another pack to its owner_identity and to holders
// of a grant (any resource) whose pack_refs names it; an ownerless pack also to holders of an
// unconstrained `packs:read`. Unconstrained grants never reveal another identity's pack.
bool pack_visible(const Principal& principal, const Json& pack);

// The effective grants as /auth/me shows them: one entry per resource with the union of the
// unconstrained actions, then one entry per distinct constrained grant.
Json effective_permissions(const std::vector<Grant>& grants);

}  // namespace attune::authz
