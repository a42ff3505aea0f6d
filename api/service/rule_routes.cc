// Rules (API.md §6, §10, §16.5): CRUD and enable/disable. A rule may use the actions and
// triggers its pack may reference (authz::may_reference); the rule's own visibility is its
// pack's.
#include "api/rest/pagination.h"
#include "api/service/definition_fields.h"
#include "api/service/fields.h"
#include "api/service/rule_check.h"
#include "api/service/service.h"

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

// The action or trigger a rule of `pack` names: 404 when it does not exist or the caller can
// neither see nor discover it; 400 `refusal` when the pack may not reference it (§16.5).
JsonPtr rule_target(ServiceContext& s, const Call& c, std::string_view kind,
                    const std::string& ref, const std::string& pack, const std::string& refusal,
                    std::optional<Resp>& refused) {
  const std::string label = kind == "action" ? "Action" : "Trigger";
  auto target = s.defs.resolve(kind, ref);
  // Public and restricted targets are known to every pack (§16.5: refused with 400 when this
  // one may not use them); private ones exist only for who can see them.
  const bool known = target && (c.lists(*target) ||
                                target->value("reference_visibility", "public") != "private");
  if (!known) {
    refused = error(Errc::kNotFound, label + " '" + ref + "' not found");
    return nullptr;
  }
  if (!authz::may_reference(*target, pack)) {
    refused = error(Errc::kBadRequest, refusal + " '" + target->value("ref", "") + "'");
    return nullptr;
  }
  return target;
}

Resp list_rules(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  const auto pack_ref = req.query_param("pack_ref");
  const auto trigger_ref = req.query_param("trigger_ref");
  const auto action_ref = req.query_param("action_ref");
  std::optional<bool> enabled;
  if (auto e = req.query_param("enabled")) {
    enabled = rest::parse_bool(*e);
    if (!enabled) return error(Errc::kBadRequest, "Query parameter 'enabled' must be a boolean");
  }
  auto rows = s.visible_definitions(c, "rule", [&](const Json& r) {
    return (!pack_ref || detail::pack_ref_of(r) == *pack_ref) &&
           (!trigger_ref || r.value("trigger_ref", "") == *trigger_ref) &&
           (!action_ref || r.value("action_ref", "") == *action_ref) &&
           (!enabled || r.value("enabled", true) == *enabled);
  });
  return Resp::json(200, sorted_page(std::move(rows), *page));
}

Resp get_rule(ServiceContext& s, Call& c) { return s.get_definition(c, "rule", "Rule"); }

Resp create_rule(ServiceContext& s, Call& c) {
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  Scoped scoped;
  if (auto err = resolve_scoped(c, s.defs, *body, scoped)) return *err;
  FieldReader f(*body);
  auto trigger_ref = f.str("trigger_ref", true, 1);
  auto action_ref = f.str("action_ref", true, 1);
  Json rule = Json::object();
  apply_fields(f, *body, rule_fields(), rule, true);
  if (!f.ok()) return validation(f.errors());
  const std::string pack = (*scoped.pack)["ref"];
  std::optional<Resp> refused;
  auto trigger = rule_target(s, c, "trigger", *trigger_ref, pack,
                             "Rule cannot subscribe to trigger", refused);
  if (!trigger) return *refused;
  auto action =
      rule_target(s, c, "action", *action_ref, pack, "Rule cannot reference action", refused);
  if (!action) return *refused;
  if (auto refused = s.check_set_refs(c, rule.value("permission_set_refs", Json()))) {
    return *refused;
  }
  Json errors = Json::object();
  if (!check_rule(rule, *trigger, errors)) return validation(errors);
  rule.update(Json{{"trigger", (*trigger)["id"]},
                   {"trigger_ref", (*trigger)["ref"]},
                   {"action", (*action)["id"]},
                   {"action_ref", (*action)["ref"]},
                   {"owner_identity", c.who().id}});
  return s.insert_scoped("rule", "Rule", *scoped.pack, scoped.ref, std::move(rule));
}

Resp update_rule(ServiceContext& s, Call& c) {
  return s.update_definition(
      c, "rule", "Rule", rule_fields(),
      [&s, &c](FieldReader& f, const Json& body, Json& rule) -> std::optional<Resp> {
        auto trigger_ref = f.str("trigger_ref", false, 1);
        auto action_ref = f.str("action_ref", false, 1);
        if (!f.ok()) return validation(f.errors());
        const std::string pack = detail::pack_ref_of(rule);
        const std::string name = "Rule '" + rule.value("ref", "") + "'";
        std::optional<Resp> refused;
        if (trigger_ref) {
          auto t = rule_target(s, c, "trigger", *trigger_ref, pack,
                               name + " cannot change trigger to", refused);
          if (!t) return refused;
          rule["trigger"] = (*t)["id"];
          rule["trigger_ref"] = (*t)["ref"];
        }
        if (action_ref) {
          auto a = rule_target(s, c, "action", *action_ref, pack,
                               name + " cannot change action to", refused);
          if (!a) return refused;
          rule["action"] = (*a)["id"];
          rule["action_ref"] = (*a)["ref"];
        }
        if (body.contains("permission_set_refs")) {
          if (auto denied = s.check_set_refs(c, rule.value("permission_set_refs", Json()))) {
            return denied;
          }
        }
        Json errors = Json::object();
        auto trigger = s.defs.get("trigger", rule["trigger_ref"].get<std::string>());
        if (trigger && !check_rule(rule, *trigger, errors)) return validation(errors);
        return std::nullopt;
      });
}

Resp delete_rule(ServiceContext& s, Call& c) {
  std::lock_guard lock(s.write_mu);
  std::optional<Resp> refused;
  auto r = s.find_checked(c, "rule", "Rule", refused);
  if (!r) return *refused;
  const std::string ref = (*r)["ref"];
  auto st =
      s.write_definitions({definition_tombstone("rule", ref, (*r)["id"], s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Rule '" + ref + "' deleted");
}

Resp set_rule_enabled(ServiceContext& s, Call& c, bool enabled) {
  std::lock_guard lock(s.write_mu);
  std::optional<Resp> refused;
  auto existing = s.find_checked(c, "rule", "Rule", refused);
  if (!existing) return *refused;
  Json rule = *existing;
  rule["enabled"] = enabled;
  rule["updated"] = s.now_str();
  auto st = s.write_definitions({definition_record("rule", rule, s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return data(200, rule);
}

}  // namespace

void register_rule_routes(RouteTable& t, ServiceContext& s) {
  const std::string v1 = "/api/v1/rules";
  t.add("GET", v1, Access::to("rules", "read"), bound(s, list_rules));
  t.add("POST", v1, Access::to("rules", "create").on_object(), bound(s, create_rule));
  t.add("GET", v1 + "/{ref}", Access::to("rules", "read"), bound(s, get_rule));
  t.add("PUT", v1 + "/{ref}", Access::to("rules", "update"), bound(s, update_rule));
  t.add("DELETE", v1 + "/{ref}", Access::to("rules", "delete"), bound(s, delete_rule));
  t.add("POST", v1 + "/{ref}/enable", Access::to("rules", "update"),
        [&s](Call& c) { return set_rule_enabled(s, c, true); });
  t.add("POST", v1 + "/{ref}/disable", Access::to("rules", "update"),
        [&s](Call& c) { return set_rule_enabled(s, c, false); });
}

}  // namespace attune::service
