// HttpRunner: the `core.http` runtime — one HTTP request per execution, made by a child process
// (`<self_exe> http-request`) under the ProcessSupervisor, so the execution timeout, cancel,
// output limits and crash isolation are those of every other runner.
#pragma once

#include <string>

#include "runners/runner.h"

namespace attune::runners {

// prepare(): argv = {self_exe, "http-request", "--max-body-bytes", <max_output_bytes>}; the
// parameter document (credentials included) goes to the child's stdin only — never to argv, the
// environment or a file. The child's environment is PATH, HOME, LANG and the proxy variables
// (http_proxy, https_proxy, no_proxy, all_proxy, upper or lower case) of the worker.
//
// finish(): the result is the child's result document (status_code, headers, body, json,
// elapsed_ms, url, success, error; see runners/http/http_request.h) plus duration_ms, with every
// secret value and credential (auth_password, auth_token, the basic-auth base64) replaced by
// "***" in every string. Status: cancelled / timeout from the supervisor (error as in §11.5),
// else completed when success, else failed (HTTP status >= 400, transport error, bad
// parameters, or a child that produced no result document).
class HttpRunner final : public Runner {
 public:
  explicit HttpRunner(std::string self_exe);

  Result<ProcessSpec> prepare(const ActionInvocation& inv) const override;
  Outcome finish(const ActionInvocation& inv, const ProcessResult& pr) const override;

 private:
  std::string self_exe_;
};

}  // namespace attune::runners
