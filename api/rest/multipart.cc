// multipart/form-data parsing (see multipart.h).
#include "api/rest/multipart.h"

#include <algorithm>
#include <cctype>

namespace attune::rest {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The value of `key=` in a header's parameters (quoted or token), or "".
std::string param(std::string_view header, std::string_view key) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t semi = header.find(';', pos);
    if (semi == std::string_view::npos) semi = header.size();
    std::string_view item = trim(header.substr(pos, semi - pos));
    pos = semi + 1;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    if (lower(trim(item.substr(0, eq))) != key) continue;
    std::string_view v = trim(item.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"') {
      // Quoted string; a quote inside may be escaped with a backslash.
      std::string out;
      for (size_t i = 1; i < v.size() && v[i] != '"'; ++i) {
        if (v[i] == '\\' && i + 1 < v.size()) ++i;
        out += v[i];
      }
      return out;
    }
    return std::string(v);
  }
  return "";
}

}  // namespace

Result<std::map<std::string, FormPart>> parse_multipart(std::string_view content_type,
                                                        std::string_view body) {
  if (lower(trim(content_type.substr(0, content_type.find(';')))) != "multipart/form-data") {
    return make_error(Errc::kBadRequest,
                      "Content-Type must be multipart/form-data (with a file field 'pack')");
  }
  const std::string boundary = param(content_type, "boundary");
  if (boundary.empty() || boundary.size() > 200) {
    return make_error(Errc::kBadRequest, "multipart/form-data without a valid boundary");
  }
  const std::string delim = "--" + boundary;
  std::map<std::string, FormPart> parts;
  size_t pos = body.find(delim);
  if (pos == std::string_view::npos) {
    return make_error(Errc::kBadRequest, "multipart body has no part (boundary not found)");
  }
  while (true) {
    pos += delim.size();
    if (body.substr(pos, 2) == "--") return parts;  // closing delimiter
    if (body.substr(pos, 2) != "\r\n") {
      return make_error(Errc::kBadRequest, "malformed multipart body (after a boundary)");
    }
    pos += 2;
    const size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) {
      return make_error(Errc::kBadRequest, "malformed multipart body (part headers)");
    }
    std::string name;
    FormPart part;
    std::string_view heads = body.substr(pos, head_end - pos);
    while (!heads.empty()) {
      size_t eol = heads.find("\r\n");
      std::string_view line = heads.substr(0, eol);
      heads = eol == std::string_view::npos ? std::string_view() : heads.substr(eol + 2);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string key = lower(trim(line.substr(0, colon)));
      const std::string_view value = trim(line.substr(colon + 1));
      if (key == "content-disposition") {
        name = param(value, "name");
        part.filename = param(value, "filename");
      } else if (key == "content-type") {
        part.content_type = std::string(value);
      }
    }
    const size_t data_start = head_end + 4;
    const size_t next = body.find("\r\n" + delim, data_start);
    if (next == std::string_view::npos) {
      return make_error(Errc::kBadRequest, "malformed multipart body (unterminated part)");
    }
    part.data = std::string(body.substr(data_start, next - data_start));
    if (!name.empty() && !parts.count(name)) parts.emplace(std::move(name), std::move(part));
    pos = next + 2;
  }
}

}  // namespace attune::rest
