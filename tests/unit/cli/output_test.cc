// Table rendering and error lines of the client (api/cli/client/output.h).
#include "api/cli/client/output.h"

#include <gtest/gtest.h>

namespace attune::cli::client {
namespace {

TEST(CliOutput, TableAlignsColumnsWithoutAnsiWhenNotColoured) {
  Table t({"ID", "ACTION", "STATUS"});
  t.add_row({{"7"}, {"core.echo"}, {"completed", Style::kGreen}});
  t.add_row({{"12345"}, {"p.a"}, {"failed", Style::kRed}});
  const std::string text = t.render(false);
  EXPECT_EQ(text,
            "ID     ACTION     STATUS\n"
            "7      core.echo  completed\n"
            "12345  p.a        failed\n");
  EXPECT_EQ(text.find('\033'), std::string::npos);
}

TEST(CliOutput, ColouredTableHasBoldHeaderAndStatusColours) {
  Table t({"A", "S"});
  t.add_row({{"x"}, {"completed", status_style("completed")}});
  const std::string text = t.render(true);
  EXPECT_NE(text.find("\033[1mA\033[0m"), std::string::npos) << text;
  EXPECT_NE(text.find("\033[32mcompleted\033[0m"), std::string::npos) << text;
  // Padding is computed on visible text: "x" is followed by 2 spaces like "A".
  EXPECT_NE(text.find("x  \033[32m"), std::string::npos) << text;
}

TEST(CliOutput, UnicodeWidthAndNoTrailingSpaces) {
  Table t({"K", "V", "LAST"});
  t.add_row({{"é→"}, {""}, {""}});
  t.add_row({{"abc"}, {"v"}, {"z"}});
  EXPECT_EQ(t.render(false), "K    V  LAST\né→\nabc  v  z\n");
}

TEST(CliOutput, FieldsAlignValuesWithoutTrailingSpaces) {
  EXPECT_EQ(
      render_fields({{"ID", {"7"}}, {"Status", {"failed", Style::kRed}}, {"Empty", {""}}}, false),
      "ID:     7\nStatus: failed\nEmpty:\n");
  EXPECT_EQ(render_fields({{"S", {"failed", Style::kRed}}}, true),
            "\033[1mS:\033[0m \033[31mfailed\033[0m\n");
}

TEST(CliOutput, StatusStyles) {
  EXPECT_EQ(status_style("completed"), Style::kGreen);
  for (const char* s : {"failed", "timeout", "abandoned"}) EXPECT_EQ(status_style(s), Style::kRed);
  for (const char* s : {"running", "scheduled"}) EXPECT_EQ(status_style(s), Style::kYellow);
  EXPECT_EQ(status_style("cancelled"), Style::kDim);
  EXPECT_EQ(styled("x", Style::kRed, false), "x");
}

TEST(CliOutput, CellText) {
  EXPECT_EQ(cell_text(nullptr), "-");
  EXPECT_EQ(cell_text("a\nb"), "a b");
  EXPECT_EQ(cell_text(true), "yes");
  EXPECT_EQ(cell_text(nlohmann::json{{"a", 1}}), "{\"a\":1}");
  EXPECT_EQ(cell_text("abcdef", 4), "abc…");
}

TEST(CliOutput, ErrorLinesNameStatusCodeAndFields) {
  const nlohmann::json details = {{"fields", {{"count", "must be an integer"}}}};
  EXPECT_EQ(render_error("Validation failed", 422, "VALIDATION_ERROR", details),
            "attune: Validation failed (HTTP 422 VALIDATION_ERROR)\n  count: must be an integer\n");
  EXPECT_EQ(render_error("cannot reach x", 0, "", nullptr), "attune: cannot reach x\n");
  EXPECT_EQ(error_json("Nope", 404, "NOT_FOUND"),
            (nlohmann::json{{"error", "Nope"}, {"code", "NOT_FOUND"}, {"status", 404}}));
}

TEST(CliOutput, SafeAccessorsNeverThrow) {
  const nlohmann::json arr = nlohmann::json::array();
  EXPECT_EQ(jstr(arr, "x"), "");
  EXPECT_TRUE(jget(nullptr, "x").is_null());
  EXPECT_EQ(jstr(nlohmann::json{{"n", 5}}, "n"), "5");
}

}  // namespace
}  // namespace attune::cli::client
