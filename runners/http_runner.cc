// The core.http runtime: an `http-request` child per execution, its result document reported.
#include "runners/http_runner.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "runners/http/http_request.h"

namespace attune::runners {
namespace {

// Variables of the worker's environment the request child inherits: where it finds programs and
// home, and how it reaches the network (proxies, CA bundles).
constexpr const char* kInherited[] = {
    "PATH",          "HOME",         "http_proxy",    "HTTP_PROXY", "https_proxy",
    "HTTPS_PROXY",   "no_proxy",     "NO_PROXY",      "all_proxy",  "ALL_PROXY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE"};

// Room for the result document: the body may grow 6x when escaped as JSON (\u00XX), plus the
// headers and fields.
size_t document_limit(size_t max_body_bytes) {
  constexpr size_t kOverhead = 256 * 1024;
  const size_t cap = std::numeric_limits<size_t>::max() / 8;
  return std::min(max_body_bytes, cap) * 6 + kOverhead;
}

void redact_strings(Json& value, const std::vector<std::string>& secrets) {
  if (value.is_string()) {
    value = redact_secrets(value.get<std::string>(), secrets);
  } else if (value.is_array()) {
    for (auto& item : value) redact_strings(item, secrets);
  } else if (value.is_object()) {
    for (auto& [k, item] : value.items()) redact_strings(item, secrets);
  }
}

}  // namespace

HttpRunner::HttpRunner(std::string self_exe) : self_exe_(std::move(self_exe)) {}

Result<ProcessSpec> HttpRunner::prepare(const ActionInvocation& inv) const {
  if (self_exe_.empty()) {
    return make_error(Errc::kUnavailable, "the http runner needs the attune binary's path");
  }
  if (!inv.parameters.is_object()) {
    return make_error(Errc::kBadRequest, "the parameters of an http action must be an object");
  }
  ProcessSpec spec;
  spec.argv = {self_exe_, "http-request", "--max-body-bytes",
               std::to_string(std::max<size_t>(1, inv.max_output_bytes))};
  for (const char* name : kInherited) {
    if (const char* v = std::getenv(name)) spec.env.push_back(std::string(name) + "=" + v);
  }
  spec.env.push_back("LANG=C.UTF-8");
  spec.stdin_data = inv.parameters.dump(-1, ' ', false, Json::error_handler_t::replace);
  spec.timeout = inv.timeout;
  spec.max_output_bytes = document_limit(inv.max_output_bytes);
  return spec;
}

Outcome HttpRunner::finish(const ActionInvocation& inv, const ProcessResult& pr) const {
  std::vector<std::string> secrets = inv.secret_values;
  for (auto& c : http::credentials_of(inv.parameters)) secrets.push_back(std::move(c));

  // The generic result supplies the §11.5 error texts (launch error, timeout, cancel, exit code).
  ActionInvocation text = inv;
  text.output_format = "text";
  text.secret_values = secrets;
  const Json generic = make_result(text, pr);

  Json result = Json::object();
  std::string status = execution_status_for(pr);
  if (pr.launch_error.empty()) {
    Json doc = pr.stdout_truncated ? Json() : Json::parse(pr.stdout_text, nullptr, false);
    if (doc.is_object()) {
      result = std::move(doc);
      if (status == "completed" && !result.value("success", false)) status = "failed";
    } else {
      result["success"] = false;
      result["error"] = pr.stdout_truncated
                            ? "the request's result document exceeded its output limit"
                            : "the request process produced no result document";
      if (status == "completed") status = "failed";
    }
    if (!pr.stderr_text.empty()) result["stderr"] = pr.stderr_text;
  } else {
    result["success"] = false;
  }
  // A timeout, cancel or crash of the child explains the end better than a partial document.
  if (status == "timeout" || status == "cancelled" || !pr.launch_error.empty() ||
      result.value("error", Json()).is_null()) {
    if (generic.contains("error")) result["error"] = generic["error"];
  }
  if (!result.contains("error")) result["error"] = nullptr;
  result["duration_ms"] = pr.duration_ms;
  redact_strings(result, secrets);
  return Outcome{std::move(status), std::move(result)};
}

}  // namespace attune::runners
