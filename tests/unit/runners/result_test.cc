// make_result / execution_status_for / redact_secrets (API.md §11.5): pure, table-driven.
#include <gtest/gtest.h>

#include "runners/runner.h"

namespace attune::runners {
namespace {

ProcessResult exited(int code, std::string out = "", std::string err = "") {
  ProcessResult pr;
  pr.exit_code = code;
  pr.stdout_text = std::move(out);
  pr.stderr_text = std::move(err);
  pr.duration_ms = 42;
  pr.pid = 1234;
  return pr;
}

ActionInvocation with_format(std::string format) {
  ActionInvocation inv;
  inv.output_format = std::move(format);
  return inv;
}

TEST(MakeResultTest, TextSuccess) {
  Json r = make_result(with_format("text"), exited(0, "hi\n", "warn\n"));
  EXPECT_EQ(r,
            Json::parse(R"({"stdout":"hi\n","stderr":"warn\n","exit_code":0,"duration_ms":42})"));
}

TEST(MakeResultTest, NonZeroExitIsAFailureWithoutTimeoutWording) {
  ProcessResult pr = exited(2);
  Json r = make_result(with_format("text"), pr);
  EXPECT_EQ(r["error"], "Process exited with code 2");
  EXPECT_EQ(r["error"].get<std::string>().find("timed out"), std::string::npos);
  EXPECT_EQ(execution_status_for(pr), "failed");
  EXPECT_EQ(execution_status_for(exited(0)), "completed");
}

TEST(MakeResultTest, TimeoutKeepsPartialOutput) {
  ProcessResult pr;
  pr.timed_out = true;
  pr.term_signal = 15;
  pr.stdout_text = "partial";
  ActionInvocation inv;
  inv.timeout = std::chrono::seconds(3);
  Json r = make_result(inv, pr);
  EXPECT_EQ(r["error"], "Execution timed out after 3 seconds");
  EXPECT_TRUE(r["exit_code"].is_null());
  EXPECT_EQ(r["stdout"], "partial");
  EXPECT_EQ(execution_status_for(pr), "timeout");
  inv.timeout = std::chrono::milliseconds(200);
  EXPECT_EQ(make_result(inv, pr)["error"], "Execution timed out after 0.2 seconds");
}

TEST(MakeResultTest, CancelAndSignals) {
  ProcessResult cancelled;
  cancelled.cancelled = true;
  cancelled.term_signal = 2;
  EXPECT_EQ(execution_status_for(cancelled), "cancelled");
  cancelled.timed_out = true;  // a cancel that raced with the timeout still reads as cancelled
  EXPECT_EQ(execution_status_for(cancelled), "cancelled");

  ProcessResult killed;
  killed.term_signal = 9;
  Json r = make_result(with_format("text"), killed);
  EXPECT_TRUE(r["exit_code"].is_null());
  EXPECT_EQ(r["error"], "Process was killed by signal 9");
  EXPECT_EQ(execution_status_for(killed), "failed");
}

TEST(MakeResultTest, LaunchError) {
  ProcessResult pr;
  pr.launch_error = "cannot start 'x': No such file or directory";
  Json r = make_result(with_format("json"), pr);
  EXPECT_EQ(r["error"], pr.launch_error);
  EXPECT_TRUE(r["exit_code"].is_null());
  EXPECT_FALSE(r.contains("data"));
  EXPECT_EQ(execution_status_for(pr), "failed");
}

TEST(MakeResultTest, JsonObjectKeysGoToTopLevelWithoutOverwritingFields) {
  Json r = make_result(with_format("json"),
                       exited(0, R"({"answer":42,"stdout":"forged","exit_code":7,"error":"no"})"));
  EXPECT_EQ(r["data"]["answer"], 42);
  EXPECT_EQ(r["answer"], 42);
  EXPECT_EQ(r["stdout"].get<std::string>().substr(0, 1), "{");
  EXPECT_EQ(r["exit_code"], 0);
  EXPECT_FALSE(r.contains("error"));
  EXPECT_FALSE(r.contains("output_parse_error"));
}

TEST(MakeResultTest, JsonNonObjectStaysInData) {
  Json r = make_result(with_format("json"), exited(0, "[1,2]\n"));
  EXPECT_EQ(r["data"], Json::parse("[1,2]"));
  EXPECT_EQ(r.size(), 5u);
}

TEST(MakeResultTest, Jsonl) {
  Json r = make_result(with_format("jsonl"), exited(0, "{\"a\":1}\n\n2\n\"x\"\n"));
  EXPECT_EQ(r["data"], Json::parse(R"([{"a":1},2,"x"])"));
  Json bad = make_result(with_format("jsonl"), exited(0, "{\"a\":1}\nnope\n"));
  EXPECT_TRUE(bad["data"].is_null());
  EXPECT_EQ(bad["output_parse_error"], "line 2 is not valid JSON");
}

TEST(MakeResultTest, Yaml) {
  Json r = make_result(with_format("yaml"), exited(0, "name: x\nitems: [1, 2]\n"));
  EXPECT_EQ(r["data"], Json::parse(R"({"name":"x","items":[1,2]})"));
  EXPECT_EQ(r["name"], "x");
}

TEST(MakeResultTest, ParseErrorKeepsStatusFromExitCode) {
  ProcessResult pr = exited(0, "not json");
  Json r = make_result(with_format("json"), pr);
  EXPECT_TRUE(r.contains("data"));
  EXPECT_TRUE(r["data"].is_null());
  EXPECT_TRUE(r.contains("output_parse_error"));
  EXPECT_FALSE(r.contains("error"));
  EXPECT_EQ(execution_status_for(pr), "completed");
  EXPECT_FALSE(make_result(with_format("text"), pr).contains("data"));
}

TEST(MakeResultTest, TruncationFlags) {
  ProcessResult pr = exited(0, "abc");
  pr.stdout_truncated = true;
  Json r = make_result(with_format("text"), pr);
  EXPECT_EQ(r["stdout_truncated"], true);
  EXPECT_FALSE(r.contains("stderr_truncated"));
}

TEST(MakeResultTest, RedactsSecretsBeforeParsing) {
  ActionInvocation inv = with_format("json");
  inv.secret_values = {"hunter22", "abc"};  // "abc" is too short to redact
  Json r = make_result(inv, exited(0, R"({"token":"hunter22","abc":"abc"})", "leaked hunter22"));
  EXPECT_EQ(r["stderr"], "leaked ***");
  EXPECT_EQ(r["data"]["token"], "***");
  EXPECT_EQ(r["token"], "***");
  EXPECT_EQ(r["abc"], "abc");
  EXPECT_EQ(r.dump().find("hunter22"), std::string::npos);
}

TEST(RedactSecretsTest, LongestFirstAndCutPrefixes) {
  EXPECT_EQ(redact_secrets("pass password", {"pass", "password"}), "*** ***");
  EXPECT_EQ(redact_secrets("xx hunt", {"hunter22"}, /*truncated=*/true), "xx ***");
  EXPECT_EQ(redact_secrets("xx hunt", {"hunter22"}, /*truncated=*/false), "xx hunt");
  EXPECT_EQ(redact_secrets("", {"hunter22"}, true), "");
}

}  // namespace
}  // namespace attune::runners
