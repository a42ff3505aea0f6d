// Triggers and their webhooks (API.md §6, §9.1, §16.5). Public triggers of other packs are
// discoverable (metadata only, without webhook keys); everything else follows pack visibility.
#include <algorithm>

#include "api/auth/secrets.h"
#include "api/rest/pagination.h"
#include "api/service/definition_fields.h"
#include "api/service/fields.h"
#include "api/service/service.h"
#include "api/service/rule_check.h"
#include "api/service/webhook_checks.h"

namespace attune::service {

using detail::data;
using detail::deleted;
using detail::error;
using detail::resolve_scoped;
using detail::Scoped;
using detail::sorted_page;
using detail::validation;
using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;

namespace {

// What a caller who cannot see the trigger's pack learns of a discoverable trigger.
Json metadata_only(const Json& trigger) {
  Json out = trigger;
  out["webhook_key"] = nullptr;
  out["webhook_config"] = nullptr;
  return out;
}

Resp list_triggers(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  const auto pack_ref = req.query_param("pack_ref");
  const std::set<std::string> packs = detail::csv_set(req.query_param("packs"));
  const std::string referencing = req.query_param("referencing_pack_ref").value_or("");
  std::string needle = req.query_param("q").value_or("");
  std::transform(needle.begin(), needle.end(), needle.begin(), ::tolower);
  std::vector<JsonPtr> rows;
  for (auto& t : s.defs.list("trigger")) {
    if (pack_ref && detail::pack_ref_of(*t) != *pack_ref) continue;
    if (!packs.empty() && !packs.count(detail::pack_ref_of(*t))) continue;
    if (!detail::matches_text(*t, needle)) continue;
    if (!referencing.empty() && !authz::may_reference(*t, referencing)) continue;
    if (c.lists(*t)) {
      rows.push_back(std::move(t));
    } else if (authz::discoverable(c.can(), *t, referencing)) {
      rows.push_back(std::make_shared<const Json>(metadata_only(*t)));
    }
  }
  return Resp::json(200, sorted_page(std::move(rows), *page));
}

Resp get_trigger(ServiceContext& s, Call& c) {
  auto t = s.defs.resolve("trigger", c.req.params["ref"]);
  if (t && !c.lists(*t) && authz::discoverable(c.can(), *t, "")) {
    return data(200, metadata_only(*t));
  }
  return s.get_definition(c, "trigger", "Trigger");
}

Resp create_trigger(ServiceContext& s, Call& c) {
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  Scoped scoped;
  if (auto err = resolve_scoped(c, s.defs, *body, scoped)) return *err;
  Json trigger = Json::object();
  FieldReader f(*body);
  apply_fields(f, *body, trigger_fields(), trigger, true);
  if (auto err = check_webhook_config(trigger["webhook_config"])) f.fail("webhook_config", *err);
  if (!f.ok()) return validation(f.errors());
  trigger.update(Json{{"webhook_enabled", false},
                      {"webhook_key", nullptr},
                      {"sensor", nullptr},
                      {"sensor_ref", nullptr}});
  return s.insert_scoped("trigger", "Trigger", *scoped.pack, scoped.ref, std::move(trigger));
}

Resp update_trigger(ServiceContext& s, Call& c) {
  return s.update_definition(
      c, "trigger", "Trigger", trigger_fields(),
      [&s](FieldReader& f, const Json&, Json& trigger) -> std::optional<Resp> {
        if (auto err = check_webhook_config(trigger["webhook_config"])) {
          f.fail("webhook_config", *err);
        }
        return referrers_refuse(s, "trigger", trigger);
      });
}

Resp delete_trigger(ServiceContext& s, Call& c) {
  std::lock_guard lock(s.write_mu);
  std::optional<Resp> refused;
  auto t = s.find_checked(c, "trigger", "Trigger", refused);
  if (!t) return *refused;
  const std::string ref = (*t)["ref"];
  if (detail::pack_ref_of(*t) == "core") {
    return error(Errc::kBadRequest, "Triggers of the core pack cannot be deleted");
  }
  Json users = Json::array();
  for (const auto& rule : s.defs.rules_for_trigger(ref)) users.push_back((*rule)["ref"]);
  if (!users.empty()) {
    return error(Errc::kConflict, "Trigger '" + ref + "' is used by rules " + users.dump(),
                 Json{{"rules", users}});
  }
  auto st = s.write_definitions(
      {definition_tombstone("trigger", ref, (*t)["id"], s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Trigger '" + ref + "' deleted");
}

Resp webhook_toggle(ServiceContext& s, Call& c, std::string_view op) {
  std::lock_guard lock(s.write_mu);
  std::optional<Resp> refused;
  auto existing = s.find_checked(c, "trigger", "Trigger", refused);
  if (!existing) return *refused;
  Json trigger = *existing;
  if (op == "enable") {
    trigger["webhook_enabled"] = true;
    if (!trigger["webhook_key"].is_string()) trigger["webhook_key"] = auth::random_urlsafe(43);
  } else if (op == "disable") {
    trigger["webhook_enabled"] = false;
  } else {
    if (!trigger.value("webhook_enabled", false)) {
      return error(Errc::kBadRequest, "Webhooks are not enabled for trigger '" +
                                          trigger["ref"].get<std::string>() + "'");
    }
    trigger["webhook_key"] = auth::random_urlsafe(43);
  }
  trigger["updated"] = s.now_str();
  auto st = s.write_definitions({definition_record("trigger", trigger, s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return data(200, trigger);
}

}  // namespace

void register_trigger_routes(RouteTable& t, ServiceContext& s) {
  const std::string v1 = "/api/v1/triggers";
  t.add("GET", v1, Access::to("triggers", "read"), bound(s, list_triggers));
  t.add("POST", v1, Access::to("triggers", "create").on_object(), bound(s, create_trigger));
  t.add("GET", v1 + "/{ref}", Access::to("triggers", "read"), bound(s, get_trigger));
  t.add("PUT", v1 + "/{ref}", Access::to("triggers", "update"), bound(s, update_trigger));
  t.add("DELETE", v1 + "/{ref}", Access::to("triggers", "delete"), bound(s, delete_trigger));
  for (std::string op : {"enable", "disable", "regenerate"}) {
    t.add("POST", v1 + "/{ref}/webhooks/" + op, Access::to("triggers", "update"),
          [&s, op](Call& c) { return webhook_toggle(s, c, op); });
  }
}

}  // namespace attune::service
