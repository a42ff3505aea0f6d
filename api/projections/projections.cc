// Read side of the projections: index selection, ordered (merged) index scans, predicates,
// counters, and the stage factory.
#include "api/projections/projections.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>

#include "api/projections/projection_processor.h"
#include "state/db.h"

namespace attune::projections {
namespace {

// One filter on an index: the row matches when the index value is any of `values`.
struct Condition {
  const IndexDef* index;
  std::vector<std::string> values;
};

struct Query {
  Entity entity;
  std::vector<Condition> conditions;
  std::optional<int64_t> after;   // inclusive
  std::optional<int64_t> before;  // exclusive
  std::function<bool(const Json&)> row_filter;  // not backed by an index
  bool needs_result = false;  // row_filter reads `result` (see predicate_fields())
};

void add_condition(Query& q, std::string_view index, std::vector<std::string> values) {
  const IndexDef* def = find_index(q.entity, index);
  q.conditions.push_back(Condition{def, std::move(values)});
}

// Row predicates not backed by an index all hold.
void add_row_filter(Query& q, std::function<bool(const Json&)> fn) {
  if (!q.row_filter) {
    q.row_filter = std::move(fn);
    return;
  }
  q.row_filter = [first = std::move(q.row_filter), second = std::move(fn)](const Json& row) {
    return first(row) && second(row);
  };
}

std::vector<std::string> sorted_unique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// The status condition (any of `statuses`; empty: none) and the scope restriction of a filter
// (see the Projections class comment for the choice of index).
void add_status_and_scopes(Query& q, std::vector<std::string> statuses,
                           const std::optional<std::vector<std::string>>& scopes) {
  if (!scopes) {
    if (!statuses.empty()) add_condition(q, "by_status", std::move(statuses));
    return;
  }
  std::vector<std::string> wanted = sorted_unique(*scopes);
  if (wanted.size() > kMaxScopePrefixes) {
    if (!statuses.empty()) add_condition(q, "by_status", std::move(statuses));
    add_row_filter(q, [entity = q.entity, wanted = std::move(wanted)](const Json& row) {
      return std::binary_search(wanted.begin(), wanted.end(), record_scope(entity, row));
    });
    return;
  }
  statuses = sorted_unique(std::move(statuses));
  if (!statuses.empty() && statuses.size() * wanted.size() <= kMaxScopePrefixes) {
    std::vector<std::string> pairs;
    for (const auto& status : statuses) {
      for (const auto& scope : wanted) pairs.push_back(status_scope_value(status, scope));
    }
    add_condition(q, kByStatusScope, std::move(pairs));
    return;
  }
  if (!statuses.empty()) add_condition(q, "by_status", std::move(statuses));
  add_condition(q, kByScope, std::move(wanted));
}

Result<int64_t> read_counter(const state::Store& store, std::string_view prefix) {
  int64_t total = 0;
  auto st = store.scan(counter_prefix(prefix), [&](std::string_view, std::string_view v) {
    total += static_cast<int64_t>(state::decode_be64(v));
    return true;
  });
  if (!st.ok()) return st.error();
  return total;
}

// More than kMaxScopePrefixes scopes: those with rows, when at most kMaxScopeLookups are asked
// for (one counter read each); else all of them. Callers with grants on many packs usually have
// rows in few of them, which keeps their lists on the merge path.
Result<std::optional<std::vector<std::string>>> narrow_scopes(
    const state::Store& store, const std::optional<std::vector<std::string>>& scopes) {
  if (!scopes || scopes->size() <= kMaxScopePrefixes) return scopes;
  std::vector<std::string> wanted = sorted_unique(*scopes);
  if (wanted.size() <= kMaxScopePrefixes || wanted.size() > kMaxScopeLookups) {
    return std::optional<std::vector<std::string>>(std::move(wanted));
  }
  std::vector<std::string> present;
  for (auto& scope : wanted) {
    auto n = read_counter(store, index_prefix(kByScope, scope));
    if (!n.ok()) return n.error();
    if (*n != 0) present.push_back(std::move(scope));
  }
  return std::optional<std::vector<std::string>>(std::move(present));
}

// Ordered, batched reads of one index prefix within [after, before) of created. The first
// batch is what the caller expects to need (at most kMaxFirstBatch); later ones grow 4×.
class Cursor {
 public:
  static constexpr size_t kMaxFirstBatch = 256;

  Cursor(const state::Store& store, const std::string& prefix, const Query& q, bool descending,
         size_t first_batch, size_t max_batch)
      : store_(store),
        prefix_("i/" + prefix),
        descending_(descending),
        batch_(std::clamp<size_t>(first_batch, 1, kMaxFirstBatch)),
        max_batch_(std::max(max_batch, batch_)) {
    if (q.after) lo_ = prefix_ + state::encode_be64(static_cast<uint64_t>(std::max<int64_t>(*q.after, 0)));
    if (q.before) {
      if (*q.before <= 0) {
        exhausted_ = true;
      } else {
        hi_ = prefix_ + state::encode_be64(static_cast<uint64_t>(*q.before));
      }
    }
    if (descending_) {
      // The last possible key with created < before.
      if (hi_) resume_ = prefix_ + state::encode_be64(static_cast<uint64_t>(*q.before - 1)) +
                         std::string(8, '\xff');
    } else if (lo_) {
      resume_ = *lo_;
    }
  }

  // Makes head() valid if any entry remains.
  Status fill() {
    if (pos_ < buf_.size() || exhausted_) return {};
    buf_.clear();
    values_.clear();
    pos_ = 0;
    const std::string start = resume_;
    bool stopped_early = false;
    auto st = store_.scan(
        prefix_,
        [&](std::string_view k, std::string_view v) {
          if (skip_resume_ && k == start) return true;
          if (!descending_ && hi_ && k >= *hi_) return false;
          if (descending_ && lo_ && k < *lo_) return false;
          Entry e;
          std::memcpy(e.suffix, k.data() + k.size() - 16, 16);
          e.value_at = static_cast<uint32_t>(values_.size());
          e.value_size = static_cast<uint32_t>(v.size());
          values_.append(v);
          buf_.push_back(e);
          if (buf_.size() >= batch_) {
            stopped_early = true;
            return false;
          }
          return true;
        },
        descending_, start);
    if (!st.ok()) return st;
    if (!stopped_early) exhausted_ = true;
    if (!buf_.empty()) {
      resume_ = prefix_ + std::string(buf_.back().suffix, 16);
      skip_resume_ = true;
    }
    batch_ = std::min<size_t>(batch_ * 4, max_batch_);
    return {};
  }
  bool valid() const { return pos_ < buf_.size(); }
  // The entry's key suffix (BE64 created ‖ BE64 id: index_key_id/created read it) and value.
  std::pair<std::string_view, std::string_view> head() const {
    const Entry& e = buf_[pos_];
    return {std::string_view(e.suffix, 16),
            std::string_view(values_).substr(e.value_at, e.value_size)};
  }
  void next() { ++pos_; }

 private:
  const state::Store& store_;
  std::string prefix_;
  bool descending_;
  std::optional<std::string> lo_, hi_;
  std::string resume_;
  bool skip_resume_ = false;
  bool exhausted_ = false;
  // A batch without an allocation per entry: key suffixes inline, values in one buffer.
  struct Entry {
    char suffix[16];
    uint32_t value_at;
    uint32_t value_size;
  };
  std::vector<Entry> buf_;
  std::string values_;
  size_t pos_ = 0;
  size_t batch_;
  size_t max_batch_;
};

// The plan for a query: which prefixes to scan, what to check on each entry, and whether the
// counters already give the total.
struct Plan {
  std::vector<std::string> prefixes;
  int64_t count = 0;                   // entries under `prefixes`
  std::vector<const Condition*> rest;  // conditions still to check
  bool exact = false;                  // count == matches
  // Entries each index cursor reads first: the page end when that is all the scan needs.
  size_t first_batch = Cursor::kMaxFirstBatch;
  // The largest batch a cursor grows to: smaller when a budget bounds the scan (no read-ahead
  // far past where it stops).
  size_t max_batch = 16384;
};

// Visits index entries of all the plan's prefixes merged in (created, id) order; `fn` returns
// false to stop. Entries of one row under several prefixes of one index cannot occur (one value
// each).
using EntryFn = std::function<bool(int64_t id, int64_t created, std::string_view value)>;
Status scan_merged(const state::Store& store, const Plan& plan, const Query& q, bool descending,
                   const EntryFn& fn) {
  std::vector<Cursor> cursors;
  cursors.reserve(plan.prefixes.size());
  for (const auto& p : plan.prefixes) {
    cursors.emplace_back(store, p, q, descending, plan.first_batch, plan.max_batch);
  }
  for (;;) {
    Cursor* best = nullptr;
    std::string_view best_suffix;
    for (auto& c : cursors) {
      if (auto st = c.fill(); !st.ok()) return st;
      if (!c.valid()) continue;
      const std::string_view key = c.head().first;
      const std::string_view suffix = key.substr(key.size() - 16);
      if (!best || (descending ? suffix > best_suffix : suffix < best_suffix)) {
        best = &c;
        best_suffix = suffix;
      }
    }
    if (!best) return {};
    const auto [key, value] = best->head();
    const bool go_on = fn(index_key_id(key), index_key_created(key), value);
    best->next();
    if (!go_on) return {};
  }
}

std::vector<std::string> prefixes_of(const Condition& c) {
  std::vector<std::string> out;
  for (const auto& v : c.values) out.push_back(index_prefix(c.index->name, v));
  return out;
}

// Whether a condition is checked on index entries (status and scope are in every entry's value,
// index_entry_value()) rather than on the row.
bool checked_on_entry(Entity entity, const Condition& c) {
  return (entity != Entity::kEvent && c.index->name == "by_status") ||
         c.index->name == kByScope || c.index->name == kByStatusScope;
}

// Scanning an index entry costs about this many times less than reading and parsing its row.
constexpr int64_t kRowReadCost = 8;

// `matches`: the query's total when counters already know it (facet_counts()); the scan then
// only has to fill the page (`end` matches), so each index is costed by the entries it must read
// to find them, not by all its entries.
Result<Plan> make_plan(const state::Store& store, const Query& q,
                       std::optional<int64_t> matches = std::nullopt, int64_t end = 0) {
  Plan plan;
  const Condition* chosen = nullptr;
  int64_t chosen_cost = 0;
  std::vector<std::string> nonempty;  // the chosen condition's prefixes with entries
  for (const auto& c : q.conditions) {
    int64_t n = 0;
    std::vector<std::string> with_entries;
    for (auto& p : prefixes_of(c)) {
      auto r = read_counter(store, p);
      if (!r.ok()) return r.error();
      n += *r;
      if (*r != 0) with_entries.push_back(std::move(p));
    }
    // The cost of scanning this index: its entries, times the row read when another condition
    // must be checked on the row (status=completed&action_ref=x scans the action's entries and
    // checks status and scope on them, rather than reading a row per completed execution).
    bool rows = false;
    for (const auto& other : q.conditions) {
      rows = rows || (&other != &c && !checked_on_entry(q.entity, other));
    }
    const int64_t read = matches && *matches > 0
                             ? std::min<int64_t>(n, (end + 1) * n / *matches + 1)
                             : n;
    // Merging k prefixes costs more per entry than walking one (k heads compared per step).
    const auto k = static_cast<int64_t>(std::max<size_t>(with_entries.size(), 1));
    const int64_t cost = read * (rows ? kRowReadCost : 1) * (3 + k) / 4;
    if (!chosen || cost < chosen_cost) {
      chosen = &c;
      chosen_cost = cost;
      plan.count = n;
      nonempty = std::move(with_entries);
    }
  }
  // A created range is never exact: when every condition is checked on index entries (status,
  // scope), walking by_created within the range and checking them on each entry beats merging
  // many status:scope prefixes when those hold most rows (an admin's scopes).
  if (chosen && (q.after || q.before)) {
    bool on_entries = true;
    for (const auto& c : q.conditions) on_entries = on_entries && checked_on_entry(q.entity, c);
    if (on_entries) {
      auto r = read_counter(store, kByCreated);
      if (!r.ok()) return r.error();
      if (*r < chosen_cost) chosen = nullptr;
    }
  }
  if (chosen) {
    // Scope prefixes without entries (scopes with no rows, or none in a status) are left out of
    // the merge; other conditions keep every prefix, as before scopes existed.
    const bool scope = chosen->index->name == kByScope || chosen->index->name == kByStatusScope;
    plan.prefixes = scope ? std::move(nonempty) : prefixes_of(*chosen);
  } else {
    plan.prefixes = {std::string(kByCreated)};
    auto r = read_counter(store, kByCreated);
    if (!r.ok()) return r.error();
    plan.count = *r;
  }
  for (const auto& c : q.conditions) {
    if (&c != chosen) plan.rest.push_back(&c);
  }
  plan.exact = plan.rest.empty() && !q.after && !q.before && !q.row_filter;
  return plan;
}

bool matches_value(const Condition& c, std::string_view v) {
  return std::find(c.values.begin(), c.values.end(), v) != c.values.end();
}

bool row_matches(const Condition& c, const Json& row) {
  auto v = c.index->extract(row);
  return v && matches_value(c, *v);
}

Result<std::optional<Json>> read_row(const state::Store& store, int64_t id) {
  auto v = store.get(row_key(id));
  if (!v.ok()) return v.error();
  if (!v->has_value()) return std::optional<Json>();
  Json row = Json::parse(**v, nullptr, false);
  if (row.is_discarded()) return make_error(Errc::kInternal, "corrupt row in " + store.name());
  return std::optional<Json>(std::move(row));
}

// Exact counts from facet counters (schema.h) of a query with one faceted condition (one value)
// and otherwise only status and scope conditions, no time range and no row predicate: one short
// scan of that value's counters, one per (status, scope, instance). nullopt for other queries.
struct FacetCounts {
  int64_t total = 0;
  std::map<std::string, int64_t> by_status;
};
Result<std::optional<FacetCounts>> facet_counts(const state::Store& store, const Query& q) {
  if (q.row_filter || q.after || q.before) return std::optional<FacetCounts>();
  const Condition* facet = nullptr;
  for (const auto& c : q.conditions) {
    if (checked_on_entry(q.entity, c)) continue;
    if (facet || c.values.size() != 1 || !faceted_index(c.index->name)) {
      return std::optional<FacetCounts>();
    }
    facet = &c;
  }
  if (!facet) return std::optional<FacetCounts>();
  const std::string prefix = index_prefix(facet->index->name, facet->values.front());
  FacetCounts out;
  auto st = store.scan(facet_prefix(prefix), [&](std::string_view k, std::string_view v) {
    const std::string value = facet_entry_value(prefix, k);
    const std::string_view status = entry_status(value);
    const std::string_view scope = entry_scope(value).value_or(std::string_view());
    for (const auto& c : q.conditions) {
      if (&c == facet) continue;
      const std::string_view probe = c.index->name == "by_status" ? status
                                     : c.index->name == kByScope  ? scope
                                                                  : std::string_view(value);
      if (!matches_value(c, probe)) return true;
    }
    const auto n = static_cast<int64_t>(state::decode_be64(v));
    out.total += n;
    out.by_status[std::string(status)] += n;
    return true;
  });
  if (!st.ok()) return st.error();
  return std::optional<FacetCounts>(std::move(out));
}

// Work a list may spend past its page counting a total that no counter answers, in index entries
// (a row read for a predicate counts kBudgetRowCost: only the members predicates read are parsed,
// predicate_fields()); past it the total is estimated (ListResult::total_exact). 1024 entries or
// 128 row reads take ~1-3 ms here. Scans of at most kExactScan entries are always counted whole.
constexpr int64_t kCountBudget = 1024;
constexpr int64_t kBudgetRowCost = 8;
constexpr int64_t kExactScan = 512;

// Work done by a scan (index entries visited + kBudgetRowCost per row read) and where it stopped:
// lets a count that no counter answers stop after a bounded amount of work (run_list).
struct ScanBudget {
  int64_t limit = std::numeric_limits<int64_t>::max();
  int64_t work = 0;
  int64_t visited = 0;        // index entries
  int64_t first_created = -1;  // of the first and the last entry visited
  int64_t last_created = -1;
  bool stopped = false;       // the limit ended the scan
};

// Skips one JSON value of `s` from `i` (compact JSON as Json::dump writes it); false when `s`
// is not what dump writes.
bool skip_value(std::string_view s, size_t& i) {
  if (i >= s.size()) return false;
  const char c = s[i];
  if (c == '"') {
    for (++i; i < s.size(); ++i) {
      if (s[i] == '\\') {
        ++i;
      } else if (s[i] == '"') {
        ++i;
        return true;
      }
    }
    return false;
  }
  if (c == '{' || c == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      const char d = s[i];
      if (d == '"') {
        if (!skip_value(s, i)) return false;
        --i;
      } else if (d == '{' || d == '[') {
        ++depth;
      } else if ((d == '}' || d == ']') && --depth == 0) {
        ++i;
        return true;
      }
    }
    return false;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']') ++i;
  return true;
}

// The members of a stored row (one JSON object, as Json::dump writes it) that predicates read:
// every top-level member but the large ones no index or predicate looks at (parameters,
// payloads, results unless `with_result`), each parsed alone — about a tenth of the cost of
// parsing the whole row. nullopt when the text is not in that form (the caller parses it all).
std::optional<Json> predicate_fields(std::string_view raw, bool with_result,
                                     const std::vector<std::string_view>* wanted = nullptr) {
  static constexpr std::string_view kSkipped[] = {
      "config",      "env_vars",        "payload",         "workflow_task", "permission_set_refs",
      "conditions",  "response_schema", "response_options", "response",     "secret_config"};
  Json out = Json::object();
  size_t i = 0;
  if (raw.empty() || raw[0] != '{') return std::nullopt;
  ++i;
  if (i < raw.size() && raw[i] == '}') return out;
  while (i < raw.size()) {
    if (raw[i] != '"') return std::nullopt;
    const size_t key_start = ++i;
    while (i < raw.size() && raw[i] != '"') {
      if (raw[i] == '\\') return std::nullopt;  // escaped keys: not one of ours
      ++i;
    }
    if (i + 1 >= raw.size() || raw[i + 1] != ':') return std::nullopt;
    const std::string_view key = raw.substr(key_start, i - key_start);
    i += 2;
    const size_t value_start = i;
    if (!skip_value(raw, i)) return std::nullopt;
    const bool skipped =
        wanted ? std::find(wanted->begin(), wanted->end(), key) == wanted->end()
               : std::find(std::begin(kSkipped), std::end(kSkipped), key) != std::end(kSkipped) ||
                     (key == "result" && !with_result);
    if (!skipped) {
      Json v = Json::parse(raw.substr(value_start, i - value_start), nullptr, false);
      if (v.is_discarded()) return std::nullopt;
      out[std::string(key)] = std::move(v);
    }
    if (i >= raw.size()) return std::nullopt;
    if (raw[i] == '}') return out;
    if (raw[i] != ',') return std::nullopt;
    ++i;
  }
  return std::nullopt;
}

// The row members an index's value is made of (IndexDef::extract); empty when not known.
std::vector<std::string_view> index_fields(std::string_view index) {
  static const std::map<std::string_view, std::vector<std::string_view>> kFields = {
      {"by_status", {"status"}},
      {"by_action", {"action_ref"}},
      {"by_pack", {"pack_ref", "action_ref"}},
      {"by_enforcement", {"enforcement"}},
      {"by_parent", {"parent"}},
      {"by_rule", {"rule_ref"}},
      {"by_rule_id", {"rule"}},
      {"by_trigger", {"trigger_ref"}},
      {"by_trigger_id", {"trigger"}},
      {"by_source", {"source_ref"}},
      {"by_source_id", {"source"}},
      {"by_event", {"event"}},
      {"by_execution", {"execution"}},
      {"by_created_by_execution", {"created_by_execution"}},
      {"by_assigned_to", {"assigned_to"}},
      // record_scope() and status
      {kByScope, {"status", "rule_ref", "action_ref", "executor", "trigger_ref", "scope"}},
      {kByStatusScope, {"status", "rule_ref", "action_ref", "executor", "trigger_ref", "scope"}},
  };
  auto it = kFields.find(index);
  return it == kFields.end() ? std::vector<std::string_view>() : it->second;
}

// Visits every entry matching `q` in order until `fn` returns false. `fn` gets the row's stored
// text when it was read for a predicate (else null; the caller reads it if it needs it).
using MatchFn = std::function<bool(int64_t id, std::string_view value, const std::string* raw)>;
Status scan_matches(const state::Store& store, Entity entity, const Query& q, const Plan& plan,
                    bool descending, const MatchFn& fn, ScanBudget* budget = nullptr) {
  // Status and scope are in every index entry (index_entry_value): check them without the row.
  // Entries of the older form (bare status) have no scope: the row answers for those.
  std::vector<const Condition*> on_entry, on_scope, on_row;
  for (const Condition* c : plan.rest) {
    if (!checked_on_entry(entity, *c)) {
      on_row.push_back(c);
    } else if (c->index->name == "by_status") {
      on_entry.push_back(c);
    } else {
      on_scope.push_back(c);
    }
  }
  const bool always_row = !on_row.empty() || static_cast<bool>(q.row_filter);
  // The members the row checks read, when all are known (no row_filter): only those are parsed.
  std::optional<std::vector<std::string_view>> wanted;
  if (!q.row_filter) {
    wanted.emplace();
    for (const auto* list : {&on_row, &on_scope}) {
      for (const Condition* c : *list) {
        const auto fields = index_fields(c->index->name);
        if (fields.empty()) {
          wanted.reset();
          break;
        }
        wanted->insert(wanted->end(), fields.begin(), fields.end());
      }
      if (!wanted) break;
    }
  }
  Status error;
  auto st = scan_merged(store, plan, q, descending, [&](int64_t id, int64_t created,
                                                        std::string_view v) {
    if (budget) {
      if (budget->work >= budget->limit) {
        budget->stopped = true;
        return false;
      }
      ++budget->work;
      ++budget->visited;
      if (budget->first_created < 0) budget->first_created = created;
      budget->last_created = created;
    }
    for (const Condition* c : on_entry) {
      if (!matches_value(*c, entry_status(v))) return true;
    }
    const std::optional<std::string_view> scope = entry_scope(v);
    if (scope) {
      for (const Condition* c : on_scope) {
        if (!matches_value(*c, c->index->name == kByScope ? *scope : v)) return true;
      }
    }
    if (!always_row && (scope || on_scope.empty())) return fn(id, v, nullptr);
    if (budget) budget->work += kBudgetRowCost;
    auto raw = store.get(row_key(id));
    if (!raw.ok()) {
      error = raw.error();
      return false;
    }
    if (!raw->has_value()) return true;
    std::optional<Json> fields = predicate_fields(**raw, q.needs_result, wanted ? &*wanted : nullptr);
    if (!fields) {
      fields = Json::parse(**raw, nullptr, false);
      if (fields->is_discarded()) {
        error = make_error(Errc::kInternal, "corrupt row in " + store.name());
        return false;
      }
    }
    const Json& r = *fields;
    for (const Condition* c : on_row) {
      if (!row_matches(*c, r)) return true;
    }
    if (!scope) {
      for (const Condition* c : on_scope) {
        if (!row_matches(*c, r)) return true;
      }
    }
    if (q.row_filter && !q.row_filter(r)) return true;
    return fn(id, v, &**raw);
  });
  if (!st.ok()) return st;
  return error;
}


// The created time of the entry at the far end of [after, before) of one index prefix: the oldest
// (descending scans) or the newest (ascending); nullopt when the range holds none.
Result<std::optional<int64_t>> far_end(const state::Store& store, const std::string& prefix,
                                       const Query& q, bool descending) {
  const std::string p = "i/" + prefix;
  std::optional<int64_t> created;
  std::string start;
  if (descending && q.after) {
    start = p + state::encode_be64(static_cast<uint64_t>(std::max<int64_t>(*q.after, 0)));
  } else if (!descending && q.before) {
    if (*q.before <= 0) return created;
    start = p + state::encode_be64(static_cast<uint64_t>(*q.before - 1)) + std::string(8, '\xff');
  }
  auto st = store.scan(
      p,
      [&](std::string_view k, std::string_view) {
        created = index_key_created(k);
        return false;
      },
      !descending, start);
  if (!st.ok()) return st.error();
  if (created && ((q.after && *created < *q.after) || (q.before && *created >= *q.before))) {
    return std::optional<int64_t>();
  }
  return created;
}

// Entries of one index prefix created in [lo, hi] (ms), estimated from kSlices probes: the first
// kProbe entries of each slice give its density (a slice with fewer is counted exactly). About
// kSlices seeks and kSlices × kProbe entries, whatever the range holds.
// With `match` (whether an entry's value satisfies the query; nullopt: the row must say), also
// the matching entries, from the probed ones' share in each slice (-1 when some needed the row).
struct Sampled {
  double entries = 0;
  double matches = 0;
};
Result<Sampled> sampled_entries(
    const state::Store& store, const std::string& prefix, int64_t lo, int64_t hi,
    const std::function<std::optional<bool>(std::string_view)>& match) {
  constexpr int kSlices = 8;
  constexpr int kProbe = 16;
  const std::string p = "i/" + prefix;
  Sampled total;
  const double width = static_cast<double>(hi - lo + 1) / kSlices;
  for (int i = 0; i < kSlices; ++i) {
    const int64_t a = lo + static_cast<int64_t>(i * width);
    const int64_t z = i == kSlices - 1 ? hi : lo + static_cast<int64_t>((i + 1) * width) - 1;
    if (z < a) continue;
    int n = 0, m = 0;
    bool known = true;
    int64_t first = a, last = a;
    auto st = store.scan(
        p,
        [&](std::string_view k, std::string_view v) {
          const int64_t c = index_key_created(k);
          if (c > z) return false;
          if (n++ == 0) first = c;
          last = c;
          const std::optional<bool> ok = match(v);
          if (!ok) known = false;
          if (ok && *ok) ++m;
          return n < kProbe;
        },
        false, p + state::encode_be64(static_cast<uint64_t>(std::max<int64_t>(a, 0))));
    if (!st.ok()) return st.error();
    // n entries over [first, last]: n - 1 gaps of the slice's density.
    const double entries = n < kProbe ? n
                                      : (n - 1) * static_cast<double>(z - first + 1) /
                                            static_cast<double>(std::max<int64_t>(last - first, 1));
    total.entries += entries;
    if (total.matches >= 0) total.matches = known && n > 0 ? total.matches + entries * m / n : -1;
  }
  return total;
}

// The total of a count the budget stopped after `matched` matches among b.visited entries: the
// matches so far plus the entries left in the scanned range times the share that matched. Left
// entries: the prefixes' entries not visited, without a created range; with one, the entries of
// the rest of the range, sampled (sampled_entries(): bursts and gaps in time are seen). Never
// below matched + 1 (the scan stopped with entries left) nor above the prefixes' entries.
Result<int64_t> estimate_total(const state::Store& store, const Query& q, const Plan& plan,
                               bool descending, int64_t matched, const ScanBudget& b) {
  // Whether an entry satisfies the query's other conditions, when they are all on the entry.
  const auto match = [&](std::string_view v) -> std::optional<bool> {
    if (q.row_filter) return std::nullopt;
    for (const Condition* c : plan.rest) {
      if (!checked_on_entry(q.entity, *c)) return std::nullopt;
      if (c->index->name == "by_status") {
        if (!matches_value(*c, entry_status(v))) return false;
        continue;
      }
      const std::optional<std::string_view> scope = entry_scope(v);
      if (!scope) return std::nullopt;
      if (!matches_value(*c, c->index->name == kByScope ? *scope : v)) return false;
    }
    return true;
  };
  double left = 0;
  double left_matches = 0;  // < 0: not known from the samples
  if (!q.after && !q.before) {
    left = static_cast<double>(std::max<int64_t>(plan.count - b.visited, 0));
  } else {
    for (const auto& p : plan.prefixes) {
      auto far = far_end(store, p, q, descending);
      if (!far.ok()) return far.error();
      if (!*far) continue;
      const int64_t lo = descending ? **far : b.last_created + 1;
      const int64_t hi = descending ? b.last_created - 1 : **far;
      if (hi < lo) continue;
      auto n = sampled_entries(store, p, lo, hi, match);
      if (!n.ok()) return n.error();
      left += n->entries;
      left_matches = left_matches < 0 || n->matches < 0 ? -1 : left_matches + n->matches;
    }
  }
  const double share =
      b.visited > 0 ? static_cast<double>(matched) / static_cast<double>(b.visited) : 1.0;
  // The samples' own matches when the conditions are on the entries (the share that matched
  // may differ across the range), else the visited entries' share.
  const bool sampled = (q.after || q.before) && left_matches >= 0;
  const auto estimate =
      matched + static_cast<int64_t>(std::llround(sampled ? left_matches : left * share));
  return std::max(std::min(estimate, plan.count), matched + 1);
}

Result<ListResult> run_list(const state::Store& store, const Query& q, const Page& page) {
  const int64_t offset = std::max<int64_t>(page.offset, 0);
  const int64_t end = offset + std::max<int64_t>(page.limit, 0);
  // The total from counters when they know it: the plan's own (one index, nothing else to
  // check), or the facet counters (one faceted filter with statuses and scopes).
  auto facets = facet_counts(store, q);
  if (!facets.ok()) return facets.error();
  std::optional<int64_t> known;
  if (*facets) known = (*facets)->total;
  auto plan = make_plan(store, q, known, end);
  if (!plan.ok()) return plan.error();
  if (plan->exact) known = plan->count;
  ListResult out;
  int64_t matched = 0;
  ScanBudget budget;
  const bool budgeted = !known && plan->count > kExactScan;
  if (end == 0 && budgeted) budget.limit = kCountBudget;
  if (budgeted) plan->max_batch = 512;
  Status error;
  if (!known || (end > 0 && offset < *known)) {
    if (known) {
      // Merged prefixes share the page: each starts with a fair share of the entries the page
      // needs (4× the mean, at least 16) and refills, growing, only if it holds more of it.
      const int64_t k = std::max<int64_t>(std::ssize(plan->prefixes), 1);
      int64_t need = end + 1;
      if (!plan->exact && *known > 0) {
        need = std::min(plan->count, (end + 1) * plan->count / *known + 1);
      }
      const int64_t share = std::max<int64_t>(16, 4 * need / k);
      plan->first_batch = static_cast<size_t>(
          std::min<int64_t>({need, share, int64_t{Cursor::kMaxFirstBatch}}));
    }
    auto st = scan_matches(
        store, q.entity, q, *plan, page.descending,
        [&](int64_t id, std::string_view, const std::string* raw) {
          if (matched >= offset && matched < end) {
            if (raw) {
              Json row = Json::parse(*raw, nullptr, false);
              if (row.is_discarded()) {
                error = make_error(Errc::kInternal, "corrupt row in " + store.name());
                return false;
              }
              out.items.push_back(std::move(row));
            } else {
              auto r = read_row(store, id);
              if (!r.ok()) {
                error = r.error();
                return false;
              }
              if (r->has_value()) out.items.push_back(std::move(**r));
            }
          }
          ++matched;
          if (known) return matched < end;  // the counters have the total: stop at the page end
          if (matched == end && budgeted) budget.limit = budget.work + kCountBudget;
          return true;
        },
        known ? nullptr : &budget);
    if (!st.ok()) return st.error();
    if (!error.ok()) return error.error();
  }
  if (known) {
    out.total = *known;
  } else if (!budget.stopped) {
    out.total = matched;
  } else {
    auto estimate = estimate_total(store, q, *plan, page.descending, matched, budget);
    if (!estimate.ok()) return estimate.error();
    out.total = *estimate;
    out.total_exact = false;
  }
  if (q.entity == Entity::kEvent) {
    for (auto& row : out.items) row = event_list_row(row);
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

Query execution_query(const ExecutionFilter& f) {
  Query q{Entity::kExecution, {}, f.created_after, f.created_before, {}};
  add_status_and_scopes(q, f.statuses, f.scopes);
  if (f.action_ref) add_condition(q, "by_action", {*f.action_ref});
  if (f.pack_ref) add_condition(q, "by_pack", {*f.pack_ref});
  if (f.enforcement) add_condition(q, "by_enforcement", {std::to_string(*f.enforcement)});
  if (f.parent) add_condition(q, "by_parent", {std::to_string(*f.parent)});
  if (f.rule) add_condition(q, "by_rule_id", {std::to_string(*f.rule)});
  if (f.rule_ref) add_condition(q, "by_rule", {*f.rule_ref});
  if (f.trigger_ref) add_condition(q, "by_trigger", {*f.trigger_ref});
  if (f.result_contains) {
    q.needs_result = true;
    add_row_filter(q, [needle = *f.result_contains](const Json& row) {
      auto it = row.find("result");
      if (it == row.end() || it->is_null()) return false;
      return it->dump(-1, ' ', false, Json::error_handler_t::replace).find(needle) !=
             std::string::npos;
    });
  }
  return q;
}

}  // namespace

Json ExecutionStats::to_json() const {
  Json statuses = Json::object();
  for (const auto& [status, n] : by_status) statuses[status] = n;
  return Json{{"total", total}, {"active", active}, {"by_status", std::move(statuses)}};
}

Projections::Projections(const state::Store& events, const state::Store& enforcements,
                         const state::Store& executions, const state::Store& inquiries,
                         AppliedOffsets& applied)
    : events_(events),
      enforcements_(enforcements),
      executions_(executions),
      inquiries_(inquiries),
      applied_(applied) {}

Result<std::shared_ptr<Projections>> Projections::open(Log& log, AppliedOffsets& applied) {
  const std::string stage(kStage);
  auto events = log.db().store(stage + "." + std::string(kEventsStore));
  if (!events.ok()) return events.error();
  auto enforcements = log.db().store(stage + "." + std::string(kEnforcementsStore));
  if (!enforcements.ok()) return enforcements.error();
  auto executions = log.db().store(stage + "." + std::string(kExecutionsStore));
  if (!executions.ok()) return executions.error();
  // A store new in this build: an earlier data directory gets it empty.
  auto inquiries = log.db().store(stage + "." + std::string(kInquiriesStore));
  if (!inquiries.ok()) return inquiries.error();
  // Stores written before the scope indexes existed get them now, once (projection_processor.h).
  const std::pair<state::Store*, Entity> stores[] = {{*events, Entity::kEvent},
                                                     {*enforcements, Entity::kEnforcement},
                                                     {*executions, Entity::kExecution},
                                                     {*inquiries, Entity::kInquiry}};
  for (const auto& [store, entity] : stores) {
    auto added = backfill_scope_index(log.db(), *store, entity);
    if (!added.ok()) return added.error();
    // Facet counters of rows written before they existed (projection_processor.h), once.
    auto counted = backfill_facets(log.db(), *store, entity);
    if (!counted.ok()) return counted.error();
  }
  return std::make_shared<Projections>(**events, **enforcements, **executions, **inquiries,
                                       applied);
}

const state::Store& Projections::store_of(Entity e) const {
  switch (e) {
    case Entity::kEvent:
      return events_;
    case Entity::kEnforcement:
      return enforcements_;
    case Entity::kExecution:
      return executions_;
    case Entity::kInquiry:
      return inquiries_;
  }
  return events_;
}

Result<std::optional<Json>> Projections::get(Entity e, int64_t id) const {
  return read_row(store_of(e), id);
}

Result<std::optional<Json>> Projections::get_event(int64_t id) const {
  return get(Entity::kEvent, id);
}
Result<std::optional<Json>> Projections::get_enforcement(int64_t id) const {
  return get(Entity::kEnforcement, id);
}
Result<std::optional<Json>> Projections::get_execution(int64_t id) const {
  return get(Entity::kExecution, id);
}

Result<std::optional<Json>> Projections::get_inquiry(int64_t id) const {
  return get(Entity::kInquiry, id);
}

Result<std::optional<Json>> Projections::queue_stats(std::string_view action_ref) const {
  auto v = executions_.get(queue_stats_key(action_ref));
  if (!v.ok()) return v.error();
  if (!v->has_value()) return std::optional<Json>();
  Json stats = Json::parse(**v, nullptr, false);
  if (stats.is_discarded()) return make_error(Errc::kInternal, "corrupt queue stats");
  return std::optional<Json>(std::move(stats));
}

Result<ListResult> Projections::list_inquiries(const InquiryFilter& filter,
                                               const Page& page) const {
  auto scopes = narrow_scopes(inquiries_, filter.scopes);
  if (!scopes.ok()) return scopes.error();
  Query q{Entity::kInquiry, {}, std::nullopt, std::nullopt, {}};
  add_status_and_scopes(q, filter.statuses, *scopes);
  if (filter.execution) add_condition(q, "by_execution", {std::to_string(*filter.execution)});
  if (filter.created_by_execution) {
    add_condition(q, "by_created_by_execution", {std::to_string(*filter.created_by_execution)});
  }
  if (filter.assigned_to) add_condition(q, "by_assigned_to", {*filter.assigned_to});
  return run_list(inquiries_, q, page);
}

std::optional<Json> Projections::wait_for_inquiry_outcome(
    int64_t request, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const uint64_t seen = feed_->generation();
    auto v = inquiries_.get(inquiry_outcome_key(request));
    if (!v.ok()) return std::nullopt;
    if (v->has_value()) {
      Json j = Json::parse(**v, nullptr, false);
      if (j.is_discarded()) return std::nullopt;
      return j;
    }
    if (!feed_->wait_past(seen, deadline)) return std::nullopt;
  }
}

Result<ListResult> Projections::list_events(const EventFilter& filter, const Page& page) const {
  auto scopes = narrow_scopes(events_, filter.scopes);
  if (!scopes.ok()) return scopes.error();
  EventFilter f = filter;
  f.scopes = std::move(*scopes);
  Query q{Entity::kEvent, {}, f.created_after, std::nullopt, {}};
  if (f.trigger) add_condition(q, "by_trigger_id", {std::to_string(*f.trigger)});
  if (f.trigger_ref) add_condition(q, "by_trigger", {*f.trigger_ref});
  if (f.source) add_condition(q, all_digits(*f.source) ? "by_source_id" : "by_source", {*f.source});
  add_status_and_scopes(q, {}, f.scopes);
  return run_list(events_, q, page);
}

Result<ListResult> Projections::list_enforcements(const EnforcementFilter& filter,
                                                  const Page& page) const {
  auto scopes = narrow_scopes(enforcements_, filter.scopes);
  if (!scopes.ok()) return scopes.error();
  EnforcementFilter f = filter;
  f.scopes = std::move(*scopes);
  Query q{Entity::kEnforcement, {}, f.created_after, std::nullopt, {}};
  if (f.rule) add_condition(q, "by_rule_id", {std::to_string(*f.rule)});
  if (f.rule_ref) add_condition(q, "by_rule", {*f.rule_ref});
  if (f.event) add_condition(q, "by_event", {std::to_string(*f.event)});
  add_status_and_scopes(
      q, f.status ? std::vector<std::string>{*f.status} : std::vector<std::string>{}, f.scopes);
  if (f.trigger_ref) add_condition(q, "by_trigger", {*f.trigger_ref});
  return run_list(enforcements_, q, page);
}

Result<ListResult> Projections::list_executions(const ExecutionFilter& filter,
                                                const Page& page) const {
  auto scopes = narrow_scopes(executions_, filter.scopes);
  if (!scopes.ok()) return scopes.error();
  ExecutionFilter f = filter;
  f.scopes = std::move(*scopes);
  return run_list(executions_, execution_query(f), page);
}

Result<ExecutionStats> Projections::execution_stats(const ExecutionFilter& filter) const {
  auto scopes = narrow_scopes(executions_, filter.scopes);
  if (!scopes.ok()) return scopes.error();
  ExecutionFilter f = filter;
  f.scopes = std::move(*scopes);
  ExecutionStats stats;
  for (auto s : kExecutionStatuses) stats.by_status[std::string(s)] = 0;
  const Query q = execution_query(f);
  auto facets = facet_counts(executions_, q);
  if (!facets.ok()) return facets.error();
  if (*facets) {
    // Facet counters answer it: one per (status, scope) under the filter's value.
    for (const auto& [status, n] : (*facets)->by_status) {
      if (auto it = stats.by_status.find(status); it != stats.by_status.end()) it->second += n;
    }
    stats.total = (*facets)->total;
    for (const auto& [status, n] : stats.by_status) {
      if (!is_terminal_execution_status(status)) stats.active += n;
    }
    return stats;
  }
  auto plan = make_plan(executions_, q);
  if (!plan.ok()) return plan.error();
  const bool only_statuses = plan->exact && (q.conditions.empty() ||
                                             q.conditions.front().index->name == "by_status");
  const bool only_scopes = plan->exact && q.conditions.size() == 1 &&
                           (q.conditions.front().index->name == kByScope ||
                            q.conditions.front().index->name == kByStatusScope);
  if (only_scopes) {
    // Counters answer it: one per (status, scope).
    const std::vector<std::string> scopes = sorted_unique(*f.scopes);
    for (auto& [status, n] : stats.by_status) {
      if (!f.statuses.empty() &&
          std::find(f.statuses.begin(), f.statuses.end(), status) == f.statuses.end()) {
        continue;
      }
      for (const auto& scope : scopes) {
        auto r = read_counter(executions_,
                              index_prefix(kByStatusScope, status_scope_value(status, scope)));
        if (!r.ok()) return r.error();
        n += *r;
      }
    }
    stats.total = plan->count;  // includes rows with a status outside the ten, if any
  } else if (only_statuses) {
    // Counters answer it: one per status.
    for (auto& [status, n] : stats.by_status) {
      if (!f.statuses.empty() &&
          std::find(f.statuses.begin(), f.statuses.end(), status) == f.statuses.end()) {
        continue;
      }
      auto r = read_counter(executions_, index_prefix("by_status", status));
      if (!r.ok()) return r.error();
      n = *r;
    }
    stats.total = plan->count;  // includes rows with a status outside the ten, if any
  } else {
    auto st = scan_matches(executions_, Entity::kExecution, q, *plan, true,
                           [&](int64_t, std::string_view value, const std::string*) {
                             ++stats.total;
                             auto it = stats.by_status.find(std::string(entry_status(value)));
                             if (it != stats.by_status.end()) ++it->second;
                             return true;
                           });
    if (!st.ok()) return st.error();
  }
  for (const auto& [status, n] : stats.by_status) {
    if (!is_terminal_execution_status(status)) stats.active += n;
  }
  return stats;
}

bool Projections::wait_applied(const TopicPartition& tp, int64_t offset,
                               std::chrono::milliseconds timeout) const {
  return applied_.wait(std::string(kStage), tp, offset, timeout);
}

std::vector<std::pair<TopicPartition, int64_t>> Projections::applied() const {
  return applied_.of(std::string(kStage));
}

std::optional<Json> Projections::wait_for_execution(
    int64_t id, std::chrono::milliseconds timeout,
    const std::function<bool(const Json&)>& until) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Read the generation first: a change committed after it wakes the wait below.
    const uint64_t seen = feed_->generation();
    auto row = get_execution(id);
    if (!row.ok()) return std::nullopt;
    if (row->has_value() && (!until || until(**row))) return std::move(**row);
    if (!feed_->wait_past(seen, deadline)) return std::nullopt;
  }
}

Result<ProjectionStage> make_projection_stage(Log& log, AppliedOffsets& applied,
                                              const ProjectionStageOptions& options) {
  auto projections = Projections::open(log, applied);
  if (!projections.ok()) return projections.error();
  std::shared_ptr<ChangeFeed> feed = (*projections)->feed();
  StageSpec spec;
  spec.name = std::string(kStage);
  spec.topics = {std::string(topics::kEvents), std::string(topics::kEnforcements),
                 std::string(topics::kExecutions)};
  spec.stores = {std::string(kEventsStore), std::string(kEnforcementsStore),
                 std::string(kExecutionsStore), std::string(kInquiriesStore)};
  spec.instances = options.instances;
  spec.max_batch = options.max_batch;
  spec.factory = [feed, retention = options.retention](int) {
    return std::make_unique<ProjectionProcessor>(feed, retention);
  };
  return ProjectionStage{std::move(spec), std::move(*projections)};
}

}  // namespace attune::projections
