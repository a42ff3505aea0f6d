// Segment-trie router with literal-before-parameter precedence and exception containment.
#include "api/rest/router.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <set>
#include <string_view>

namespace attune::rest {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (end > pos) out.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

bool is_param(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

struct Router::Node {
  struct Route {
    Handler handler;
    std::vector<std::string> param_names;  // in path order
  };
  std::map<std::string, std::unique_ptr<Node>, std::less<>> literals;
  std::unique_ptr<Node> param;
  std::map<std::string, Route> methods;
};

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

void Router::add(std::string method, std::string pattern, Handler h) {
  Node* node = root_.get();
  std::vector<std::string> names;
  for (const std::string_view segment : split_path(pattern)) {
    if (is_param(segment)) {
      names.emplace_back(segment.substr(1, segment.size() - 2));
      if (!node->param) node->param = std::make_unique<Node>();
      node = node->param.get();
    } else {
      auto& child = node->literals[std::string(segment)];
      if (!child) child = std::make_unique<Node>();
      node = child.get();
    }
  }
  node->methods[std::move(method)] = Node::Route{std::move(h), std::move(names)};
}

HttpResponse Router::dispatch(HttpRequest& req) const {
  const std::vector<std::string_view> segments = split_path(req.path);

  // Depth-first, literal child before parameter child: collects every node whose pattern
  // matches the whole path, most literal first, with the captured segments of each.
  struct Match {
    const Node* node;
    std::vector<std::string_view> captures;
  };
  std::vector<Match> matches;
  std::vector<std::string_view> captures;
  const auto walk = [&](const auto& self, const Node* node, size_t depth) -> void {
    if (depth == segments.size()) {
      if (!node->methods.empty()) matches.push_back(Match{node, captures});
      return;
    }
    if (const auto it = node->literals.find(segments[depth]); it != node->literals.end()) {
      self(self, it->second.get(), depth + 1);
    }
    if (node->param) {
      captures.push_back(segments[depth]);
      self(self, node->param.get(), depth + 1);
      captures.pop_back();
    }
  };
  walk(walk, root_.get(), 0);

  if (matches.empty()) {
    return HttpResponse::error(404, "NOT_FOUND", "Route not found: " + req.method + " " + req.path);
  }
  for (const Match& m : matches) {
    const auto route = m.node->methods.find(req.method);
    if (route == m.node->methods.end()) continue;
    for (size_t i = 0; i < route->second.param_names.size(); ++i) {
      req.params[route->second.param_names[i]] = std::string(m.captures[i]);
    }
    try {
      return route->second.handler(req);
    } catch (const Json::exception& e) {
      return HttpResponse::error(400, "BAD_REQUEST",
                                 "Invalid request: " + json_error_detail(e.what()));
    } catch (const std::exception& e) {
      spdlog::error("handler for {} {} threw: {}", req.method, req.path, e.what());
    } catch (...) {
      spdlog::error("handler for {} {} threw a non-standard exception", req.method, req.path);
    }
    return HttpResponse::error(500, "INTERNAL_ERROR", "Internal server error");
  }

  std::set<std::string> allowed;
  for (const Match& m : matches) {
    for (const auto& [method, route] : m.node->methods) allowed.insert(method);
  }
  std::string allow;
  for (const std::string& method : allowed) {
    if (!allow.empty()) allow += ", ";
    allow += method;
  }
  HttpResponse r = HttpResponse::error(
      405, "METHOD_NOT_ALLOWED", "Method " + req.method + " not allowed for " + req.path);
  r.headers.emplace_back("Allow", allow);
  return r;
}

}  // namespace attune::rest
