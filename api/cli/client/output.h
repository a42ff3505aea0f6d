// Human output of the `attune` client: aligned tables, status colours, key/value blocks, error
// lines. Colour (ANSI) only when the caller says so — commands decide from isatty + --no-color +
// NO_COLOR (see OutputOptions) — so everything here is a pure function of its inputs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace attune::cli::client {

enum class Style { kNone, kBold, kGreen, kRed, kYellow, kDim };

// The style of an execution/inquiry/enforcement status word: completed green, failed/timeout/
// abandoned red, running/scheduled yellow (and the other in-flight statuses), cancelled dim.
Style status_style(std::string_view status);

// `text` wrapped in the style's ANSI codes when `color`, else unchanged.
std::string styled(std::string_view text, Style style, bool color);

struct Cell {
  std::string text;
  Style style = Style::kNone;
};

// Columns are left-aligned and separated by two spaces; widths count UTF-8 code points; the last
// column is not padded. The header row is bold when `color`. No trailing spaces.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void add_row(std::vector<Cell> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }
  std::string render(bool color) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<Cell>> rows_;
};

// Display width of UTF-8 text (code points; good enough for the ASCII-heavy data we show).
size_t display_width(std::string_view text);

// A JSON value as one table cell: strings unquoted, null as "-", others compact JSON, cut to
// `max` code points with "…".
std::string cell_text(const nlohmann::json& v, size_t max = 60);

// "key: value" lines with keys padded to the longest.
std::string render_fields(const std::vector<std::pair<std::string, Cell>>& fields, bool color);

// The error lines for stderr: `attune: <message> (HTTP <status> <CODE>)` then one
// `  <field>: <message>` line per details.fields entry. `http_status` 0 ⇒ just `attune: <message>`.
std::string render_error(std::string_view message, int http_status, std::string_view code,
                         const nlohmann::json& details);

// The --json form of an error: {"error", "code", "status"}.
nlohmann::json error_json(std::string_view message, int http_status, std::string_view code);

// Safe accessors for server data (never throw on a missing member or a wrong type).
std::string jstr(const nlohmann::json& obj, std::string_view key);            // "" when absent/null
const nlohmann::json& jget(const nlohmann::json& obj, std::string_view key);  // null when absent

}  // namespace attune::cli::client
