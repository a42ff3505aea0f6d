#include "topology/definitions_table.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "topology/core/time.h"

namespace attune {

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string str_field(const Json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t id_field(const Json& o) {
  auto it = o.find("id");
  return it != o.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// The object's `expires_at` in epoch ms, when it has a valid one.
std::optional<int64_t> deadline_of(const Json& obj) {
  auto it = obj.find("expires_at");
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  return parse_rfc3339_ms(it->get_ref<const std::string&>());
}

}  // namespace

OutRecord definition_record(std::string_view kind, const Json& object, int64_t ts,
                            std::string_view source) {
  Envelope e;
  e.type = std::string(kDefinitionUpsert);
  e.id = object.value("id", int64_t{0});
  e.key = std::string(kind) + ":" + object.value("ref", std::string());
  e.ts = ts;
  e.source = std::string(source);
  e.payload = object;
  return OutRecord{std::string(topics::kDefinitions), e.key, e.dump(), 0};
}

OutRecord shared_definition_record(std::string_view kind, Json object, int64_t ts,
                                   std::string_view source, JsonPtr* stored) {
  auto e = std::make_shared<Envelope>();
  e->type = std::string(kDefinitionUpsert);
  e->id = object.value("id", int64_t{0});
  e->key = std::string(kind) + ":" + object.value("ref", std::string());
  e->ts = ts;
  e->source = std::string(source);
  e->payload = std::move(object);
  if (stored) *stored = JsonPtr(e, &e->payload);  // shares the envelope's ownership
  OutRecord r{std::string(topics::kDefinitions), e->key, e->dump(), 0};
  r.parsed = std::move(e);
  return r;
}

OutRecord definition_tombstone(std::string_view kind, std::string_view ref, int64_t id, int64_t ts,
                               std::string_view source) {
  Envelope e;
  e.type = std::string(kDefinitionDelete);
  e.id = id;
  e.key = std::string(kind) + ":" + std::string(ref);
  e.ts = ts;
  e.source = std::string(source);
  e.payload = Json{{"id", id}, {"ref", ref}};
  return OutRecord{std::string(topics::kDefinitions), e.key, e.dump(), 0};
}

DefinitionsTable::DefinitionsTable(Log& log) : log_(log) {}

DefinitionsTable::~DefinitionsTable() { stop(); }

Status DefinitionsTable::start() {
  auto c = log_.reader({std::string(topics::kDefinitions)});
  if (!c.ok()) return c.error();
  consumer_ = std::move(*c);
  // Listening before the replay: a commit meanwhile is applied by whichever gets there first.
  listener_ = log_.add_append_listener(topics::kDefinitions, [this] { catch_up(); });
  listening_ = listener_ >= 0;
  const int64_t end = log_.end_offset({std::string(topics::kDefinitions), 0});
  while (applied_.load() < end) {
    std::lock_guard lock(apply_mu_);
    auto records = consumer_->poll(4096, std::chrono::milliseconds(100));
    for (const auto& r : records) apply(r);
  }
  thread_ = std::thread([this] { follow(); });
  return {};
}

void DefinitionsTable::stop() {
  if (listener_ >= 0) {
    log_.remove_append_listener(listener_);
    listener_ = -1;
  }
  {
    std::lock_guard lock(idle_mu_);
    stopping_.store(true);
  }
  idle_cv_.notify_all();
  if (consumer_) consumer_->wakeup();
  if (thread_.joinable()) thread_.join();
}

void DefinitionsTable::catch_up() {
  bool any = false;
  {
    std::lock_guard lock(apply_mu_);
    for (;;) {
      auto records = consumer_->poll(1024, std::chrono::milliseconds(0));
      for (const auto& r : records) apply(r);
      any = any || !records.empty();
      if (records.size() < 1024) break;
    }
  }
  if (any) run_waiting(/*expired_only=*/false);
}

void DefinitionsTable::follow() {
  if (listening_) {
    // Writers apply their records (catch_up() from the log's listener); this thread only fails
    // waiters whose time is up, and catches up in case a listener call was missed.
    while (!stopping_.load()) {
      {
        std::unique_lock lock(idle_mu_);
        idle_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_.load(); });
      }
      catch_up();
      run_waiting(/*expired_only=*/true);
    }
  } else {
    while (!stopping_.load()) {
      auto records = consumer_->poll(1024, std::chrono::milliseconds(1000));
      for (const auto& r : records) apply(r);
      run_waiting(/*expired_only=*/records.empty());
    }
  }
  // Nothing will be applied any more: whoever still waits learns it now.
  std::multimap<int64_t, Waiting> left;
  {
    std::lock_guard lock(wait_mu_);
    left.swap(waiting_);
  }
  for (auto& [offset, w] : left) w.fn(false);
}

void DefinitionsTable::when_applied(int64_t offset, std::chrono::milliseconds timeout,
                                    std::function<void(bool)> fn) const {
  {
    std::lock_guard lock(wait_mu_);
    if (applied_.load() <= offset) {
      waiting_.emplace(offset, Waiting{std::chrono::steady_clock::now() + timeout, std::move(fn)});
      return;
    }
  }
  fn(true);
}

void DefinitionsTable::run_waiting(bool expired_only) {
  std::vector<std::function<void(bool)>> applied, expired;
  {
    std::lock_guard lock(wait_mu_);
    if (waiting_.empty()) return;
    if (!expired_only) {
      const int64_t done = applied_.load();
      auto end = waiting_.lower_bound(done);
      for (auto it = waiting_.begin(); it != end; ++it) applied.push_back(std::move(it->second.fn));
      waiting_.erase(waiting_.begin(), end);
    }
    const auto now = std::chrono::steady_clock::now();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->second.deadline <= now) {
        expired.push_back(std::move(it->second.fn));
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& fn : applied) fn(true);
  for (auto& fn : expired) fn(false);
}

bool DefinitionsTable::apply(const Record& record) {
  bool ok = false;
  try {
    ok = apply_one(record);
  } catch (const std::exception& e) {
    // Skipped like a malformed record: it must not stop the records after it from applying.
    spdlog::warn("definitions: skipping record at offset {}: {}", record.offset, e.what());
  }
  version_.fetch_add(1);
  {
    std::lock_guard lock(wait_mu_);
    applied_.store(record.offset + 1);
  }
  wait_cv_.notify_all();
  return ok;
}

bool DefinitionsTable::apply_one(const Record& record) {
  Envelope e;
  std::string error;
  if (record.key.rfind(kClaimKeyPrefix, 0) == 0) {
    if (!envelope_of(record, e, error) || !e.payload.is_object()) {
      spdlog::warn("definitions: skipping malformed claim at offset {}: {}", record.offset, error);
      return false;
    }
    const std::string target = record.key.substr(kClaimKeyPrefix.size());
    const std::string claimant = e.payload.value("claimant", "");
    std::unique_lock lock(mu_);
    auto held = claims_.find(target);
    if (e.type == kDefinitionRelease) {
      if (held != claims_.end() && held->second.claimant == claimant) claims_.erase(held);
      return true;
    }
    if (e.type != kDefinitionClaim || claimant.empty()) return true;
    const bool taken = held != claims_.end() && held->second.claimant != claimant &&
                       e.ts - held->second.ts <= kClaimTtlMs;
    bool exists = false;
    if (e.payload.value("absent", false)) {
      const auto colon = target.find(':');
      auto kind = by_ref_.find(std::string_view(target).substr(0, colon));
      exists = colon != std::string::npos && kind != by_ref_.end() &&
               kind->second.count(std::string_view(target).substr(colon + 1)) > 0;
    }
    if (!taken && !exists) claims_[target] = Claim{claimant, e.ts};
    return true;
  }
  // An upsert produced in this process with its envelope (shared_definition_record, still in the
  // embedded log's window): the table keeps that object, unparsed and uncopied.
  JsonPtr hinted;
  if (record.parsed && record.parsed->type == kDefinitionUpsert) {
    hinted = JsonPtr(record.parsed, &record.parsed->payload);
  }
  bool ok = hinted != nullptr || envelope_of(record, e, error);
  if (hinted) e.type = std::string(kDefinitionUpsert);
  const auto colon = record.key.find(':');
  if (ok && colon == std::string::npos) {
    ok = false;
    error = "definition key without kind";
  }
  JsonPtr replaced;  // released after the table's lock: freeing a large object takes a while
  JsonPtr applied;
  std::string kind;
  if (ok) {
    kind = record.key.substr(0, colon);
    const std::string ref = record.key.substr(colon + 1);
    std::unique_lock lock(mu_);
    auto& refs = by_ref_[kind];
    auto current = refs.find(ref);
    if (e.type == kDefinitionDelete && current != refs.end() && e.payload.is_object()) {
      const auto cond = e.payload.find("if_match");
      bool holds = true;
      if (cond != e.payload.end() && cond->is_object()) {
        for (const auto& [field, expected] : cond->items()) {
          holds = holds && current->second->value(field, Json(nullptr)) == expected;
        }
      }
      if (!holds) {
        current = refs.end();  // superseded since the delete was decided: keep the object
        e.type.clear();
      }
    }
    if (auto it = current; it != refs.end()) {
      index_remove(kind, *it->second);
      replaced = std::move(it->second);
      refs.erase(it);
    }
    if (e.type == kDefinitionUpsert && (hinted ? hinted->is_object() : e.payload.is_object())) {
      auto obj = hinted ? std::move(hinted) : std::make_shared<const Json>(std::move(e.payload));
      index_add(kind, *obj);
      applied = obj;
      refs.emplace(ref, std::move(obj));
    }
  } else {
    spdlog::warn("definitions: skipping malformed record at offset {}: {}", record.offset, error);
  }
  if (ok && (replaced || applied)) {
    std::shared_ptr<const ChangeHook> hook;
    {
      std::lock_guard lock(hook_mu_);
      hook = hook_;
    }
    if (hook) (*hook)(kind, replaced, applied);
  }
  return ok;
}

void DefinitionsTable::set_change_hook(ChangeHook hook) {
  std::lock_guard lock(hook_mu_);
  hook_ = hook ? std::make_shared<const ChangeHook>(std::move(hook)) : nullptr;
}

void DefinitionsTable::index_add(std::string_view kind, const Json& obj) {
  const int64_t id = id_field(obj);
  const std::string ref = str_field(obj, "ref");
  if (id) by_id_[std::string(kind)][id] = ref;
  if (kind == "rule") rules_by_trigger_[str_field(obj, "trigger_ref")].insert(ref);
  if (kind == "trigger") {
    const std::string key = str_field(obj, "webhook_key");
    if (!key.empty()) webhook_keys_[key] = ref;
  }
  if (auto at = deadline_of(obj)) deadlines_[std::string(kind)].emplace(*at, ref);
}

void DefinitionsTable::index_remove(std::string_view kind, const Json& obj) {
  const int64_t id = id_field(obj);
  const std::string ref = str_field(obj, "ref");
  if (auto it = by_id_.find(kind); it != by_id_.end()) it->second.erase(id);
  if (kind == "rule") {
    auto it = rules_by_trigger_.find(str_field(obj, "trigger_ref"));
    if (it != rules_by_trigger_.end()) it->second.erase(ref);
  }
  if (kind == "trigger") {
    const std::string key = str_field(obj, "webhook_key");
    if (!key.empty()) webhook_keys_.erase(key);
  }
  if (auto at = deadline_of(obj)) {
    if (auto it = deadlines_.find(kind); it != deadlines_.end()) it->second.erase({*at, ref});
  }
}

JsonPtr DefinitionsTable::get(std::string_view kind, std::string_view ref) const {
  std::shared_lock lock(mu_);
  auto k = by_ref_.find(kind);
  if (k == by_ref_.end()) return nullptr;
  auto it = k->second.find(ref);
  return it == k->second.end() ? nullptr : it->second;
}

JsonPtr DefinitionsTable::get_by_id(std::string_view kind, int64_t id) const {
  std::string ref;
  {
    std::shared_lock lock(mu_);
    auto k = by_id_.find(kind);
    if (k == by_id_.end()) return nullptr;
    auto it = k->second.find(id);
    if (it == k->second.end()) return nullptr;
    ref = it->second;
  }
  return get(kind, ref);
}

JsonPtr DefinitionsTable::resolve(std::string_view kind, std::string_view ref_or_id) const {
  if (all_digits(ref_or_id)) {
    if (ref_or_id.size() > 16) return nullptr;
    return get_by_id(kind, std::stoll(std::string(ref_or_id)));
  }
  return get(kind, ref_or_id);
}

std::vector<JsonPtr> DefinitionsTable::list(std::string_view kind) const {
  std::vector<JsonPtr> out;
  std::shared_lock lock(mu_);
  auto k = by_ref_.find(kind);
  if (k == by_ref_.end()) return out;
  out.reserve(k->second.size());
  for (const auto& [ref, obj] : k->second) out.push_back(obj);
  return out;
}

std::vector<JsonPtr> DefinitionsTable::list_prefix(std::string_view kind,
                                                   std::string_view prefix) const {
  std::vector<JsonPtr> out;
  std::shared_lock lock(mu_);
  auto k = by_ref_.find(kind);
  if (k == by_ref_.end()) return out;
  for (auto it = k->second.lower_bound(prefix);
       it != k->second.end() && std::string_view(it->first).substr(0, prefix.size()) == prefix;
       ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<JsonPtr> DefinitionsTable::rules_for_trigger(std::string_view trigger_ref) const {
  std::vector<JsonPtr> out;
  std::shared_lock lock(mu_);
  auto it = rules_by_trigger_.find(trigger_ref);
  if (it == rules_by_trigger_.end()) return out;
  auto k = by_ref_.find(std::string_view("rule"));
  if (k == by_ref_.end()) return out;
  for (const auto& ref : it->second) {
    if (auto r = k->second.find(ref); r != k->second.end()) out.push_back(r->second);
  }
  return out;
}

DefinitionsTable::Expiring DefinitionsTable::expiring(std::string_view kind, int64_t now_ms) const {
  Expiring out;
  std::shared_lock lock(mu_);
  auto d = deadlines_.find(kind);
  auto k = by_ref_.find(kind);
  if (d == deadlines_.end() || k == by_ref_.end()) return out;
  for (const auto& [at, ref] : d->second) {
    if (at > now_ms) {
      out.next_deadline_ms = at;
      break;
    }
    if (auto it = k->second.find(ref); it != k->second.end()) out.due.push_back(it->second);
  }
  return out;
}

std::string DefinitionsTable::claim_holder(std::string_view kind, std::string_view ref) const {
  std::string target(kind);
  target.push_back(':');
  target.append(ref);
  std::shared_lock lock(mu_);
  auto it = claims_.find(target);
  return it == claims_.end() ? std::string() : it->second.claimant;
}

OutRecord claim_record(std::string_view kind, std::string_view ref, std::string_view claimant,
                       bool absent, int64_t ts, std::string_view source) {
  std::string key = std::string(kClaimKeyPrefix) + std::string(kind) + ":" + std::string(ref);
  Envelope e{std::string(kDefinitionClaim), 0, key, ts, std::string(source),
             Json{{"claimant", claimant}, {"absent", absent}}};
  return OutRecord{std::string(topics::kDefinitions), std::move(key), e.dump(), 0};
}

OutRecord release_record(std::string_view kind, std::string_view ref, std::string_view claimant,
                         int64_t ts, std::string_view source) {
  std::string key = std::string(kClaimKeyPrefix) + std::string(kind) + ":" + std::string(ref);
  Envelope e{std::string(kDefinitionRelease), 0, key, ts, std::string(source),
             Json{{"claimant", claimant}}};
  return OutRecord{std::string(topics::kDefinitions), std::move(key), e.dump(), 0};
}

JsonPtr DefinitionsTable::trigger_for_webhook(std::string_view webhook_key) const {
  std::string ref;
  {
    std::shared_lock lock(mu_);
    auto it = webhook_keys_.find(webhook_key);
    if (it == webhook_keys_.end()) return nullptr;
    ref = it->second;
  }
  return get("trigger", ref);
}

bool DefinitionsTable::wait_applied(int64_t offset, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(wait_mu_);
  return wait_cv_.wait_for(lock, timeout, [&] { return applied_.load() > offset; });
}

}  // namespace attune
