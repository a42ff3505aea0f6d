// Exit-code mapping of the client (api/cli/client/errors.h) and URL helpers.
#include "api/cli/client/errors.h"

#include <gtest/gtest.h>

#include "api/cli/client/follow.h"
#include "api/cli/client/session.h"

namespace attune::cli::client {
namespace {

TEST(CliExitCodes, HttpStatuses) {
  EXPECT_EQ(exit_code_for_http_status(200), ExitCode::kOk);
  EXPECT_EQ(exit_code_for_http_status(201), ExitCode::kOk);
  EXPECT_EQ(exit_code_for_http_status(401), ExitCode::kNotLoggedIn);
  for (int s : {400, 403, 404, 409, 422, 429, 500, 503}) {
    EXPECT_EQ(exit_code_for_http_status(s), ExitCode::kApiRefused) << s;
  }
}

TEST(CliExitCodes, ExecutionStatuses) {
  struct Case {
    const char* status;
    bool terminal;
    int code;
  };
  const Case cases[] = {{"completed", true, 0},  {"failed", true, 1},     {"abandoned", true, 1},
                        {"timeout", true, 6},    {"cancelled", true, 7},  {"running", false, 0},
                        {"requested", false, 0}, {"canceling", false, 0}, {"bogus", false, 0}};
  for (const auto& c : cases) {
    const auto o = outcome_for_execution_status(c.status);
    EXPECT_EQ(o.terminal, c.terminal) << c.status;
    EXPECT_EQ(static_cast<int>(o.code), c.code) << c.status;
  }
  EXPECT_EQ(static_cast<int>(ExitCode::kUsage), 2);
  EXPECT_EQ(static_cast<int>(ExitCode::kApiRefused), 3);
  EXPECT_EQ(static_cast<int>(ExitCode::kNotLoggedIn), 4);
  EXPECT_EQ(static_cast<int>(ExitCode::kUnreachable), 5);
  EXPECT_EQ(static_cast<int>(ExitCode::kWaitGaveUp), 8);
  EXPECT_EQ(static_cast<int>(ExitCode::kInterrupted), 130);
}

TEST(CliUrls, NormalizeDeriveEncode) {
  EXPECT_EQ(normalize_url("http://h:1/"), "http://h:1");
  EXPECT_EQ(normalize_url("http://h:1/api/v1/"), "http://h:1");
  EXPECT_EQ(normalize_url("127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(derive_ws_url("http://10.0.0.5:9000"), "ws://10.0.0.5:8081/ws");
  EXPECT_EQ(derive_ws_url("https://example.com/x"), "ws://example.com:8081/ws");
  EXPECT_EQ(derive_ws_url("http://[::1]:8080"), "ws://[::1]:8081/ws");
  EXPECT_EQ(url_encode("a b/c@d.e_~"), "a%20b%2Fc%40d.e_~");
}

TEST(CliTail, ChangeLine) {
  EXPECT_EQ(change_line("T", 5, "core.echo", "running", "completed", false),
            "T  5  core.echo  running → completed");
  EXPECT_EQ(change_line("T", 5, "core.echo", "", "requested", false), "T  5  core.echo  requested");
}

}  // namespace
}  // namespace attune::cli::client
