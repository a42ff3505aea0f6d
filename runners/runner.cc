// Execution results (API.md §11.5) built from process results.
#include "runners/runner.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "runners/formats.h"

namespace attune::runners {
namespace {

constexpr size_t kMinSecretLength = 4;
constexpr std::array<std::string_view, 9> kResultFields = {
    "stdout", "stderr",           "exit_code",       "duration_ms", "data", "output_parse_error",
    "error",  "stdout_truncated", "stderr_truncated"};

std::string format_seconds(std::chrono::milliseconds timeout) {
  const auto ms = timeout.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000);
  std::string s = std::to_string(ms / 1000) + "." + std::to_string(1000 + ms % 1000).substr(1);
  while (s.back() == '0') s.pop_back();
  return s;
}

// Parses stdout per output_format into result["data"] (or output_parse_error).
void parse_output(const std::string& format, const std::string& text, Json& result) {
  if (format == "json") {
    Json data = Json::parse(text, nullptr, false);
    if (data.is_discarded()) {
      result["data"] = nullptr;
      result["output_parse_error"] = text.find_first_not_of(" \t\r\n") == std::string::npos
                                         ? "no JSON output"
                                         : "stdout is not valid JSON";
      return;
    }
    result["data"] = std::move(data);
  } else if (format == "yaml") {
    auto data = parse_yaml(text);
    if (!data.ok()) {
      result["data"] = nullptr;
      result["output_parse_error"] = data.error().message;
      return;
    }
    result["data"] = std::move(*data);
  } else if (format == "jsonl") {
    Json lines = Json::array();
    size_t begin = 0, line_no = 0;
    while (begin < text.size()) {
      size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      const std::string_view line(text.data() + begin, end - begin);
      ++line_no;
      begin = end + 1;
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      Json item = Json::parse(line, nullptr, false);
      if (item.is_discarded()) {
        result["data"] = nullptr;
        result["output_parse_error"] = "line " + std::to_string(line_no) + " is not valid JSON";
        return;
      }
      lines.push_back(std::move(item));
    }
    result["data"] = std::move(lines);
  } else {
    return;  // text (or unknown: nothing to parse)
  }
  const Json& data = result["data"];
  if (!data.is_object()) return;
  for (const auto& [k, v] : data.items()) {
    const bool reserved =
        std::find(kResultFields.begin(), kResultFields.end(), k) != kResultFields.end();
    if (!reserved) result[k] = v;
  }
}

}  // namespace

std::string redact_secrets(std::string text, const std::vector<std::string>& secrets,
                           bool truncated) {
  std::vector<const std::string*> sorted;
  for (const auto& s : secrets) {
    if (s.size() >= kMinSecretLength) sorted.push_back(&s);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
  for (const std::string* secret : sorted) {
    size_t pos = 0;
    while ((pos = text.find(*secret, pos)) != std::string::npos) {
      text.replace(pos, secret->size(), "***");
      pos += 3;
    }
  }
  if (truncated) {
    for (const std::string* secret : sorted) {
      for (size_t len = std::min(secret->size() - 1, text.size()); len > 0; --len) {
        if (text.compare(text.size() - len, len, *secret, 0, len) == 0) {
          text.replace(text.size() - len, len, "***");
          break;
        }
      }
    }
  }
  return text;
}

Json make_result(const ActionInvocation& inv, const ProcessResult& pr) {
  Json result = Json::object();
  result["stdout"] = redact_secrets(pr.stdout_text, inv.secret_values, pr.stdout_truncated);
  result["stderr"] = redact_secrets(pr.stderr_text, inv.secret_values, pr.stderr_truncated);
  result["exit_code"] = pr.exit_code ? Json(*pr.exit_code) : Json(nullptr);
  result["duration_ms"] = pr.duration_ms;
  if (pr.stdout_truncated) result["stdout_truncated"] = true;
  if (pr.stderr_truncated) result["stderr_truncated"] = true;

  if (!pr.launch_error.empty()) {
    result["error"] = redact_secrets(pr.launch_error, inv.secret_values);
    return result;
  }
  parse_output(inv.output_format, result["stdout"].get<std::string>(), result);

  if (pr.cancelled) {
    result["error"] = "Execution was cancelled";
  } else if (pr.timed_out) {
    result["error"] = "Execution timed out after " + format_seconds(inv.timeout) + " seconds";
  } else if (pr.exit_code && *pr.exit_code != 0) {
    result["error"] = "Process exited with code " + std::to_string(*pr.exit_code);
  } else if (!pr.exit_code) {
    result["error"] = "Process was killed by signal " + std::to_string(pr.term_signal);
  }
  return result;
}

std::string execution_status_for(const ProcessResult& pr) {
  if (pr.cancelled) return "cancelled";
  if (pr.timed_out) return "timeout";
  if (!pr.launch_error.empty()) return "failed";
  return pr.exit_code && *pr.exit_code == 0 ? "completed" : "failed";
}

Outcome Runner::finish(const ActionInvocation& inv, const ProcessResult& pr) const {
  return Outcome{execution_status_for(pr), make_result(inv, pr)};
}

void RunnerSet::add(std::string runtime_ref, std::shared_ptr<const Runner> runner) {
  runners_[std::move(runtime_ref)] = std::move(runner);
}

const Runner* RunnerSet::find(std::string_view runtime_ref) const {
  auto it = runners_.find(canonical_runtime(runtime_ref));
  return it == runners_.end() ? nullptr : it->second.get();
}

std::string canonical_runtime(std::string_view name) {
  if (name.empty() || name == "core.shell" || name == "shell" || name == "core.action.shell" ||
      name == "sh" || name == "bash") {
    return "core.shell";
  }
  if (name == "core.python" || name == "python" || name == "python3" ||
      name == "core.action.python3") {
    return "core.python";
  }
  if (name == "core.nodejs" || name == "nodejs" || name == "node" ||
      name == "core.action.nodejs") {
    return "core.nodejs";
  }
  if (name == "core.native" || name == "native") return "core.native";
  if (name == "core.http" || name == "http") return "core.http";
  if (name == "core.container" || name == "container") return "core.container";
  return "";
}

}  // namespace attune::runners
