// DefinitionsTable: an in-memory, always-current view of the compacted attune.definitions topic
// (a "global table" in Kafka Streams terms) that every stage and the API read.
//
// Record key "<kind>:<ref>"; value an Envelope of type "definition.upsert" (payload = the full
// object, with "id" and "ref") or "definition.delete" (a tombstone). A tombstone whose payload
// has `if_match: {field: value, ...}` deletes only if the current object still has those values
// (conditional deletes, e.g. a key's TTL expiry racing an update: every reader decides alike). The
// table replays the topic from the beginning at start, then follows it: on the committing thread
// when the log has append listeners (EmbeddedLog: a write is in the table before its producer
// hears it is durable, with no thread hand-off), else on its own thread (KafkaLog). Readers
// get immutable snapshots (shared_ptr<const Json>), so lookups never copy and never block writers
// for long.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "topology/log.h"

namespace attune {

using JsonPtr = std::shared_ptr<const Json>;

inline constexpr std::string_view kDefinitionUpsert = "definition.upsert";
inline constexpr std::string_view kDefinitionDelete = "definition.delete";

// Builds the record that sets or deletes a definition.
OutRecord definition_record(std::string_view kind, const Json& object, int64_t ts,
                            std::string_view source);
// The same record, built around `object` (moved into its parsed Envelope, OutRecord::parsed): a
// DefinitionsTable in this process then applies it without parsing and keeps that very object,
// which `stored` (if given) receives — a writer can answer with it without copying.
OutRecord shared_definition_record(std::string_view kind, Json object, int64_t ts,
                                   std::string_view source, JsonPtr* stored = nullptr);
OutRecord definition_tombstone(std::string_view kind, std::string_view ref, int64_t id, int64_t ts,
                               std::string_view source);

// Claims: deciding a race between API instances by the topic's total order (issue 13). Two
// instances creating the same ref at once each write a claim (key "claim:<kind>:<ref>") and
// wait until their table has applied it; every reader applies claims alike, so exactly one
// claimant holds the ref. The holder writes the definition together with its release; the
// others answer 409. The definition's own key is written only by the winner, so log compaction
// (which keeps the last record of a key) cannot bring a loser's object back.
//   definition.claim    {claimant, absent}  held by `claimant` if nobody else holds it (a claim
//                       older than kClaimTtlMs by the records' own times no longer counts), and,
//                       when `absent`, only if the definition does not exist
//   definition.release  {claimant}          ends the claim if `claimant` holds it
inline constexpr std::string_view kDefinitionClaim = "definition.claim";
inline constexpr std::string_view kDefinitionRelease = "definition.release";
inline constexpr std::string_view kClaimKeyPrefix = "claim:";
inline constexpr int64_t kClaimTtlMs = 15'000;
OutRecord claim_record(std::string_view kind, std::string_view ref, std::string_view claimant,
                       bool absent, int64_t ts, std::string_view source);
OutRecord release_record(std::string_view kind, std::string_view ref, std::string_view claimant,
                         int64_t ts, std::string_view source);

class DefinitionsTable {
 public:
  explicit DefinitionsTable(Log& log);
  ~DefinitionsTable();
  // Replays everything already in the topic (so the table is complete when this returns), then
  // follows new records on a thread.
  Status start();
  void stop();

  JsonPtr get(std::string_view kind, std::string_view ref) const;
  JsonPtr get_by_id(std::string_view kind, int64_t id) const;
  // Ref or id (an all-digit segment is an id, API.md §2.4).
  JsonPtr resolve(std::string_view kind, std::string_view ref_or_id) const;
  std::vector<JsonPtr> list(std::string_view kind) const;
  // The definitions of `kind` whose ref starts with `prefix`, in ref order (a range scan).
  std::vector<JsonPtr> list_prefix(std::string_view kind, std::string_view prefix) const;
  std::vector<JsonPtr> rules_for_trigger(std::string_view trigger_ref) const;

  // Deadline index: every definition whose object has an `expires_at` (RFC 3339; a datastore
  // key's TTL) is also kept ordered by that deadline, so finding the due ones costs
  // O(log n + due), whatever the number of definitions. Rebuilt by the replay at start().
  struct Expiring {
    std::vector<JsonPtr> due;                 // deadline <= now_ms, earliest first
    std::optional<int64_t> next_deadline_ms;  // the earliest deadline after now_ms
  };
  Expiring expiring(std::string_view kind, int64_t now_ms) const;

  JsonPtr trigger_for_webhook(std::string_view webhook_key) const;
  // Who holds the claim on <kind>:<ref> ("" = nobody), as of the applied records.
  std::string claim_holder(std::string_view kind, std::string_view ref) const;

  // Waits until the record at `offset` of attune.definitions has been applied.
  bool wait_applied(int64_t offset, std::chrono::milliseconds timeout) const;
  // Calls fn(true) once the record at `offset` is applied — now, or on the table's thread — or
  // fn(false) once `timeout` has passed without it (checked at least every second). fn must be
  // quick, must not wait on the table and must not commit to the log synchronously (it may run on
  // the log's committing thread, inside its append listener).
  void when_applied(int64_t offset, std::chrono::milliseconds timeout,
                    std::function<void(bool)> fn) const;
  int64_t applied() const { return applied_.load(); }
  // Increases on every applied change (cheap cache invalidation for derived views).
  uint64_t version() const { return version_.load(); }

  // Called on the table's thread after every applied change of a definition: its kind, the
  // object before (null: created) and after (null: deleted). Must be quick and must not wait on
  // the table. Set it after start() to see only live changes; empty removes it.
  using ChangeHook = std::function<void(std::string_view kind, const JsonPtr& before,
                                        const JsonPtr& after)>;
  void set_change_hook(ChangeHook hook);

  // Applies one record (exposed for tests and for replay); returns false if it was malformed.
  bool apply(const Record& record);


 private:
  struct Entry {
    JsonPtr object;
  };
  void follow();
  bool apply_one(const Record& record);  // apply() without the bookkeeping
  // Applies every record the log has past the applied offset (listener mode).
  void catch_up();
  void index_add(std::string_view kind, const Json& obj);
  void index_remove(std::string_view kind, const Json& obj);

  Log& log_;
  std::unique_ptr<Consumer> consumer_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  int listener_ = -1;       // Log::add_append_listener id, when the log has listeners
  bool listening_ = false;  // listener_ was taken at start()
  std::mutex apply_mu_;     // listener mode: whoever uses consumer_
  std::mutex idle_mu_;      // listener mode: the thread's sleep between checks of timeouts
  std::condition_variable idle_cv_;

  mutable std::shared_mutex mu_;
  std::map<std::string, std::map<std::string, JsonPtr, std::less<>>, std::less<>> by_ref_;
  std::map<std::string, std::unordered_map<int64_t, std::string>, std::less<>> by_id_;
  std::map<std::string, std::set<std::string>, std::less<>> rules_by_trigger_;
  std::map<std::string, std::string, std::less<>> webhook_keys_;
  struct Claim {
    std::string claimant;
    int64_t ts = 0;
  };
  std::map<std::string, Claim, std::less<>> claims_;  // "<kind>:<ref>" → holder
  // kind → (deadline epoch ms, ref)
  std::map<std::string, std::set<std::pair<int64_t, std::string>>, std::less<>> deadlines_;


  std::mutex hook_mu_;
  std::shared_ptr<const ChangeHook> hook_;

  std::atomic<int64_t> applied_{0};  // next offset to apply
  std::atomic<uint64_t> version_{0};
  mutable std::mutex wait_mu_;
  mutable std::condition_variable wait_cv_;
  struct Waiting {
    std::chrono::steady_clock::time_point deadline;
    std::function<void(bool)> fn;
  };
  void run_waiting(bool expired_only);
  mutable std::multimap<int64_t, Waiting> waiting_;  // by offset; guarded by wait_mu_
};

}  // namespace attune
