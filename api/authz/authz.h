// Permission evaluation (API.md §16): grants of permission sets, the built-in sets, what a set of
// grants allows on an object, and pack visibility. Pure functions over JSON definitions, so the
// whole policy is table-tested in one place (tests/unit/authz/) and every route, list and
// notification can ask the same questions (issue 15).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
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
  std::string ref;  // the object's own ref, when known (execution tokens' standard access)
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
  // Execution tokens (API.md §16.2): identity_id is 0 (never the starter's rights); grants are
  // those of the token's permission sets, plus reading the executing action and its pack, and
  // the execution itself.
  int64_t execution_id = 0;
  std::string standard_action_ref, standard_pack_ref;
};

// API.md §16.3: `core` is visible to everyone; another pack to its owner_identity and to holders
// of a grant (any resource) whose pack_refs names it; an ownerless pack also to holders of an
// unconstrained `packs:read`. Unconstrained grants never reveal another identity's pack.
bool pack_visible(const Principal& principal, const Json& pack);

// Everything one caller may see and do (API.md §16.1–16.3), computed once from its grants and
// the installed packs. Immutable, so it is cached per identity and shared by REST handlers and
// the notifier.
//
// Visibility (sees*) answers 404-or-not; permission (may*) answers 403-or-not. Reads that need
// no grant: every visible pack (GET /packs), and the objects of `core` (the catalogue every
// identity may read).
class View {
 public:
  // `packs`: every pack definition (ref, owner_identity).
  View(Principal principal, const std::vector<std::shared_ptr<const Json>>& packs);

  const Principal& principal() const { return principal_; }
  bool sees_pack(std::string_view ref) const;
  // A pack's object: its pack is visible, and a `reference_visibility: private` object of a
  // shared pack (core, ownerless) needs ownership or a grant naming the pack.
  bool sees(std::string_view pack_ref, std::string_view reference_visibility = "public") const;
  // Whether the grants (or the grant-free reads above) allow `action` on `object`.
  bool may(std::string_view action, const Object& object) const;
  // Whether the caller holds `action` on `resource` for some object at all (a grant of any
  // constraints): what a route checks before it resolves the object.
  bool may_some(std::string_view resource, std::string_view action) const;

  // Derived records (events, enforcements, executions, inquiries): a record's scope
  // (projections::record_scope: "p:<pack>" or "i:<identity id>") decides who sees it. The
  // scopes whose records of `resource` this caller may read, sorted; and the same question for
  // one record. `record_id` lets an execution token read its own execution and (resource
  // "inquiries", record_id = the inquiry's `execution`) that execution's inquiries.
  const std::vector<std::string>& record_scopes(std::string_view resource) const;
  bool may_read_record(std::string_view resource, std::string_view scope,
                       int64_t record_id = 0) const;
  // The pack a scope's records belong to ("core" for identity scopes).
  static std::string scope_pack(std::string_view scope);

 private:
  Principal principal_;
  std::set<std::string, std::less<>> packs_;          // visible pack refs
  std::set<std::string, std::less<>> explicit_packs_;  // owned or named by a grant
  std::map<std::string, std::vector<std::string>, std::less<>> scopes_;  // by resource
};

// API.md §16.5: whether objects of pack `from_pack` (rules, workflows) may reference `target`
// (an action or trigger): its own pack always; else `public`, or `restricted` naming from_pack
// in reference_allowed_pack_refs; never `private`.
bool may_reference(const Json& target, std::string_view from_pack);
// Reference discovery (§16.5): the metadata of `target` is shown to a caller who cannot see its
// pack when it is public, or restricted and `referencing_pack` (a pack the caller sees) is
// allowed.
bool discoverable(const View& view, const Json& target, std::string_view referencing_pack);

// The effective grants as /auth/me shows them: one entry per resource with the union of the
// unconstrained actions, then one entry per distinct constrained grant.
Json effective_permissions(const std::vector<Grant>& grants);

}  // namespace attune::authz
