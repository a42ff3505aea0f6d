// The web console (api/console/, built by `bash cmake/dev.sh build`): its index.html at `/` and
// its files at `/assets/<file>`, read once at start from ServiceOptions::console_dir. The console
// is a client of the public API like any other; these routes serve files only.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "api/service/service.h"

namespace attune::service {
namespace {

struct StaticFile {
  std::string content_type;
  std::string body;
};

std::string content_type_of(const std::filesystem::path& path) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
  };
  const auto it = kTypes.find(path.extension().string());
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

std::optional<std::string> read_whole(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

rest::HttpResponse serve(const StaticFile& file) {
  rest::HttpResponse r;
  r.status = 200;
  r.content_type = file.content_type;
  r.body = file.body;
  // File names are not content-hashed: revalidate, so a rebuilt console is seen at once.
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

constexpr const char* kNotBuilt =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Attune</title></head>"
    "<body><h1>Attune</h1><p>The web console is not built on this server. Build it with "
    "<code>bash cmake/dev.sh build</code> (needs Debian's <code>nodejs</code> and "
    "<code>npm</code>; see the README), or point <code>attune serve --console-dir</code> at a "
    "built console. The REST API is at <code>/api/v1</code>, health at "
    "<code>/health</code>.</p></body></html>";

}  // namespace

void register_console_routes(RouteTable& t, ServiceContext& s) {
  namespace fs = std::filesystem;
  auto index = std::make_shared<std::optional<StaticFile>>();
  auto assets = std::make_shared<std::map<std::string, StaticFile, std::less<>>>();
  const fs::path dir = s.options.console_dir;
  std::error_code ec;
  if (!dir.empty() && fs::is_regular_file(dir / "index.html", ec)) {
    if (auto body = read_whole(dir / "index.html")) {
      *index = StaticFile{content_type_of("index.html"), std::move(*body)};
    }
    for (fs::directory_iterator it(dir / "assets", ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      if (auto body = read_whole(it->path())) {
        (*assets)[it->path().filename().string()] =
            StaticFile{content_type_of(it->path()), std::move(*body)};
      }
    }
    spdlog::info("web console: {} ({} assets)", dir.string(), assets->size());
  } else {
    spdlog::info("web console: not built (no {}); / explains how to build it",
                 (dir / "index.html").string());
  }

  const auto root = [index](Call&) {
    if (*index) return serve(**index);
    rest::HttpResponse r;
    r.status = 404;
    r.content_type = "text/html; charset=utf-8";
    r.body = kNotBuilt;
    return r;
  };
  t.add("GET", "/", Access::open(), root);
  t.add("GET", "/index.html", Access::open(), root);
  t.add("GET", "/assets/{file}", Access::open(), [assets](Call& c) {
    const auto it = assets->find(c.req.params["file"]);
    if (it == assets->end()) {
      return rest::HttpResponse::error(404, "NOT_FOUND", "No such console file");
    }
    return serve(it->second);
  });
}

}  // namespace attune::service
