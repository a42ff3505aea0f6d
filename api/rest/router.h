// Method + path-pattern routing to Handlers. Pure (no sockets), so routes are testable directly.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/rest/http.h"

namespace attune::rest {

// Routes are registered before serving and read-only afterwards: add() is not thread-safe,
// dispatch() is const and may run concurrently from any number of threads.
//
// Patterns are '/'-separated segments; "{name}" captures one whole segment into
// HttpRequest::params[name]. Empty segments are ignored on both sides, so "/a/b/" matches
// "/a/b". At each position a literal segment is tried before a parameter, and the first
// (most literal) match that has a handler for the request's method wins; e.g. with
// "GET /actions/search" and "DELETE /actions/{ref}", "DELETE /actions/search" reaches the latter.
class Router {
 public:
  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // Registering the same method and pattern twice replaces the earlier handler.
  void add(std::string method, std::string pattern, Handler h);

  // 404 NOT_FOUND JSON if no pattern matches the path; 405 METHOD_NOT_ALLOWED JSON with an Allow
  // header if patterns match but none for this method. Handler exceptions never escape:
  // nlohmann::json exceptions ⇒ 400 BAD_REQUEST "Invalid request: <detail>" (a handler reading
  // the wrong type from a body is the client's fault); anything else ⇒ 500 INTERNAL_ERROR with a
  // generic message, the what() logged.
  HttpResponse dispatch(HttpRequest& req) const;

 private:
  struct Node;
  std::unique_ptr<Node> root_;
};

}  // namespace attune::rest
