// Key layout of the projection stores.
#include "api/projections/schema.h"

#include <algorithm>

#include "state/db.h"
#include "topology/core/time.h"

namespace attune::projections {
namespace {

// A scalar field as an index value: strings as they are, integers in decimal; null, absent or
// other types are not indexed.
std::optional<std::string> scalar(const Json& row, const char* field) {
  auto it = row.find(field);
  if (it == row.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return std::nullopt;
}

#define ATTUNE_FIELD(fn, field) \
  std::optional<std::string> fn(const Json& row) { return scalar(row, field); }
ATTUNE_FIELD(status_of, "status")
ATTUNE_FIELD(action_ref_of, "action_ref")
ATTUNE_FIELD(enforcement_of, "enforcement")
ATTUNE_FIELD(parent_of, "parent")
ATTUNE_FIELD(rule_of, "rule")
ATTUNE_FIELD(rule_ref_of, "rule_ref")
ATTUNE_FIELD(trigger_of, "trigger")
ATTUNE_FIELD(trigger_ref_of, "trigger_ref")
ATTUNE_FIELD(event_of, "event")
ATTUNE_FIELD(source_of, "source")
ATTUNE_FIELD(source_ref_of, "source_ref")
ATTUNE_FIELD(execution_of, "execution")
ATTUNE_FIELD(created_by_execution_of, "created_by_execution")
ATTUNE_FIELD(assigned_to_of, "assigned_to")
#undef ATTUNE_FIELD

// An execution's pack: `pack_ref` when the executor set it, else the action ref's pack part.
std::optional<std::string> pack_ref_of(const Json& row) {
  if (auto p = scalar(row, "pack_ref")) return p;
  auto action = scalar(row, "action_ref");
  if (!action) return std::nullopt;
  const auto dot = action->find('.');
  if (dot == std::string::npos || dot == 0) return std::nullopt;
  return action->substr(0, dot);
}

std::optional<std::string> scope_of_event(const Json& row) {
  return record_scope(Entity::kEvent, row);
}
std::optional<std::string> scope_of_enforcement(const Json& row) {
  return record_scope(Entity::kEnforcement, row);
}
std::optional<std::string> scope_of_execution(const Json& row) {
  return record_scope(Entity::kExecution, row);
}

// Rows without a string status are only in by_scope.
std::optional<std::string> status_scope_of(Entity e, const Json& row) {
  auto it = row.find("status");
  if (it == row.end() || !it->is_string()) return std::nullopt;
  return status_scope_value(it->get_ref<const std::string&>(), record_scope(e, row));
}
std::optional<std::string> status_scope_of_enforcement(const Json& row) {
  return status_scope_of(Entity::kEnforcement, row);
}
std::optional<std::string> status_scope_of_execution(const Json& row) {
  return status_scope_of(Entity::kExecution, row);
}
std::optional<std::string> scope_of_inquiry(const Json& row) {
  return record_scope(Entity::kInquiry, row);
}
std::optional<std::string> status_scope_of_inquiry(const Json& row) {
  return status_scope_of(Entity::kInquiry, row);
}

bool non_empty_string(const Json& row, const char* field) {
  auto it = row.find(field);
  return it != row.end() && it->is_string() && !it->get_ref<const std::string&>().empty();
}

const Json& field_or_null(const Json& row, const char* field) {
  static const Json kNull;
  auto it = row.find(field);
  return it == row.end() ? kNull : *it;
}

}  // namespace

std::string pack_of(const Json& ref) {
  if (!ref.is_string()) return {};
  const auto& s = ref.get_ref<const std::string&>();
  const auto dot = s.find('.');
  return dot == std::string::npos ? std::string() : s.substr(0, dot);
}

std::string status_scope_value(std::string_view status, std::string_view scope) {
  std::string v(status);
  v += ':';
  v += scope;
  return v;
}

std::string record_scope(Entity e, const Json& row) {
  switch (e) {
    case Entity::kExecution: {
      if (non_empty_string(row, "rule_ref")) return "p:" + pack_of(row["rule_ref"]);
      const std::string ap = pack_of(field_or_null(row, "action_ref"));
      const Json& executor = field_or_null(row, "executor");
      if (ap == "core" && executor.is_number_integer() && executor.get<int64_t>() > 0) {
        return "i:" + std::to_string(executor.get<int64_t>());
      }
      return "p:" + ap;
    }
    case Entity::kEnforcement: {
      std::string pack = pack_of(field_or_null(row, "rule_ref"));
      if (pack.empty()) pack = pack_of(field_or_null(row, "trigger_ref"));
      return "p:" + pack;
    }
    case Entity::kEvent: {
      const std::string tp = pack_of(field_or_null(row, "trigger_ref"));
      if (tp == "core" && non_empty_string(row, "rule_ref")) {
        return "p:" + pack_of(row["rule_ref"]);
      }
      return "p:" + tp;
    }
    case Entity::kInquiry: {
      const Json& scope = field_or_null(row, "scope");
      return scope.is_string() ? scope.get<std::string>() : std::string("p:");
    }
  }
  return "p:";
}

Entity entity_of(std::string_view name) {
  if (name == "event") return Entity::kEvent;
  if (name == "enforcement") return Entity::kEnforcement;
  if (name == "inquiry") return Entity::kInquiry;
  return Entity::kExecution;
}

const char* entity_resource(Entity e) {
  switch (e) {
    case Entity::kEvent:
      return "events";
    case Entity::kEnforcement:
      return "enforcements";
    case Entity::kExecution:
      return "executions";
    case Entity::kInquiry:
      return "inquiries";
  }
  return "executions";
}

const char* entity_name(Entity e) {
  switch (e) {
    case Entity::kEvent:
      return "event";
    case Entity::kEnforcement:
      return "enforcement";
    case Entity::kExecution:
      return "execution";
    case Entity::kInquiry:
      return "inquiry";
  }
  return "";
}

int execution_status_rank(std::string_view status) {
  const auto* begin = std::begin(kExecutionStatuses);
  const auto* it = std::find(begin, std::end(kExecutionStatuses), status);
  return it == std::end(kExecutionStatuses) ? -1 : static_cast<int>(it - begin);
}

bool is_terminal_execution_status(std::string_view status) {
  return status == "completed" || status == "failed" || status == "timeout" ||
         status == "cancelled" || status == "abandoned";
}

const std::vector<IndexDef>& index_defs(Entity e) {
  static const std::vector<IndexDef> kEvents = {{"by_trigger", trigger_ref_of},
                                                {"by_trigger_id", trigger_of},
                                                {"by_source", source_ref_of},
                                                {"by_source_id", source_of},
                                                {kByScope, scope_of_event}};
  static const std::vector<IndexDef> kEnforcements = {
      {"by_status", status_of},
      {"by_rule", rule_ref_of},
      {"by_rule_id", rule_of},
      {"by_event", event_of},
      {"by_trigger", trigger_ref_of},
      {kByScope, scope_of_enforcement},
      {kByStatusScope, status_scope_of_enforcement}};
  static const std::vector<IndexDef> kExecutions = {
      {"by_status", status_of},       {"by_action", action_ref_of},
      {"by_pack", pack_ref_of},       {"by_enforcement", enforcement_of},
      {"by_parent", parent_of},       {"by_rule", rule_ref_of},
      {"by_rule_id", rule_of},        {"by_trigger", trigger_ref_of},
      {kByScope, scope_of_execution}, {kByStatusScope, status_scope_of_execution}};
  static const std::vector<IndexDef> kInquiries = {
      {"by_status", status_of},
      {"by_execution", execution_of},
      {"by_created_by_execution", created_by_execution_of},
      {"by_assigned_to", assigned_to_of},
      {kByScope, scope_of_inquiry},
      {kByStatusScope, status_scope_of_inquiry}};
  switch (e) {
    case Entity::kEvent:
      return kEvents;
    case Entity::kEnforcement:
      return kEnforcements;
    case Entity::kExecution:
      return kExecutions;
    case Entity::kInquiry:
      return kInquiries;
  }
  return kEvents;
}

const IndexDef* find_index(Entity e, std::string_view name) {
  for (const auto& d : index_defs(e)) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

std::string escape_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '/') {
      out += "%2F";
    } else if (c == '%') {
      out += "%25";
    } else {
      out += c;
    }
  }
  return out;
}

std::string index_prefix(std::string_view index, std::string_view raw_value) {
  std::string p(index);
  p += '/';
  p += escape_value(raw_value);
  p += '/';
  return p;
}

std::string row_key(int64_t id) { return "r/" + state::encode_be64(static_cast<uint64_t>(id)); }

std::string index_key(std::string_view prefix, int64_t created_ms, int64_t id) {
  std::string k = "i/";
  k += prefix;
  k += state::encode_be64(static_cast<uint64_t>(std::max<int64_t>(created_ms, 0)));
  k += state::encode_be64(static_cast<uint64_t>(id));
  return k;
}

std::string inquiry_outcome_key(int64_t request) {
  return "o/" + state::encode_be64(static_cast<uint64_t>(request));
}

std::string queue_stats_key(std::string_view action_ref) { return "q/" + std::string(action_ref); }

std::string counter_key(std::string_view prefix, int instance) {
  return counter_prefix(prefix) + state::encode_be32(static_cast<uint32_t>(instance));
}

bool faceted_index(std::string_view index) {
  return index != "by_status" && index != kByScope && index != kByStatusScope &&
         index != "by_enforcement" && index != "by_parent" && index != "by_event" &&
         index != "by_execution" && index != "by_created_by_execution" &&
         index != kByCreated.substr(0, kByCreated.size() - 1);
}

bool faceted_prefix(std::string_view prefix) {
  const auto slash = prefix.find('/');
  return slash != std::string_view::npos && faceted_index(prefix.substr(0, slash));
}

std::string facet_key(std::string_view prefix, std::string_view entry_value, int instance) {
  std::string k = facet_prefix(prefix);
  k += escape_value(entry_value);
  k += '/';
  k += state::encode_be32(static_cast<uint32_t>(instance));
  return k;
}

std::string facet_entry_value(std::string_view prefix, std::string_view key) {
  const size_t begin = 2 + prefix.size();
  if (key.size() < begin + 5) return {};
  const std::string_view escaped = key.substr(begin, key.size() - begin - 5);
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] == '%' && escaped.substr(i, 3) == "%2F") {
      out += '/';
      i += 2;
    } else if (escaped[i] == '%' && escaped.substr(i, 3) == "%25") {
      out += '%';
      i += 2;
    } else {
      out += escaped[i];
    }
  }
  return out;
}

int64_t index_key_id(std::string_view key) {
  return static_cast<int64_t>(state::decode_be64(key.substr(key.size() - 8)));
}

int64_t index_key_created(std::string_view key) {
  return static_cast<int64_t>(state::decode_be64(key.substr(key.size() - 16, 8)));
}

int64_t created_ms(const Json& row) {
  auto it = row.find("created");
  if (it == row.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) return parse_rfc3339_ms(it->get_ref<const std::string&>()).value_or(0);
  return 0;
}

std::string index_entry_value(Entity e, const Json& row) {
  const std::string status = e == Entity::kEvent ? std::string() : status_of(row).value_or("");
  return status_scope_value(status, record_scope(e, row));
}

std::string_view entry_status(std::string_view value) {
  return value.substr(0, value.find(':'));
}

std::optional<std::string_view> entry_scope(std::string_view value) {
  const auto colon = value.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return value.substr(colon + 1);
}

std::vector<std::string> row_prefixes(Entity e, const Json& row) {
  std::vector<std::string> out{std::string(kByCreated)};
  for (const auto& d : index_defs(e)) {
    if (auto v = d.extract(row)) out.push_back(index_prefix(d.name, *v));
  }
  return out;
}

Json event_list_row(const Json& row) {
  Json out = row;
  bool has_payload = false;
  if (auto it = out.find("payload"); it != out.end()) {
    has_payload = !it->is_null() && !((it->is_object() || it->is_array()) && it->empty());
    out.erase(it);
  }
  out.erase("config");
  out["has_payload"] = has_payload;
  return out;
}

}  // namespace attune::projections
