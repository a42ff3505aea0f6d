// Worker helpers: invocations, in-flight records, result records.
#include "processors/worker/invocation.h"

#include "topology/core/time.h"
#include "topology/log.h"

namespace attune::worker {
namespace {

std::string str(const Json& o, const char* name, std::string fallback = {}) {
  auto it = o.find(name);
  return it != o.end() && it->is_string() && !it->get_ref<const std::string&>().empty()
             ? it->get<std::string>()
             : fallback;
}

// A positive number field, or nullopt.
std::optional<double> positive(const Json& o, const char* name) {
  auto it = o.find(name);
  if (it == o.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  return v > 0 ? std::optional<double>(v) : std::nullopt;
}

}  // namespace

bool is_shell_runtime(std::string_view runtime_ref) {
  return runtime_ref.empty() || runtime_ref == "core.shell" || runtime_ref == "shell" ||
         runtime_ref == "core.action.shell";
}

Result<Dispatch> parse_dispatch(const Json& payload, int64_t fallback_id) {
  if (!payload.is_object())
    return make_error(Errc::kValidation, "dispatch payload is not an object");
  Dispatch d;
  d.execution = payload.value("execution", Json());
  d.action = payload.value("action", Json());
  if (!d.execution.is_object()) {
    return make_error(Errc::kValidation, "dispatch has no execution object");
  }
  if (!d.action.is_object()) return make_error(Errc::kValidation, "dispatch has no action object");
  d.id = d.execution.value("id", fallback_id);
  if (d.id <= 0) return make_error(Errc::kValidation, "dispatch execution has no positive id");
  auto attempt = payload.find("attempt");
  if (attempt == payload.end() || !attempt->is_number_integer() || attempt->get<int64_t>() < 1) {
    return make_error(Errc::kValidation, "dispatch has no positive attempt");
  }
  d.attempt = attempt->get<int64_t>();
  auto root = payload.find("root");
  d.root = root != payload.end() && root->is_number_integer() ? root->get<int64_t>() : d.id;
  return d;
}

runners::ActionInvocation build_invocation(const Dispatch& d, const std::string& api_url,
                                           int64_t default_timeout_seconds) {
  runners::ActionInvocation inv;
  const Json& ex = d.execution;
  const Json& action = d.action;
  inv.execution_id = d.id;
  inv.attempt = d.attempt;
  inv.action_ref = str(ex, "action_ref", str(action, "ref"));
  inv.pack_ref = str(ex, "pack_ref", str(action, "pack_ref"));
  inv.rule_ref = str(ex, "rule_ref");
  inv.trigger_ref = str(ex, "trigger_ref");
  inv.runtime_ref = str(action, "runtime_ref", "core.shell");
  inv.entrypoint = str(action, "entrypoint");
  inv.action = action;
  if (auto it = ex.find("config"); it != ex.end() && it->is_object()) inv.parameters = *it;
  if (auto it = ex.find("env_vars"); it != ex.end() && it->is_object()) {
    for (const auto& [k, v] : it->items())
      inv.env_vars[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  inv.api_url = api_url;
  inv.parameter_delivery = str(action, "parameter_delivery", "stdin");
  inv.parameter_format = str(action, "parameter_format", "json");
  inv.output_format = str(action, "output_format", "text");
  const double seconds = positive(ex, "timeout_seconds")
                             .value_or(positive(action, "timeout_seconds")
                                           .value_or(static_cast<double>(default_timeout_seconds)));
  inv.timeout = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  if (auto max = positive(action, "max_output_bytes"))
    inv.max_output_bytes = static_cast<size_t>(*max);
  return inv;
}

std::string InFlight::dump() const {
  return Json{{"id", id},     {"attempt", attempt},
              {"root", root}, {"started_at", started_at_ms},
              {"pid", pid},   {"cancel", cancel_requested}}
      .dump();
}

std::optional<InFlight> InFlight::parse(std::string_view text) {
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  InFlight f;
  f.id = j.value("id", int64_t{0});
  f.attempt = j.value("attempt", int64_t{0});
  f.root = j.value("root", f.id);
  f.started_at_ms = j.value("started_at", int64_t{0});
  f.pid = j.value("pid", 0);
  f.cancel_requested = j.value("cancel", false);
  return f;
}

std::string attempt_key(int64_t id, int64_t attempt) {
  return std::to_string(id) + "/" + std::to_string(attempt);
}

OutRecord running_record(const InFlight& f, const std::string& worker, int64_t now_ms) {
  Envelope e{"result.running",
             f.id,
             "running:" + attempt_key(f.id, f.attempt),
             now_ms,
             "worker",
             Json{{"id", f.id},
                  {"attempt", f.attempt},
                  {"worker", worker},
                  {"started_at", format_rfc3339_ms(f.started_at_ms)},
                  {"pid", f.pid > 0 ? Json(f.pid) : Json(nullptr)}}};
  return make_record(topics::kResults, std::to_string(f.root), std::move(e));
}

OutRecord finished_record(int64_t id, int64_t attempt, int64_t root, const std::string& worker,
                          std::string_view status, Json result, int64_t now_ms) {
  Envelope e{"result.finished",
             id,
             "finished:" + attempt_key(id, attempt),
             now_ms,
             "worker",
             Json{{"id", id},
                  {"attempt", attempt},
                  {"worker", worker},
                  {"status", status},
                  {"result", std::move(result)},
                  {"finished_at", format_rfc3339_ms(now_ms)}}};
  return make_record(topics::kResults, std::to_string(root), std::move(e));
}

}  // namespace attune::worker
