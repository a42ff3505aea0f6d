#include "api/service/routes.h"

#include "api/projections/schema.h"
#include "api/service/context.h"

namespace attune::service {

std::string Access::describe() const {
  switch (kind_) {
    case Kind::kOpen:
      return "open";
    case Kind::kSignedIn:
      return "signed-in";
    case Kind::kGrant:
      return resource_ + ":" + action_;
  }
  return "";
}

std::optional<rest::HttpResponse> Call::check(std::string_view label, authz::Object object,
                                              std::string_view reference_visibility,
                                              std::string_view action) const {
  if (object.resource.empty()) object.resource = access.resource();
  const std::string_view act = action.empty() ? std::string_view(access.action()) : action;
  if (!view->sees(object.pack_ref, reference_visibility) &&
      !(object.resource == "actions" && !object.ref.empty() &&
        object.ref == view->principal().standard_action_ref)) {
    return detail::error(Errc::kNotFound, std::string(label) + " not found");
  }
  if (!view->may(act, object)) {
    return detail::error(Errc::kForbidden,
                         "Permission denied: needs " + object.resource + ":" + std::string(act));
  }
  return std::nullopt;
}

std::optional<rest::HttpResponse> Call::check_definition(std::string_view label, const Json& obj,
                                                         std::string_view action) const {
  authz::Object o;
  o.pack_ref = detail::pack_ref_of(obj);
  o.ref = obj.value("ref", "");
  const std::string vis = obj.value("reference_visibility", Json("public")).is_string()
                              ? obj.value("reference_visibility", "public")
                              : "public";
  return check(std::string(label) + " '" + o.ref + "'", std::move(o), vis, action);
}

std::optional<rest::HttpResponse> Call::require_grant() const {
  if (view->may_some(access.resource(), access.action())) return std::nullopt;
  return detail::error(Errc::kForbidden,
                       "Permission denied: needs " + access.resource() + ":" + access.action());
}

bool Call::lists(const Json& obj) const { return !check_definition("", obj, "read"); }

std::optional<rest::HttpResponse> Call::check_record(std::string_view label,
                                                     std::string_view entity,
                                                     const Json& row) const {
  const projections::Entity e = projections::entity_of(entity);
  const char* resource = projections::entity_resource(e);
  int64_t id = row.value("id", int64_t{0});
  if (e == projections::Entity::kInquiry) {
    // An inquiry is read as part of its execution (an execution token reads its own).
    const Json execution = row.value("execution", Json(nullptr));
    id = execution.is_number_integer() ? execution.get<int64_t>() : 0;
  }
  if (!view->may_read_record(resource, projections::record_scope(e, row), id)) {
    return detail::error(Errc::kNotFound, std::string(label) + " not found");
  }
  return std::nullopt;
}

void RouteTable::add(std::string method, std::string pattern, Access access,
                     CallHandler handler) {
  routes_.push_back(RouteDecl{method, pattern, access});
  const ServiceContext& ctx = ctx_;
  const bool one_object = pattern.find('{') != std::string::npos || access.decides_on_object();
  router_.add(std::move(method), std::move(pattern),
              [&ctx, one_object, access = std::move(access), handler = std::move(handler)](
                  rest::HttpRequest& req) -> rest::HttpResponse {
                Call call(req, access, ctx);
                if (access.kind() != Access::Kind::kOpen) {
                  auto p = ctx.authenticate(req);
                  if (!p.ok()) return rest::HttpResponse::error(p.error());
                  call.principal = std::make_shared<const Principal>(std::move(*p));
                  call.view = ctx.view_of(*call.principal);
                  // Everything but reading needs the declared grant (for some objects) before
                  // any work; reads are decided per object and per list row.
                  if (access.kind() == Access::Kind::kGrant && access.action() != "read" &&
                      !one_object && !call.view->may_some(access.resource(), access.action())) {
                    return detail::error(Errc::kForbidden, "Permission denied: needs " +
                                                               access.resource() + ":" +
                                                               access.action());
                  }
                }
                return handler(call);
              });
}

}  // namespace attune::service
