#include "api/service/context.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <fstream>

#include "api/auth/password.h"
#include "api/auth/secrets.h"
#include "api/projections/projections.h"
#include "api/projections/schema.h"
#include "api/service/core_pack.h"
#include "processors/keystore/expiry.h"
#include "topology/core/time.h"

namespace attune::service {

using Resp = rest::HttpResponse;

namespace detail {

rest::HttpResponse data(int status, Json value, std::optional<std::string> message) {
  Json body = Json::object();  // (an initializer list would copy `value`)
  body["data"] = std::move(value);
  if (message) body["message"] = *message;
  return rest::HttpResponse::json(status, body);
}

rest::HttpResponse error(Errc code, std::string message, Json details) {
  return rest::HttpResponse::error(make_error(code, std::move(message)), std::move(details));
}

rest::HttpResponse validation(Json fields) {
  std::string first;
  if (fields.is_object() && !fields.empty()) {
    first = ": " + fields.begin().key() + " " + fields.begin().value().get<std::string>();
  }
  return error(Errc::kValidation, "Validation failed" + first, Json{{"fields", std::move(fields)}});
}

rest::HttpResponse deleted(std::string message) {
  return rest::HttpResponse::json(200, Json{{"success", true}, {"message", std::move(message)}});
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 16 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Json page_envelope(const std::vector<JsonPtr>& rows, const rest::PageRequest& page,
                   const std::function<Json(const Json&)>& present) {
  Json items = Json::array();
  for (size_t i = static_cast<size_t>(page.offset);
       i < rows.size() && items.size() < static_cast<size_t>(page.page_size); ++i) {
    items.push_back(present ? present(*rows[i]) : *rows[i]);
  }
  return rest::list_envelope(std::move(items), page, static_cast<int64_t>(rows.size()));
}

Json sorted_page(std::vector<JsonPtr> rows, const rest::PageRequest& page,
                 const std::function<Json(const Json&)>& present) {
  std::sort(rows.begin(), rows.end(), [](const JsonPtr& a, const JsonPtr& b) {
    const auto& ca = (*a)["created"];
    const auto& cb = (*b)["created"];
    if (ca != cb) return ca > cb;
    return (*a)["id"] > (*b)["id"];
  });
  if (page.order == rest::SortOrder::kAsc) std::reverse(rows.begin(), rows.end());
  return page_envelope(rows, page, present);
}

std::string pack_ref_of(const Json& obj) {
  auto it = obj.find("pack_ref");
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::set<std::string> csv_set(const std::optional<std::string>& value) {
  std::set<std::string> out;
  if (!value) return out;
  size_t start = 0;
  while (start <= value->size()) {
    size_t comma = value->find(',', start);
    if (comma == std::string::npos) comma = value->size();
    if (comma > start) out.insert(value->substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

bool matches_text(const Json& obj, const std::string& needle) {
  if (needle.empty()) return true;
  const Json description = obj.value("description", Json());
  std::string hay = obj.value("ref", "") + " " + obj.value("label", "") + " " +
                    (description.is_string() ? description.get<std::string>() : "");
  std::transform(hay.begin(), hay.end(), hay.begin(), ::tolower);
  return hay.find(needle) != std::string::npos;
}

}  // namespace detail

ServiceContext::ServiceContext(Log& log, DefinitionsTable& defs, projections::Projections& views,
                               const auth::JwtCodec& jwt, IdGenerator& ids, const Clock& clock,
                               Metrics& metrics, ServiceOptions options)
    : log(log),
      defs(defs),
      views(views),
      jwt(jwt),
      ids(ids),
      clock(clock),
      metrics(metrics),
      options(std::move(options)) {}

ServiceContext::~ServiceContext() = default;

std::string ServiceContext::now_str() const { return format_rfc3339_ms(now_ms()); }

rest::HttpResponse ServiceContext::write_definitions_then(std::vector<OutRecord> records,
                                                     std::shared_ptr<void> held,
                                                     std::function<rest::HttpResponse()> respond) {
  auto answer = std::make_shared<rest::DeferredResponse>();
  const auto timeout = options.write_timeout;
  log.produce_async(
      std::move(records),
      [&defs = defs, answer, held = std::move(held), respond = std::move(respond),
       timeout](Result<std::vector<RecordPosition>> pos) mutable {
        if (!pos.ok()) {
          answer->complete(Resp::error(pos.error()));
          return;
        }
        if (pos->empty()) {
          answer->complete(respond());
          return;
        }
        defs.when_applied(pos->back().offset, timeout,
                           [answer, held = std::move(held), respond = std::move(respond)](
                               bool applied) mutable {
                             if (!applied) {
                               answer->complete(Resp::error(make_error(
                                   Errc::kUnavailable,
                                   "Database operation temporarily unavailable; please retry")));
                               return;
                             }
                             held.reset();  // the next writer of the key sees this write
                             answer->complete(respond());
                           });
      });
  return Resp::later(std::move(answer));
}

Result<std::string> ServiceContext::claim(std::string_view kind, std::string_view ref, bool absent) {
  if (!options.claim_creates) return std::string();
  const std::string claimant =
      options.instance + "/" + std::to_string(claims_made_.fetch_add(1) + 1);
  auto pos = log.produce({claim_record(kind, ref, claimant, absent, now_ms(), "api")});
  if (!pos.ok()) return pos.error();
  if (pos->empty() || !defs.wait_applied(pos->back().offset, options.write_timeout)) {
    return make_error(Errc::kUnavailable, "Database operation temporarily unavailable; please retry");
  }
  if (defs.claim_holder(kind, ref) != claimant) {
    return make_error(Errc::kConflict, "another request holds " + std::string(kind) + " '" +
                                           std::string(ref) + "'");
  }
  return claimant;
}

void ServiceContext::claim_release(std::vector<OutRecord>& records, std::string_view kind,
                               std::string_view ref, const std::string& claimant) const {
  if (!claimant.empty()) records.push_back(release_record(kind, ref, claimant, now_ms(), "api"));
}

rest::HttpResponse ServiceContext::claim_failed(const Error& e, std::string conflict) {
  if (e.code == Errc::kConflict) return Resp::error(make_error(Errc::kConflict, std::move(conflict)));
  return Resp::error(e);
}

Status ServiceContext::write_definitions(std::vector<OutRecord> records) {
  auto pos = log.produce(std::move(records));
  if (!pos.ok()) return pos.error();
  if (pos->empty()) return {};
  if (!defs.wait_applied(pos->back().offset, options.write_timeout)) {
    return make_error(Errc::kUnavailable, "Database operation temporarily unavailable; please retry");
  }
  return {};
}

Result<Principal> ServiceContext::authenticate(const rest::HttpRequest& req) const {
  auto header = req.header("Authorization");
  if (!header) return make_error(Errc::kUnauthorized, "Missing Authorization header");
  constexpr std::string_view kBearer = "Bearer ";
  if (header->size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), header->begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    return make_error(Errc::kUnauthorized, "Authorization header must be 'Bearer <token>'");
  }
  const std::string_view token = std::string_view(*header).substr(kBearer.size());
  const int64_t now_s = clock.now_ms() / 1000;
  std::shared_ptr<const auth::Claims> claims;
  {
    std::shared_lock lock(token_cache_mu_);
    if (auto it = token_cache_.find(token); it != token_cache_.end()) claims = it->second;
  }
  if (claims) {
    if (now_s >= claims->exp) return make_error(Errc::kUnauthorized, "Token expired");
  } else {
    auto verified = jwt.verify(
        token, {auth::kAccessToken, auth::kExecutionToken, auth::kSensorToken}, now_s);
    if (!verified.ok()) return verified.error();
    claims = std::make_shared<const auth::Claims>(std::move(*verified));
    constexpr size_t kTokenCacheSize = 4096;
    std::unique_lock lock(token_cache_mu_);
    if (token_cache_.size() >= kTokenCacheSize) token_cache_.clear();
    token_cache_.emplace(std::string(token), claims);
  }
  if (!detail::all_digits(claims->sub)) {
    return make_error(Errc::kUnauthorized, "Invalid token subject");
  }
  Principal p;
  p.id = std::stoll(claims->sub);
  p.token_type = claims->token_type;
  p.identity = defs.get_by_id("identity", p.id);
  if (!p.identity) return make_error(Errc::kUnauthorized, "Identity no longer exists");
  if (p.identity->value("frozen", false)) {
    return make_error(Errc::kUnauthorized, "Identity is frozen");
  }
  p.login = p.identity->value("login", "");
  if (p.token_type == auth::kExecutionToken) {
    // Scoped to one execution and expiring with it (API.md §4.2): a token whose execution is
    // unknown or finished is refused like an expired one.
    const Json& meta = claims->metadata;
    const Json id = meta.is_object() ? meta.value("execution_id", Json()) : Json();
    if (!id.is_number_integer() || id.get<int64_t>() <= 0) {
      return make_error(Errc::kUnauthorized, "Execution token has no execution_id");
    }
    auto row = token_execution(id.get<int64_t>());
    if (!row.ok()) return row.error();
    p.execution_id = id.get<int64_t>();
    p.execution_action_ref = row->value("action_ref", "");
    p.execution_pack_ref = row->value("pack_ref", "");
    if (p.execution_pack_ref.empty()) {
      const auto dot = p.execution_action_ref.find('.');
      if (dot != std::string::npos) p.execution_pack_ref = p.execution_action_ref.substr(0, dot);
    }
    if (auto sets = meta.find("permission_set_refs"); sets != meta.end() && sets->is_array()) {
      p.permission_set_refs = *sets;
    }
    return p;
  }
  if (p.token_type == auth::kSensorToken) {
    const Json types = claims->extra.is_object() ? claims->extra.value("trigger_types", Json())
                                                  : Json();
    if (types.is_array()) p.trigger_types = types;
  }
  return p;
}

std::shared_ptr<const authz::View> ServiceContext::view_of(const Principal& p) const {
  std::string key;
  if (p.execution_id != 0) {
    key = "x:" + std::to_string(p.execution_id) + ":" + p.permission_set_refs.dump();
  } else if (p.token_type == auth::kSensorToken) {
    key = "s:" + std::to_string(p.id);
  } else {
    key = "a:" + std::to_string(p.id);
  }
  const uint64_t version = defs.version();
  {
    std::lock_guard lock(views_mu_);
    if (views_version_ != version) {
      view_cache_.clear();
      views_version_ = version;
    }
    if (auto it = view_cache_.find(key); it != view_cache_.end()) return it->second;
  }
  authz::Principal who;
  if (p.execution_id != 0) {
    // API.md §16.2: the token's permission sets and its own action, pack and execution; never
    // the rights of the identity that started it.
    who.grants = grants_of(Json{{"permission_set_refs", p.permission_set_refs}});
    who.execution_id = p.execution_id;
    who.standard_action_ref = p.execution_action_ref;
    who.standard_pack_ref = p.execution_pack_ref;
  } else if (p.token_type == auth::kSensorToken) {
    // Sensor tokens (API.md §4.2) fire their trigger types (checked by POST /events) and read
    // what their sensor identity was granted — reads only, whatever the sets say.
    who.identity_id = p.id;
    if (p.identity) {
      for (auto& g : grants_of(*p.identity)) {
        if (!g.actions.count("read")) continue;
        g.actions = {"read"};
        who.grants.push_back(std::move(g));
      }
    }
  } else {
    who.identity_id = p.id;
    if (p.identity) who.grants = grants_of(*p.identity);
  }
  // Live packs, and retired (deleted) ones whose ref is not in use again: their history keeps
  // the visibility it had.
  std::vector<JsonPtr> packs = defs.list("pack");
  for (auto& retired : defs.list("retired_pack")) {
    if (!defs.get("pack", retired->value("ref", ""))) packs.push_back(std::move(retired));
  }
  auto view = std::make_shared<const authz::View>(std::move(who), packs);
  constexpr size_t kViewCacheSize = 4096;
  std::lock_guard lock(views_mu_);
  if (views_version_ == version) {
    if (view_cache_.size() >= kViewCacheSize) view_cache_.clear();
    view_cache_.emplace(key, view);
  }
  return view;
}

std::shared_ptr<const authz::View> ServiceContext::identity_view(int64_t identity_id) const {
  Principal p;
  p.id = identity_id;
  p.token_type = std::string(auth::kAccessToken);
  p.identity = defs.get_by_id("identity", identity_id);
  if (!p.identity || p.identity->value("frozen", false)) return nullptr;
  return view_of(p);
}

Result<Json> ServiceContext::token_execution(int64_t execution_id) const {
  auto row = views.get_execution(execution_id);
  if (!row.ok()) return row.error();
  if (!row->has_value()) {
    return make_error(Errc::kUnauthorized, "Execution token names an unknown execution");
  }
  const std::string status = (**row).value("status", "");
  if (projections::is_terminal_execution_status(status)) {
    return make_error(Errc::kUnauthorized, "Execution token expired: the execution is " + status);
  }
  return std::move(**row);
}

Status ServiceContext::produce_and_wait(OutRecord record, bool wait_projection) {
  auto pos = log.produce({std::move(record)});
  if (!pos.ok()) return pos.error();
  if (wait_projection && !views.wait_applied((*pos)[0].tp, (*pos)[0].offset,
                                              options.write_timeout)) {
    return make_error(Errc::kUnavailable, "Database operation temporarily unavailable; please retry");
  }
  return {};
}

Status ServiceContext::events_caught_up() {
  const std::string topic(topics::kEvents);
  for (int32_t p = 0; p < log.partitions(topic); ++p) {
    const TopicPartition tp{topic, p};
    const int64_t end = log.end_offset(tp);
    if (end > 0 && !views.wait_applied(tp, end - 1, options.write_timeout)) {
      return make_error(Errc::kUnavailable,
                        "Database operation temporarily unavailable; please retry");
    }
  }
  return {};
}

}  // namespace attune::service
