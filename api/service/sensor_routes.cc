// Sensors (API.md §6 route map, §9.3): CRUD over attune.definitions plus the live status and the
// kept stdout/stderr of sensor processes, from a SensorStatusSource (the sensor stage's
// SensorManager on one machine, the attune.sensors view on Kafka).
#include <regex>

#include "api/rest/pagination.h"
#include "api/service/core_pack.h"
#include "api/service/fields.h"
#include "api/service/definition_fields.h"
#include "api/service/service.h"
#include "processors/sensor/sensor_manager.h"
#include "processors/sensor/sensor_status.h"

namespace attune::service {

using detail::data;
using detail::deleted;
using detail::error;
using detail::validation;
using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;

// The writable fields of a sensor with the pack-file aliases of `sensors/<name>.yaml`
// (entry_point, runner_type, parameters) folded in. Records field errors into `f`.
void read_sensor_fields(FieldReader& f, const Json& body, Json& sensor, bool creating) {
  auto set_str = [&](const char* name, const char* alias, bool required) {
    const char* key = body.contains(name) ? name : (alias && body.contains(alias) ? alias : name);
    if (!body.contains(key)) {
      if (required && creating) f.fail(name, "is required");
      return;
    }
    if (auto v = f.str(key, false, required ? 1 : 0)) sensor[name] = *v;
  };
  set_str("label", nullptr, false);
  set_str("description", nullptr, false);
  set_str("entrypoint", "entry_point", true);
  if (body.contains("enabled")) {
    if (auto v = f.boolean("enabled")) sensor["enabled"] = *v;
  }
  const char* schema_key = body.contains("param_schema") ? "param_schema" : "parameters";
  if (body.contains(schema_key)) {
    if (auto v = f.object(schema_key)) sensor["param_schema"] = *v;
  }
  if (body.contains("config")) {
    if (auto v = f.object("config")) sensor["config"] = *v;
  }
  if (body.contains("trigger_types")) {
    auto v = f.string_array("trigger_types");
    if (v && v->empty()) f.fail("trigger_types", "must name at least one trigger");
    if (v) sensor["trigger_types"] = *v;
  } else if (creating) {
    f.fail("trigger_types", "is required");
  }
}



namespace {

Json with_sensor_status(ServiceContext& s, const Json& sensor) {
  Json out = sensor;
  if (sensor::is_builtin_sensor(sensor)) {
    out["status"] = Json{{"state", "running"}, {"builtin", true}};
  } else if (s.sensor_status()) {
    out["status"] = s.sensor_status()->status(sensor.value("ref", ""));
  } else {
    out["status"] = Json{{"state", "unknown"},
                         {"reason", "the sensor stage does not run in this process"}};
  }
  return out;
}

// Resolves runtime / runtime_ref / runner_type into runtime + runtime_ref.
std::optional<rest::HttpResponse> resolve_sensor_runtime(ServiceContext& s, const Json& body,
                                                                     Json& sensor, bool creating) {
  JsonPtr rt;
  if (auto it = body.find("runtime"); it != body.end() && it->is_number_integer()) {
    rt = s.defs.get_by_id("runtime", it->get<int64_t>());
    if (!rt) return error(Errc::kNotFound, "Runtime '" + it->dump() + "' not found");
  } else {
    std::string name;
    for (const char* k : {"runtime_ref", "runner_type", "runtime"}) {
      if (auto it2 = body.find(k); it2 != body.end() && it2->is_string()) {
        name = it2->get<std::string>();
        break;
      }
    }
    if (name.empty()) {
      if (!creating) return std::nullopt;
      name = "core.shell";
    }
    const std::string canonical = canonical_runtime(name);
    rt = s.defs.get("runtime", canonical.empty() ? name : canonical);
    if (!rt) {
      return validation(Json{{"runtime_ref", "unknown runtime '" + name +
                                                 "' (shell, python, nodejs or native)"}});
    }
  }
  sensor["runtime"] = (*rt)["id"];
  sensor["runtime_ref"] = (*rt)["ref"];
  return std::nullopt;
}

// The records that make `sensor` (new or updated; `old` = previous version or null) take effect:
// the sensor, its identity (for sensor tokens) and the sensor/sensor_ref links of its triggers.
}  // namespace

std::vector<OutRecord> ServiceContext::sensor_records(const Json& sensor, const Json& old) {
  std::vector<OutRecord> records;
  const int64_t ts = now_ms();
  const std::string now = now_str();
  const std::string ref = sensor["ref"];
  records.push_back(definition_record("sensor", sensor, ts, "api"));
  const std::string login = sensor::sensor_identity_login(ref);
  if (!defs.get("identity", login)) {
    Json identity = {{"id", ids.next()},
                     {"ref", login},
                     {"login", login},
                     {"display_name", "Sensor " + ref},
                     {"attributes", Json{{"sensor_ref", ref}}},
                     {"is_sensor", true},
                     {"frozen", false},
                     {"roles", Json::array()},
                     {"permission_set_refs", Json::array()},
                     {"created", now},
                     {"updated", now}};
    records.push_back(definition_record("identity", identity, ts, "api"));
  }
  std::set<std::string> now_types, old_types;
  for (const auto& t : sensor.value("trigger_types", Json::array())) now_types.insert(t.get<std::string>());
  if (old.is_object()) {
    for (const auto& t : old.value("trigger_types", Json::array())) {
      if (t.is_string()) old_types.insert(t.get<std::string>());
    }
  }
  for (const auto& t : now_types) {
    JsonPtr trig = defs.get("trigger", t);
    if (!trig || (*trig).value("sensor_ref", Json(nullptr)) == Json(ref)) continue;
    Json updated = *trig;
    updated["sensor"] = sensor["id"];
    updated["sensor_ref"] = ref;
    updated["updated"] = now;
    records.push_back(definition_record("trigger", updated, ts, "api"));
  }
  for (const auto& t : old_types) {
    if (now_types.count(t)) continue;
    JsonPtr trig = defs.get("trigger", t);
    if (!trig || (*trig).value("sensor_ref", Json(nullptr)) != Json(ref)) continue;
    Json updated = *trig;
    updated["sensor"] = nullptr;
    updated["sensor_ref"] = nullptr;
    updated["updated"] = now;
    records.push_back(definition_record("trigger", updated, ts, "api"));
  }
  return records;
}

namespace {

rest::HttpResponse list_sensors(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  const auto pack_ref = req.query_param("pack_ref");
  auto rows = s.visible_definitions(
      c, "sensor", [&](const Json& sensor) { return !pack_ref || detail::pack_ref_of(sensor) == *pack_ref; });
  return Resp::json(200, detail::sorted_page(std::move(rows), *page, [&s](const Json& sensor) {
    return with_sensor_status(s, sensor);
  }));
}

rest::HttpResponse get_sensor(ServiceContext& s, Call& c) {
  std::optional<Resp> refused;
  auto obj = s.find_checked(c, "sensor", "Sensor", refused);
  if (!obj) return *refused;
  return data(200, with_sensor_status(s, *obj));
}

rest::HttpResponse create_sensor(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  detail::Scoped scoped;
  if (auto err = detail::resolve_scoped(c, s.defs, *body, scoped)) return *err;
  FieldReader f(*body);
  const JsonPtr& pack = scoped.pack;
  const std::string& full_ref = scoped.ref;
  const std::string& name = scoped.name;
  Json sensor = {{"label", name},         {"description", ""},
                 {"enabled", true},       {"param_schema", Json::object()},
                 {"config", Json::object()}};
  read_sensor_fields(f, *body, sensor, true);
  if (!f.ok()) return validation(f.errors());
  if (auto err = resolve_sensor_runtime(s, *body, sensor, true)) return *err;
  for (const auto& t : sensor["trigger_types"]) {
    auto trigger = s.defs.get("trigger", t.get<std::string>());
    if (!trigger || !c.lists(*trigger)) {
      return error(Errc::kNotFound, "Trigger '" + t.get<std::string>() + "' not found");
    }
  }
  std::lock_guard lock(s.write_mu);
  if (s.defs.get("sensor", full_ref)) {
    return error(Errc::kConflict, "Sensor '" + full_ref + "' already exists");
  }
  if (auto who = s.defs.get("identity", sensor::sensor_identity_login(full_ref));
      who && !who->value("is_sensor", false)) {
    return error(Errc::kConflict, "Login '" + sensor::sensor_identity_login(full_ref) +
                                      "' is taken by another identity");
  }
  auto claimant = s.claim("sensor", full_ref, true);
  if (!claimant.ok()) {
    return s.claim_failed(claimant.error(), "Sensor '" + full_ref + "' already exists");
  }
  const std::string now = s.now_str();
  sensor.update(Json{{"id", s.ids.next()},
                     {"ref", full_ref},
                     {"pack", (*pack)["id"]},
                     {"pack_ref", (*pack)["ref"]},
                     {"created", now},
                     {"updated", now}});
  auto records = s.sensor_records(sensor, nullptr);
  s.claim_release(records, "sensor", full_ref, *claimant);
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return data(201, with_sensor_status(s, sensor), "Sensor created");
}

rest::HttpResponse update_sensor(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  std::lock_guard lock(s.write_mu);
  std::optional<Resp> refused;
  auto existing = s.find_checked(c, "sensor", "Sensor", refused);
  if (!existing) return *refused;
  if (sensor::is_builtin_sensor(*existing)) {
    return error(Errc::kBadRequest, "The built-in sensor cannot be changed");
  }
  Json sensor = *existing;
  FieldReader f(*body);
  read_sensor_fields(f, *body, sensor, false);
  if (!f.ok()) return validation(f.errors());
  if (auto err = resolve_sensor_runtime(s, *body, sensor, false)) return *err;
  for (const auto& t : sensor["trigger_types"]) {
    auto trigger = s.defs.get("trigger", t.get<std::string>());
    if (!trigger || !c.lists(*trigger)) {
      return error(Errc::kNotFound, "Trigger '" + t.get<std::string>() + "' not found");
    }
  }
  sensor["updated"] = s.now_str();
  auto st = s.write_definitions(s.sensor_records(sensor, *existing));
  if (!st.ok()) return Resp::error(st.error());
  return data(200, with_sensor_status(s, sensor), "Sensor updated");
}

rest::HttpResponse delete_sensor(ServiceContext& s, Call& c) {
  std::lock_guard lock(s.write_mu);
  std::optional<Resp> refused;
  auto existing = s.find_checked(c, "sensor", "Sensor", refused);
  if (!existing) return *refused;
  if (sensor::is_builtin_sensor(*existing)) {
    return error(Errc::kBadRequest, "The built-in sensor cannot be deleted");
  }
  const std::string ref = (*existing)["ref"];
  const int64_t ts = s.now_ms();
  std::vector<OutRecord> records;
  for (const auto& t : existing->value("trigger_types", Json::array())) {
    JsonPtr trig = s.defs.get("trigger", t.get<std::string>());
    if (!trig || trig->value("sensor_ref", Json(nullptr)) != Json(ref)) continue;
    Json updated = *trig;
    updated["sensor"] = nullptr;
    updated["sensor_ref"] = nullptr;
    updated["updated"] = s.now_str();
    records.push_back(definition_record("trigger", updated, ts, "api"));
  }
  if (auto identity = s.defs.get("identity", sensor::sensor_identity_login(ref));
      identity && identity->value("is_sensor", false)) {
    records.push_back(definition_tombstone("identity", (*identity)["ref"].get<std::string>(),
                                           (*identity)["id"], ts, "api"));
  }
  for (const auto& key : s.defs.list_prefix("key", "sensor." + ref + ".")) {  // its keys
    records.push_back(definition_tombstone("key", key->value("ref", ""), key->value("id", int64_t{0}),
                                           ts, "api"));
  }
  records.push_back(definition_tombstone("sensor", ref, (*existing)["id"], ts, "api"));
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Sensor '" + ref + "' deleted");
}

rest::HttpResponse sensor_logs(ServiceContext& s, Call& c) {
  Req& req = c.req;
  std::optional<Resp> refused;
  auto obj = s.find_checked(c, "sensor", "Sensor", refused);
  if (!obj) return *refused;
  const std::string stream = req.params["stream"];
  if (stream != "stdout" && stream != "stderr") {
    return error(Errc::kNotFound, "Unknown log stream '" + stream + "' (stdout or stderr)");
  }
  Resp resp;
  resp.status = 200;
  resp.content_type = "text/plain; charset=utf-8";
  if (s.sensor_status()) {
    resp.body = s.sensor_status()->log((*obj)["ref"].get<std::string>(), stream == "stdout" ? 0 : 1)
                    .value_or(std::string());
  }
  return resp;
}

}  // namespace

void register_sensor_routes(RouteTable& t, ServiceContext& s) {
  const std::string v1 = "/api/v1/sensors";
  t.add("GET", v1, Access::to("sensors", "read"), bound(s, list_sensors));
  t.add("POST", v1, Access::to("sensors", "create").on_object(), bound(s, create_sensor));
  t.add("GET", v1 + "/{ref}", Access::to("sensors", "read"), bound(s, get_sensor));
  t.add("PUT", v1 + "/{ref}", Access::to("sensors", "update"), bound(s, update_sensor));
  t.add("DELETE", v1 + "/{ref}", Access::to("sensors", "delete"), bound(s, delete_sensor));
  t.add("GET", v1 + "/{ref}/logs/{stream}", Access::to("sensors", "read"), bound(s, sensor_logs));
}

}  // namespace attune::service
