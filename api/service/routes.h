// Where every REST route declares who may call it (API.md §4, §16). A route is registered with
// an Access; there is no way to register one without (RouteTable::add requires it, and Access
// has no default). The declaration is enforced before the handler runs:
//
//   Access::open()           no token (health, login, webhook receipt) — said explicitly
//   Access::signed_in()      any valid token; the handler's answer depends only on the caller
//                            (/auth/me)
//   Access::to(res, action)  a valid token; on a collection route (no path parameter) and for
//                            every action but `read`, a grant of res:action with some
//                            constraints (else 403 before any work). Routes of one object
//                            ({ref}, {id}, or .on_object(): named in the body) decide on the
//                            object they resolve, so that an invisible one answers 404
//                            whatever the grants: the handler asks
//                            Call::check*() (invisible ⇒ 404, visible but not permitted ⇒ 403)
//                            or, for objects without visibility (identities, permission sets
//                            and assignments), Call::require_grant().
//
// `routes()` lists every declaration, so the whole access table can be read (and is tested) in
// one place.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/authz/authz.h"
#include "api/rest/http.h"
#include "api/rest/router.h"

namespace attune::service {

class ServiceContext;
struct Principal;

class Access {
 public:
  static Access open() { return Access(Kind::kOpen, "", ""); }
  static Access signed_in() { return Access(Kind::kSignedIn, "", ""); }
  static Access to(std::string resource, std::string action) {
    return Access(Kind::kGrant, std::move(resource), std::move(action));
  }
  // The request names its object in the body (a create in a pack, an execute of an action): the
  // handler decides on that object (404 invisible, 403 not permitted) instead of a 403 before it.
  Access on_object() const {
    Access a = *this;
    a.on_object_ = true;
    return a;
  }
  bool decides_on_object() const { return on_object_; }

  enum class Kind { kOpen, kSignedIn, kGrant };
  Kind kind() const { return kind_; }
  const std::string& resource() const { return resource_; }
  const std::string& action() const { return action_; }
  std::string describe() const;  // "open", "signed-in", "actions:execute"

 private:
  Access(Kind k, std::string r, std::string a)
      : kind_(k), resource_(std::move(r)), action_(std::move(a)) {}
  Kind kind_;
  std::string resource_, action_;
  bool on_object_ = false;
};

// One request to a declared route: the request, the declaration and (unless open) the caller.
class Call {
 public:
  Call(rest::HttpRequest& req, const Access& access, const ServiceContext& ctx)
      : req(req), access(access), ctx_(ctx) {}

  rest::HttpRequest& req;
  const Access& access;
  // Set by RouteTable before the handler runs (null for open routes).
  std::shared_ptr<const Principal> principal;
  std::shared_ptr<const authz::View> view;

  const Principal& who() const { return *principal; }
  const authz::View& can() const { return *view; }

  // The object check of the route's declared resource and action (or `action` when given),
  // for an object of `pack_ref` (with `reference_visibility`): nullopt when allowed, else 404
  // "<label> not found" when the caller cannot see it, 403 when it sees it but may not.
  std::optional<rest::HttpResponse> check(std::string_view label, authz::Object object,
                                          std::string_view reference_visibility = "public",
                                          std::string_view action = {}) const;
  // The same for a definition (its pack_ref, reference_visibility, ref).
  std::optional<rest::HttpResponse> check_definition(std::string_view label, const Json& obj,
                                                     std::string_view action = {}) const;
  // 403 unless the caller holds the route's declared grant (with any constraints).
  std::optional<rest::HttpResponse> require_grant() const;
  // Visibility only, for a definition: whether a list may show it (read permitted too).
  bool lists(const Json& obj) const;
  // A derived record (events, enforcements, executions, inquiries) by its row: 404 when the caller may not
  // read it.
  std::optional<rest::HttpResponse> check_record(std::string_view label, std::string_view entity,
                                                 const Json& row) const;

 private:
  const ServiceContext& ctx_;
};

using CallHandler = std::function<rest::HttpResponse(Call&)>;

struct RouteDecl {
  std::string method, pattern;
  Access access;
};

class RouteTable {
 public:
  RouteTable(rest::Router& router, const ServiceContext& ctx) : router_(router), ctx_(ctx) {}
  void add(std::string method, std::string pattern, Access access, CallHandler handler);
  const std::vector<RouteDecl>& routes() const { return routes_; }

 private:
  rest::Router& router_;
  const ServiceContext& ctx_;
  std::vector<RouteDecl> routes_;
};

}  // namespace attune::service
