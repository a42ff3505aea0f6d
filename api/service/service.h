// ApiService: the REST handlers of API.md on top of the log (writes), the DefinitionsTable and
// the projections (reads). Every write returns only once the API's own views show it
// (read-your-writes, API.md §2.6). Thread-safe: handlers run on many HTTP threads.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "api/auth/jwt.h"
#include "api/authz/authz.h"
#include "api/rest/http.h"
#include "api/rest/pagination.h"
#include "api/rest/router.h"
#include "api/service/metrics.h"
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
  // process start in its claims. Off on the embedded log, where write_mu_ decides.
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
};

// Who is calling (from a verified JWT).
struct Principal {
  int64_t id = 0;
  std::string login;
  std::string token_type;
  bool admin = false;
  JsonPtr identity;  // null for tokens whose identity is synthetic
  // Execution tokens (API.md §4.3, §16.2): the execution they are scoped to (0 otherwise), and
  // its action and pack, read from the execution itself.
  int64_t execution_id = 0;
  std::string execution_action_ref;
  std::string execution_pack_ref;
  Json trigger_types = Json::array();  // sensor tokens: the triggers they may fire
};

// What to do about the first administrator (API.md §1).
struct BootstrapOptions {
  std::optional<std::string> admin;  // "login:password" from ATTUNE_BOOTSTRAP_ADMIN
  std::string data_dir;              // where a generated admin password is written (0600)
};

class ApiService {
 public:
  ApiService(Log& log, DefinitionsTable& defs, projections::Projections& views,
             const auth::JwtCodec& jwt, IdGenerator& ids, const Clock& clock, Metrics& metrics,
             ServiceOptions options);
  ~ApiService();

  // Starts background work: the datastore's TTL expiry (stopped by the destructor).
  void start_background();

  // Creates the built-in core pack (actions, triggers, runtimes) and the first administrator.
  // Idempotent; prints a generated admin password once to stdout.
  Status bootstrap(const BootstrapOptions& options);
  void register_routes(rest::Router& router);

  // Exposed for the CLI and tests.
  Result<Principal> authenticate(const rest::HttpRequest& req) const;
  // The execution an execution token is scoped to, while that token is valid: the execution
  // exists and has not finished (API.md §4.2: the token expires with it). Otherwise 401
  // (kUnauthorized), or the storage error. The one rule for REST and the notifier.
  Result<Json> token_execution(int64_t execution_id) const;
  // Where sensor status and logs come from (this process's sensor stage on one machine, the
  // attune.sensors view on Kafka); may stay unset.
  void set_sensor_status(const sensor::SensorStatusSource* sensors);

 private:
  using Req = rest::HttpRequest;
  using Resp = rest::HttpResponse;

  // auth_routes.cc
  Resp register_identity(Req& req);
  Resp login(Req& req);
  Resp refresh(Req& req);
  Resp me(Req& req);
  Json token_response(const Json& identity) const;

  // definitions_routes.cc
  using UpdateCheck =
      std::function<std::optional<rest::HttpResponse>(FieldReader&, const Json& body, Json& obj)>;
  Resp get_definition(Req& req, std::string_view kind, std::string_view label);
  // Creates a pack-scoped definition (action, trigger, rule): refuses a taken ref with 409,
  // stamps id/ref/pack/created, writes and waits, answers 201.
  Resp insert_scoped(std::string_view kind, std::string_view label, const Json& pack,
                     const std::string& ref, Json obj);
  // PUT of a definition: applies the writable `fields` present in the body, then `check` (which
  // may reject with a response or record field errors), bumps `updated`, writes and waits.
  Resp update_definition(Req& req, std::string_view kind, std::string_view label,
                         const std::vector<FieldSpec>& fields, const UpdateCheck& check);
  Resp list_packs(Req& req);
  Resp get_pack(Req& req);
  Resp create_pack(Req& req);
  Resp update_pack(Req& req);
  Resp delete_pack(Req& req);
  Resp list_actions(Req& req);
  Resp get_action(Req& req);
  Resp create_action(Req& req);
  Resp update_action(Req& req);
  Resp delete_action(Req& req);
  Resp list_triggers(Req& req);
  Resp get_trigger(Req& req);
  Resp create_trigger(Req& req);
  Resp update_trigger(Req& req);
  Resp delete_trigger(Req& req);
  Resp webhook_toggle(Req& req, std::string_view op);
  Resp list_rules(Req& req);
  Resp get_rule(Req& req);
  Resp create_rule(Req& req);
  Resp update_rule(Req& req);
  Resp delete_rule(Req& req);
  Resp set_rule_enabled(Req& req, bool enabled);
  Resp list_runtimes(Req& req);
  Resp get_runtime(Req& req);

  // runtime_routes.cc
  Resp get_row(Req& req, std::string_view label,
               const std::function<Result<std::optional<Json>>(int64_t)>& lookup);
  Resp receive_webhook(Req& req);
  Resp create_event(Req& req);
  Resp list_events(Req& req);
  Resp get_event(Req& req);
  Resp list_enforcements(Req& req);
  Resp get_enforcement(Req& req);
  Resp enforcement_executions(Req& req);
  Resp execute(Req& req);
  Resp list_executions(Req& req, std::optional<std::string> status_override = std::nullopt);
  Resp get_execution(Req& req);
  Resp execution_stats(Req& req);
  Resp cancel_execution(Req& req);

  // keys_routes.cc (API.md §14)
  void register_key_routes(rest::Router& router);
  Resp list_keys(Req& req);
  Resp get_key(Req& req);
  Resp create_key(Req& req);
  Resp update_key(Req& req);
  Resp delete_key(Req& req);
  // secret_view.cc (API.md §16.4): redaction of stored rows on the way out. `reveal` is the
  // checked include_secret_values (an error response when the caller may not decrypt).
  Result<bool> reveal_secrets(const Req& req, const Principal& p, std::string_view right) const;
  void present_row(std::string_view entity, Json& row, bool reveal) const;
  void present_list(std::string_view entity, Json& envelope) const;
  // The execution row with secret parameters sealed (for POST /executions/execute).
  Json seal_execution_config(Json execution, const Json& action) const;
  // permission_routes.cc (API.md §16.1)
  Resp list_permission_sets(Req& req);
  Resp get_permission_set(Req& req);
  Resp create_permission_set(Req& req);
  Resp update_permission_set(Req& req);
  Resp delete_permission_set(Req& req);
  Resp list_assignments(Req& req);
  Resp create_assignment(Req& req);
  Resp delete_assignment(Req& req);
  // identity_routes.cc (API.md §16.1)
  JsonPtr find_identity(const std::string& id_or_login) const;
  Resp list_identities(Req& req);
  Resp get_identity(Req& req);
  Resp create_identity(Req& req);
  Resp update_identity(Req& req);
  Resp delete_identity(Req& req);
  Resp set_identity_role(Req& req, bool add);
  Resp add_set_role(Req& req);
  // The grants an identity holds: its sets (permission_set_refs, assignments, and the sets bound
  // to its roles).
  std::vector<authz::Grant> grants_of(const Json& identity) const;
  // nullopt when the caller (an access token) may `action` on `object`; else the 401/403 answer.
  std::optional<rest::HttpResponse> require(const Req& req, std::string_view action,
                                            const authz::Object& object) const;
  // Upserts of the built-in core.* sets that are missing or changed (bootstrap).
  std::vector<OutRecord> builtin_permission_set_records();

  // pack_routes.cc (API.md §8)
  // Lifetime guard for environment builds that finish after the service is gone.
  struct Life {
    std::mutex mu;
    bool alive = true;
  };
  Resp upload_pack(Req& req);
  Resp register_pack(Req& req);
  // Installs the pack at `root` (inside `staging`, which is removed afterwards): validates all of
  // it, moves its files to their version directory, writes every definition in one batch.
  Resp install_pack(const std::string& staging, const std::string& root, const std::string& method,
                    bool force, Json owner);
  std::string new_staging_dir();
  // Removes an installed version's directory (only below packs_root).
  void remove_pack_files(const std::string& storage_path);
  // Startup: removes staging leftovers and version directories no pack points at.
  void sweep_pack_dirs();
  // Startup: removes python/node environments no installed pack content uses.
  void sweep_environments();
  Status install_core_pack();
  void build_environment(const std::string& ref, const std::string& storage_path);
  void set_pack_environment(const std::string& ref, const std::string& storage_path,
                            Json environment);
  // sensor_routes.cc
  Resp list_sensors(Req& req);
  Resp get_sensor(Req& req);
  Resp create_sensor(Req& req);
  Resp update_sensor(Req& req);
  Resp delete_sensor(Req& req);
  Resp sensor_logs(Req& req);
  Json with_sensor_status(const Json& sensor) const;
  std::optional<rest::HttpResponse> resolve_sensor_runtime(const Json& body, Json& sensor,
                                                           bool creating);
  std::vector<OutRecord> sensor_records(const Json& sensor, const Json& old);

  // Writes definition records (upserts and tombstones) and waits until the DefinitionsTable has
  // applied them. Callers hold write_mu_ across check-then-write so refs stay unique.
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
  int64_t now_ms() const { return clock_.now_ms(); }

  Log& log_;
  DefinitionsTable& defs_;
  projections::Projections& views_;
  const auth::JwtCodec& jwt_;
  IdGenerator& ids_;
  const Clock& clock_;
  Metrics& metrics_;
  const ServiceOptions options_;

  // Verified token → claims. A signature's validity depends only on the token text and the
  // (immutable) secret, so a verified token need not be verified again; `exp` is still checked on
  // every use, and identity/execution checks always run. Cleared when it reaches its bound.
  mutable std::shared_mutex token_cache_mu_;
  // Verified tokens (looked up by the token's text without copying it).
  mutable std::unordered_map<std::string, std::shared_ptr<const auth::Claims>, TextHash,
                             std::equal_to<>>
      token_cache_;
  const sensor::SensorStatusSource* sensors_ = nullptr;
  // Serialises definition writes within this instance (unique refs, consistent cascades).
  std::mutex write_mu_;
  std::atomic<uint64_t> claims_made_{0};
  // Key writes hold only their ref (check-then-write of one key) until the write is applied, so
  // writes of different keys commit concurrently (and group) instead of queueing behind
  // write_mu_. Declared before key_expiry_, which uses it.
  keystore::KeyHolds key_holds_;
  std::unique_ptr<keystore::KeyExpiry> key_expiry_;
  // Webhook rate limiting: per key, timestamps (ms) of accepted requests in the window.
  std::mutex rate_mu_;
  std::map<std::string, std::deque<int64_t>> rate_;
  // Environment builds report through this guard; the destructor closes it.
  std::shared_ptr<Life> life_;
};

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
// An object's pack_ref, "" when it has none (null or absent: ownerless permission sets, ...).
std::string pack_ref_of(const Json& obj);

// `pack_ref` + `ref` of a pack-scoped create body (API.md §2.3: `ref` is the name or the full
// `<pack>.<name>`): the pack and the full ref, or the 422/404 response to send.
struct Scoped {
  JsonPtr pack;
  std::string ref;
  std::string name;
};
std::optional<rest::HttpResponse> resolve_scoped(const DefinitionsTable& defs, const Json& body,
                                                 Scoped& out);
}  // namespace detail

}  // namespace attune::service
