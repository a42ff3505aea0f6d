// ServiceContext: what every REST routes unit shares — the log (writes), the DefinitionsTable and
// the projections (reads), who is calling (tokens, grants, the cached authz::View), the
// read-your-writes write helpers, the definition helpers and the secret views. Each resource's
// routes live in their own unit (api/service/<resource>_routes.cc, registered by ApiService) and
// reach the platform only through this context. Thread-safe: handlers run on many HTTP threads.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "api/auth/jwt.h"
#include "api/authz/authz.h"
#include "api/rest/http.h"
#include "api/rest/pagination.h"
#include "api/service/metrics.h"
#include "api/service/routes.h"
#include "processors/keystore/expiry.h"
#include "topology/core/clock.h"
#include "topology/core/hash.h"
#include "topology/core/ids.h"
#include "topology/definitions_table.h"
#include "topology/log.h"

namespace attune::projections {
class Projections;
}
namespace attune::keystore {
class Cipher;
class KeyExpiry;
}  // namespace attune::keystore
namespace attune::sensor {
class SensorStatusSource;
}
namespace attune::runners {
class PackEnvironments;
}

namespace attune::service {

class FieldReader;
struct FieldSpec;

struct ServiceOptions {
  std::string api_url;  // advertised base URL, without /api/v1
  bool allow_self_registration = true;
  int64_t access_ttl_s = 3600;
  int64_t refresh_ttl_s = 7 * 24 * 3600;
  std::chrono::milliseconds write_timeout{10000};  // read-your-writes wait
  std::string version = "0.1.0";
  // Datastore encryption (API.md §14); required for the keys routes and secret parameters.
  std::shared_ptr<const keystore::Cipher> cipher;
  // Many API instances (Kafka): creates decide ref races by claims on attune.definitions
  // (topology/definitions_table.h), so exactly one instance answers 201. `instance` names this
  // process start in its claims. Off on the embedded log, where write_mu decides.
  bool claim_creates = false;
  std::string instance;
  // Answers carry X-Attune-Consistency (api/service/consistency.h): on Kafka only, where several
  // instances can answer one client.
  bool consistency_tokens = false;
  // Packs (API.md §8): installed pack files live under packs_root (<data dir>/packs), one
  // directory per installed version; POST /packs/register reads only inside packs_dirs.
  std::string packs_root;
  bool shared_pack_files = false;  // packs_root may be shared with other API instances
  std::vector<std::string> packs_dirs;
  int64_t pack_max_upload_bytes = 64LL << 20;
  int64_t pack_max_unpacked_bytes = 512LL << 20;
  // Builds python/node environments after an install (state on the pack); may be null.
  std::shared_ptr<runners::PackEnvironments> environments;
  // The notifier URL clients are told (GET /health/detailed `websocket_url`): public_ws_url when
  // configured (--public-ws-url, for proxies), else ws://<host of the request's Host header>:
  // <notifier_port>/ws once this process's notifier listens (0 = none yet; set by serve).
  std::string public_ws_url;
  std::shared_ptr<std::atomic<int>> notifier_port = std::make_shared<std::atomic<int>>(0);
  // The web console's built files (index.html, assets/*), served at / (console_routes.cc).
  std::string console_dir;
};

// Who is calling (from a verified JWT).
struct Principal {
  int64_t id = 0;
  std::string login;
  std::string token_type;
  JsonPtr identity;  // the identity row (the token's `sub`)
  // Execution tokens (API.md §4.3, §16.2): the execution they are scoped to (0 otherwise), and
  // its action and pack, read from the execution itself, and the token's permission sets.
  int64_t execution_id = 0;
  std::string execution_action_ref;
  std::string execution_pack_ref;
  Json permission_set_refs = Json::array();
  Json trigger_types = Json::array();  // sensor tokens: the triggers they may fire
};

class ServiceContext {
 public:
  ServiceContext(Log& log, DefinitionsTable& defs, projections::Projections& views,
                 const auth::JwtCodec& jwt, IdGenerator& ids, const Clock& clock,
                 Metrics& metrics, ServiceOptions options);
  ~ServiceContext();

  Log& log;
  DefinitionsTable& defs;
  projections::Projections& views;
  const auth::JwtCodec& jwt;
  IdGenerator& ids;
  const Clock& clock;
  Metrics& metrics;
  const ServiceOptions options;

  // --- who is calling ----------------------------------------------------------------------
  Result<Principal> authenticate(const rest::HttpRequest& req) const;
  // The execution an execution token is scoped to, while that token is valid: the execution
  // exists and has not finished (API.md §4.2: the token expires with it). Otherwise 401
  // (kUnauthorized), or the storage error. The one rule for REST and the notifier.
  Result<Json> token_execution(int64_t execution_id) const;
  // The grants an identity holds: its sets (permission_set_refs, assignments, and the sets bound
  // to its roles).
  std::vector<authz::Grant> grants_of(const Json& identity) const;
  std::set<std::string> set_refs_of(const Json& identity) const;
  // Execution rights are not a way around grants (API.md §16.2): permission_set_refs on an
  // execution or a rule name only sets the caller holds, unless it holds permissions:manage.
  std::optional<rest::HttpResponse> check_set_refs(const Call& c, const Json& refs) const;
  // What a principal may see and do, cached per (token kind, identity) until the definitions
  // change.
  std::shared_ptr<const authz::View> view_of(const Principal& p) const;
  // The view of an identity's access token (notifier deliveries); null for an unknown identity.
  std::shared_ptr<const authz::View> identity_view(int64_t identity_id) const;

  // --- writes --------------------------------------------------------------------------------
  // Writes definition records (upserts and tombstones) and waits until the DefinitionsTable has
  // applied them. Callers hold write_mu across check-then-write so refs stay unique.
  Status write_definitions(std::vector<OutRecord> records);
  // Writes definition records without holding the request thread: the response is `respond()`,
  // made once the definitions table has applied them (read-your-writes), or the error. `held`
  // (e.g. a key hold) is released once they are applied.
  rest::HttpResponse write_definitions_then(std::vector<OutRecord> records,
                                            std::shared_ptr<void> held,
                                            std::function<rest::HttpResponse()> respond);
  // Across API instances: claims <kind>:<ref> (with `absent`, only while it does not exist) and
  // waits until this instance's table has applied the claim. Returns the claimant to release
  // with the write (claim_release), "" when claims are off, kConflict when another instance won.
  Result<std::string> claim(std::string_view kind, std::string_view ref, bool absent);
  // Appends the release of a won claim to the records that complete it (nothing for "").
  void claim_release(std::vector<OutRecord>& records, std::string_view kind, std::string_view ref,
                     const std::string& claimant) const;
  // The answer to a lost claim: 409 with `conflict` (what the local check would have said), or
  // the error that kept the claim from being decided.
  static rest::HttpResponse claim_failed(const Error& e, std::string conflict);
  Status produce_and_wait(OutRecord record, bool wait_projection);
  // Read-your-writes for events, which webhooks write without waiting for the projection: waits
  // until the projection has applied everything attune.events held when the read began.
  // kUnavailable when it lags by more than the write timeout.
  Status events_caught_up();

  std::string now_str() const;
  int64_t now_ms() const { return clock.now_ms(); }

  // --- definitions (definitions.cc) ----------------------------------------------------------
  using UpdateCheck =
      std::function<std::optional<rest::HttpResponse>(FieldReader&, const Json& body, Json& obj)>;
  // GET of a pack-scoped definition by ref or id, with the route's object check.
  rest::HttpResponse get_definition(Call& c, std::string_view kind, std::string_view label);
  // The definition a `{ref}` path segment names if the caller may `action` on it (nullptr and
  // the 404/403 answer otherwise).
  JsonPtr find_checked(Call& c, std::string_view kind, std::string_view label,
                       std::optional<rest::HttpResponse>& refused, std::string_view action = {});
  // Creates a pack-scoped definition (action, trigger, rule): refuses a taken ref with 409,
  // stamps id/ref/pack/created, writes and waits, answers 201.
  rest::HttpResponse insert_scoped(std::string_view kind, std::string_view label,
                                   const Json& pack, const std::string& ref, Json obj);
  // PUT of a definition: applies the writable `fields` present in the body, then `check` (which
  // may reject with a response or record field errors), bumps `updated`, writes and waits.
  rest::HttpResponse update_definition(Call& c, std::string_view kind, std::string_view label,
                                       const std::vector<FieldSpec>& fields,
                                       const UpdateCheck& check);
  // Definitions of `kind` the caller may see, in list order, filtered by `keep`.
  std::vector<JsonPtr> visible_definitions(const Call& c, std::string_view kind,
                                           const std::function<bool(const Json&)>& keep) const;

  // --- identities ----------------------------------------------------------------------------
  JsonPtr find_identity(const std::string& id_or_login) const;
  Json token_response(const Json& identity) const;

  // --- secrets (secret_view.cc, API.md §16.4) -------------------------------------------------
  // The checked include_secret_values (an error when the caller may not decrypt).
  Result<bool> reveal_secrets(const Call& c, std::string_view resource, const Json& row,
                              std::string_view entity) const;
  void present_row(std::string_view entity, Json& row, bool reveal) const;
  void present_list(std::string_view entity, Json& envelope) const;
  // The execution row with secret parameters sealed (for POST /executions/execute).
  Json seal_execution_config(Json execution, const Json& action) const;

  // --- sensors -------------------------------------------------------------------------------
  void set_sensor_status(const sensor::SensorStatusSource* sensors) { sensors_ = sensors; }
  const sensor::SensorStatusSource* sensor_status() const { return sensors_; }
  std::vector<OutRecord> sensor_records(const Json& sensor, const Json& old);

  // Serialises definition writes within this instance (unique refs, consistent cascades).
  std::mutex write_mu;
  // Key writes hold only their ref (check-then-write of one key) until the write is applied, so
  // writes of different keys commit concurrently (and group) instead of queueing behind
  // write_mu. Declared before key_expiry, which uses it.
  keystore::KeyHolds key_holds;
  // The datastore's TTL expiry (owned by ApiService), told about new deadlines; may be null.
  keystore::KeyExpiry* key_expiry = nullptr;

 private:
  // Verified token → claims. A signature's validity depends only on the token text and the
  // (immutable) secret, so a verified token need not be verified again; `exp` is still checked on
  // every use, and identity/execution checks always run. Cleared when it reaches its bound.
  mutable std::shared_mutex token_cache_mu_;
  mutable std::unordered_map<std::string, std::shared_ptr<const auth::Claims>, TextHash,
                             std::equal_to<>>
      token_cache_;
  // Views by "<token kind>:<identity or execution id>", valid for one definitions version.
  mutable std::mutex views_mu_;
  mutable uint64_t views_version_ = 0;
  mutable std::unordered_map<std::string, std::shared_ptr<const authz::View>> view_cache_;
  const sensor::SensorStatusSource* sensors_ = nullptr;
  std::atomic<uint64_t> claims_made_{0};
};

// A routes unit's handler, bound to the context (what RouteTable::add takes).
using UnitHandler = rest::HttpResponse (*)(ServiceContext&, Call&);
inline CallHandler bound(ServiceContext& s, UnitHandler fn) {
  return [&s, fn](Call& c) { return fn(s, c); };
}

// Route helpers shared by the handler files.
namespace detail {
rest::HttpResponse data(int status, Json value, std::optional<std::string> message = {});
rest::HttpResponse error(Errc code, std::string message, Json details = nullptr);
rest::HttpResponse validation(Json fields);  // 422 with details.fields
rest::HttpResponse deleted(std::string message);
bool all_digits(std::string_view s);
// One page of `rows` (already in list order) as a list envelope (API.md §3); `present` shapes
// each row on the way out (identity: the row as stored).
Json page_envelope(const std::vector<JsonPtr>& rows, const rest::PageRequest& page,
                   const std::function<Json(const Json&)>& present = {});
// The same in the default list order: newest first (`created`, then id), reversed for
// order=asc.
Json sorted_page(std::vector<JsonPtr> rows, const rest::PageRequest& page,
                 const std::function<Json(const Json&)>& present = {});
// The comma-separated values of a query parameter (absent: none).
std::set<std::string> csv_set(const std::optional<std::string>& value);
// Whether `needle` (lower case; empty matches all) occurs in the object's ref, label or
// description, case-insensitively (the `q` filter).
bool matches_text(const Json& obj, const std::string& needle);
// An object's pack_ref, "" when it has none (null or absent: ownerless permission sets, ...).
std::string pack_ref_of(const Json& obj);

// `pack_ref` + `ref` of a pack-scoped create body (API.md §2.3: `ref` is the name or the full
// `<pack>.<name>`): the pack and the full ref, or the 422/404 response to send. The pack must be
// visible to the caller (404) and the caller may `create` `resource` in it (403).
struct Scoped {
  JsonPtr pack;
  std::string ref;
  std::string name;
};
std::optional<rest::HttpResponse> resolve_scoped(const Call& c, const DefinitionsTable& defs,
                                                 const Json& body, Scoped& out);
}  // namespace detail

}  // namespace attune::service
