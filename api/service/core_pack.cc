#include "api/service/core_pack.h"

#include "runners/runner.h"

namespace attune::service {

namespace {

Json base(IdGenerator& ids, const std::string& now, const std::string& ref) {
  return Json{{"id", ids.next()}, {"ref", ref}, {"created", now}, {"updated", now}};
}

}  // namespace

std::string canonical_runtime(std::string_view name) {
  return runners::canonical_runtime(name);
}

std::vector<std::pair<std::string, Json>> core_pack_objects(IdGenerator& ids,
                                                            const std::string& now) {
  std::vector<std::pair<std::string, Json>> out;
  Json pack = base(ids, now, "core");
  pack.update(Json{{"label", "Core"},
                   {"description", "Built-in actions, triggers and runtimes"},
                   {"version", "1.0.0"},
                   {"conf_schema", Json::object()},
                   {"config", Json::object()},
                   {"meta", Json::object()},
                   {"tags", Json::array({"core"})},
                   {"runtime_deps", Json::array()},
                   {"dependencies", Json::array()},
                   {"is_standard", true},
                   {"owner_identity", nullptr},
                   {"installation_method", "register"},
                   {"storage_path", nullptr},
                   {"installed_at", now}});
  const int64_t pack_id = pack["id"];
  out.emplace_back("pack", pack);

  struct RuntimeDef {
    const char* ref;
    const char* name;
    Json aliases;
  };
  std::map<std::string, int64_t> runtime_ids;
  for (const auto& rt : {RuntimeDef{"core.shell", "Shell", {"shell", "core.action.shell"}},
                         RuntimeDef{"core.python", "Python", {"python3", "core.action.python3"}},
                         RuntimeDef{"core.nodejs", "Node.js", {"nodejs", "core.action.nodejs"}},
                         RuntimeDef{"core.native", "Native", {"native"}},
                         RuntimeDef{"core.http", "HTTP", {"http"}},
                         RuntimeDef{"core.container", "Container", {"container"}}}) {
    Json r = base(ids, now, rt.ref);
    r.update(Json{{"pack_ref", "core"},
                  {"name", rt.name},
                  {"description", std::string(rt.name) + " actions"},
                  {"aliases", rt.aliases},
                  {"execution_config", Json::object()},
                  {"versions", Json::array()}});
    runtime_ids[rt.ref] = r["id"];
    out.emplace_back("runtime", r);
  }

  struct ActionDef {
    const char* name;
    const char* label;
    const char* description;
    const char* entrypoint;
    Json params;
  };
  for (const auto& a : {
           ActionDef{"echo", "Echo", "Prints the message to stdout", "echo \"$message\"",
                     {{"message", {{"type", "string"}, {"default", ""},
                                   {"description", "Text to print"}}}}},
           ActionDef{"noop", "No operation", "Does nothing and succeeds", "true", Json::object()},
           ActionDef{"sleep", "Sleep", "Waits for the given number of seconds",
                     "sleep \"$seconds\"",
                     {{"seconds", {{"type", "number"}, {"default", 1}, {"minimum", 0},
                                   {"description", "Seconds to wait"}}}}},
           ActionDef{"local", "Local command", "Runs a shell command line", "eval \"$cmd\"",
                     {{"cmd", {{"type", "string"}, {"required", true},
                               {"description", "Command line for /bin/sh"}}}}},
       }) {
    Json act = base(ids, now, std::string("core.") + a.name);
    act.update(Json{{"pack", pack_id},
                    {"pack_ref", "core"},
                    {"label", a.label},
                    {"description", a.description},
                    {"entrypoint", a.entrypoint},
                    {"runtime", runtime_ids["core.shell"]},
                    {"runtime_ref", "core.shell"},
                    {"runtime_version_constraint", nullptr},
                    {"enabled", true},
                    {"param_schema", a.params},
                    {"out_schema", Json::object()},
                    {"workflow_def", nullptr},
                    {"is_adhoc", false},
                    {"default_execution_permission_set_refs", Json::array()},
                    {"reference_visibility", "public"},
                    {"reference_allowed_pack_refs", Json::array()},
                    {"timeout_seconds", nullptr},
                    {"parameter_delivery", "stdin"},
                    {"parameter_format", "json"},
                    {"output_format", "text"},
                    {"max_output_bytes", 1048576},
                    {"max_retries", 0}});
    out.emplace_back("action", act);
  }

  const Json tz = {{"type", "string"}, {"default", "UTC"}, {"description", "IANA time zone"}};
  // Our extension (README "Timers and sensors"): what happens to ticks missed while down.
  const Json catch_up = {{"type", "string"},
                         {"enum", {"none", "last", "all"}},
                         {"default", "last"},
                         {"description", "Ticks missed while the platform was down: none, the last, all"}};
  Json timer_sensor = base(ids, now, "core.timer_sensor");
  timer_sensor.update(Json{{"pack", pack_id},
                           {"pack_ref", "core"},
                           {"label", "Timer sensor"},
                           {"description", "Built-in: the sensor stage fires the core timers"},
                           {"entrypoint", "builtin:timers"},
                           {"runtime", runtime_ids["core.native"]},
                           {"runtime_ref", "core.native"},
                           {"enabled", true},
                           {"builtin", true},
                           {"param_schema", Json::object()},
                           {"config", Json::object()},
                           {"trigger_types", {"core.intervaltimer", "core.crontimer",
                                              "core.datetimetimer", "core.rruletimer"}}});
  const int64_t timer_sensor_id = timer_sensor["id"];
  out.emplace_back("sensor", timer_sensor);
  struct TriggerDef {
    const char* name;
    const char* label;
    const char* description;
    Json params;
  };
  for (const auto& t : {
           TriggerDef{"webhook", "Webhook", "Fired by POST /api/v1/webhooks/{key}", Json::object()},
           TriggerDef{"intervaltimer", "Interval timer", "Fires every N units",
                      {{"unit", {{"type", "string"}, {"enum", {"seconds", "minutes", "hours"}},
                                 {"default", "seconds"}}},
                       {"interval", {{"type", "integer"}, {"required", true}, {"minimum", 1}}},
                       {"catch_up", catch_up}}},
           TriggerDef{"crontimer", "Cron timer", "Fires on a cron schedule (6 or 5 fields)",
                      {{"expression", {{"type", "string"}, {"required", true}}}, {"timezone", tz},
                       {"catch_up", catch_up}}},
           TriggerDef{"datetimetimer", "Date timer", "Fires once at a date and time",
                      {{"fire_at", {{"type", "string"}, {"required", true}}}, {"timezone", tz},
                       {"catch_up", catch_up}}},
           TriggerDef{"rruletimer", "Recurrence timer", "Fires on an RFC 5545 recurrence rule",
                      {{"rrule", {{"type", "string"}, {"required", true}}}, {"timezone", tz},
                       {"catch_up", catch_up}}},
       }) {
    Json trig = base(ids, now, std::string("core.") + t.name);
    trig.update(Json{{"pack", pack_id},
                     {"pack_ref", "core"},
                     {"label", t.label},
                     {"description", t.description},
                     {"enabled", true},
                     {"param_schema", t.params},
                     {"out_schema", Json::object()},
                     {"webhook_enabled", false},
                     {"webhook_key", nullptr},
                     {"webhook_config", Json::object()},
                     {"sensor", std::string(t.name) == "webhook" ? Json(nullptr)
                                                                  : Json(timer_sensor_id)},
                     {"sensor_ref", std::string(t.name) == "webhook" ? Json(nullptr)
                                                                      : Json("core.timer_sensor")},
                     {"is_adhoc", false},
                     {"reference_visibility", "public"},
                     {"reference_allowed_pack_refs", Json::array()}});
    out.emplace_back("trigger", trig);
  }
  return out;
}

}  // namespace attune::service
