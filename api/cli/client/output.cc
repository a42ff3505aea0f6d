#include "api/cli/client/output.h"

#include <algorithm>

namespace attune::cli::client {

Style status_style(std::string_view s) {
  if (s == "completed" || s == "responded" || s == "processed" || s == "active") {
    return Style::kGreen;
  }
  if (s == "failed" || s == "timeout" || s == "abandoned" || s == "error") return Style::kRed;
  if (s == "running" || s == "scheduled" || s == "scheduling" || s == "requested" ||
      s == "canceling" || s == "pending" || s == "busy") {
    return Style::kYellow;
  }
  if (s == "cancelled" || s == "disabled" || s == "inactive") return Style::kDim;
  return Style::kNone;
}

std::string styled(std::string_view text, Style style, bool color) {
  if (!color || style == Style::kNone) return std::string(text);
  const char* code = "";
  switch (style) {
    case Style::kNone:
      return std::string(text);
    case Style::kBold:
      code = "\033[1m";
      break;
    case Style::kGreen:
      code = "\033[32m";
      break;
    case Style::kRed:
      code = "\033[31m";
      break;
    case Style::kYellow:
      code = "\033[33m";
      break;
    case Style::kDim:
      code = "\033[2m";
      break;
  }
  return std::string(code) + std::string(text) + "\033[0m";
}

size_t display_width(std::string_view text) {
  size_t n = 0;
  for (const unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++n;  // count lead bytes only
  }
  return n;
}

namespace {

std::string cut(std::string text, size_t max) {
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (display_width(text) <= max) return text;
  size_t count = 0, i = 0;
  for (; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (count == max - 1) break;
      ++count;
    }
  }
  return text.substr(0, i) + "…";
}

}  // namespace

std::string cell_text(const nlohmann::json& v, size_t max) {
  if (v.is_null()) return "-";
  if (v.is_string()) return cut(v.get<std::string>(), max);
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  return cut(v.dump(), max);
}

std::string Table::render(bool color) const {
  const size_t cols = headers_.size();
  std::vector<size_t> width(cols, 0);
  for (size_t c = 0; c < cols; ++c) width[c] = display_width(headers_[c]);
  for (const auto& row : rows_) {
    for (size_t c = 0; c < cols && c < row.size(); ++c) {
      width[c] = std::max(width[c], display_width(row[c].text));
    }
  }
  std::string out;
  auto emit = [&](const std::vector<Cell>& row) {
    std::string line;
    for (size_t c = 0; c < cols; ++c) {
      const Cell empty;
      const Cell& cell = c < row.size() ? row[c] : empty;
      line += styled(cell.text, cell.style, color);
      if (c + 1 < cols) line += std::string(width[c] - display_width(cell.text) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  std::vector<Cell> header;
  for (const auto& h : headers_) header.push_back(Cell{h, Style::kBold});
  emit(header);
  for (const auto& row : rows_) emit(row);
  return out;
}

std::string render_fields(const std::vector<std::pair<std::string, Cell>>& fields, bool color) {
  size_t w = 0;
  for (const auto& [k, v] : fields) w = std::max(w, display_width(k));
  std::string out;
  for (const auto& [k, v] : fields) {
    std::string line = styled(k + ":", Style::kBold, color);
    if (!v.text.empty()) {
      line += std::string(w - display_width(k) + 1, ' ') + styled(v.text, v.style, color);
    }
    out += line + "\n";
  }
  return out;
}

std::string render_error(std::string_view message, int http_status, std::string_view code,
                         const nlohmann::json& details) {
  std::string out = "attune: " + std::string(message);
  if (http_status != 0) {
    out += " (HTTP " + std::to_string(http_status);
    if (!code.empty()) out += " " + std::string(code);
    out += ")";
  }
  out += "\n";
  const auto& fields = jget(details, "fields");
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.items()) {
      out += "  " + k + ": " + (v.is_string() ? v.get<std::string>() : v.dump()) + "\n";
    }
  }
  return out;
}

nlohmann::json error_json(std::string_view message, int http_status, std::string_view code) {
  return {{"error", std::string(message)},
          {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(std::string(code))},
          {"status", http_status == 0 ? nlohmann::json(nullptr) : nlohmann::json(http_status)}};
}

const nlohmann::json& jget(const nlohmann::json& obj, std::string_view key) {
  static const nlohmann::json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(std::string(key));
  return it == obj.end() ? kNull : *it;
}

std::string jstr(const nlohmann::json& obj, std::string_view key) {
  const auto& v = jget(obj, key);
  if (v.is_null()) return {};
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

}  // namespace attune::cli::client
