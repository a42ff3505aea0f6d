// Inquiries (API.md §13): the API validates the request, checks visibility (an inquiry shares its
// execution's scope, §16.3) and rights, and sends a command to the executor, which owns inquiries
// (processors/executor/inquiry.h). The answer is the executor's outcome, read from this API's
// projection once applied (read-your-writes), with the inquiry row written in the same step.
//
// Execution tokens (§16.2, §13 "normally with an execution token"): a token may create inquiries
// for its own execution and read that execution's inquiries, without an inquiries grant — the
// right an action needs to ask a question about the run it is part of, and nothing wider.
#include <algorithm>

#include "api/projections/schema.h"
#include "api/service/fields.h"
#include "api/service/record_queries.h"
#include "api/service/service.h"
#include "topology/core/time.h"

namespace attune::service {

using detail::data;
using detail::error;
using detail::validation;
using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;

namespace {

// Fields the executor and the projection keep on an inquiry that answers never show.
constexpr const char* kInternalFields[] = {"scope", "root", "rev"};

Json present(Json row) {
  for (const char* f : kInternalFields) row.erase(f);
  return row;
}

int64_t int_of(const Json& o, const char* name) {
  auto it = o.is_object() ? o.find(name) : o.end();
  return o.is_object() && it != o.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

Errc errc_of(int code) {
  switch (code) {
    case 400:
      return Errc::kBadRequest;
    case 403:
      return Errc::kForbidden;
    case 404:
      return Errc::kNotFound;
    case 409:
      return Errc::kConflict;
    default:
      return Errc::kInternal;
  }
}

// The pack whose grants decide on an inquiry (its execution's scope).
std::string pack_of_inquiry(const Json& row) {
  return authz::View::scope_pack(projections::record_scope(projections::Entity::kInquiry, row));
}

// The visible inquiry named by {id}, or the 404.
std::optional<Json> find_inquiry(ServiceContext& s, Call& c, std::optional<Resp>& refused) {
  const std::string& id = c.req.params["id"];
  const std::string label = "Inquiry " + id;
  if (!detail::all_digits(id)) {
    refused = error(Errc::kNotFound, label + " not found");
    return std::nullopt;
  }
  auto row = s.views.get_inquiry(std::stoll(id));
  if (!row.ok()) {
    refused = Resp::error(row.error());
    return std::nullopt;
  }
  if (!row->has_value()) {
    refused = error(Errc::kNotFound, label + " not found");
    return std::nullopt;
  }
  if (auto r = c.check_record(label, "inquiry", **row)) {
    refused = std::move(r);
    return std::nullopt;
  }
  return std::move(**row);
}

// 409 "Inquiry <id> is already <status>" unless pending (the executor decides the same; this
// answers at once, and also for inquiries the executor no longer keeps).
std::optional<Resp> require_pending(const Json& row) {
  const std::string status = row.value("status", "");
  if (status == "pending") return std::nullopt;
  return error(Errc::kConflict,
               "Inquiry " + std::to_string(int_of(row, "id")) + " is already " + status);
}

// 403 unless the caller may `action` inquiries of this inquiry's pack.
std::optional<Resp> require(const Call& c, const Json& row, std::string_view action) {
  if (c.can().may(action, authz::Object{"inquiries", pack_of_inquiry(row)})) return std::nullopt;
  return error(Errc::kForbidden, "Permission denied: needs inquiries:" + std::string(action));
}

// Sends an inquiry command (keyed by the root execution) and waits for the executor's outcome in
// this API's projection. Returns the outcome {code, id, message} or the error answer.
Result<Json> command(ServiceContext& s, std::string type, int64_t id, int64_t root, Json payload) {
  const int64_t request = s.ids.next();
  payload["request"] = request;
  Envelope env{std::move(type), id, "inquiry-request:" + std::to_string(request), s.now_ms(),
               "api", std::move(payload)};
  auto st = s.produce_and_wait(
      OutRecord{std::string(topics::kCommands), std::to_string(root), env.dump()}, false);
  if (!st.ok()) return st.error();
  auto out = s.views.wait_for_inquiry_outcome(request, s.options.write_timeout);
  if (!out) {
    return make_error(Errc::kUnavailable, "Database operation temporarily unavailable; please retry");
  }
  const int code = out->value("code", 500);
  if (code >= 400) return make_error(errc_of(code), out->value("message", "Inquiry refused"));
  return *out;
}

// The inquiry row an outcome names (present in the projection: written with the outcome).
Result<Json> outcome_row(ServiceContext& s, const Json& outcome) {
  auto row = s.views.get_inquiry(int_of(outcome, "id"));
  if (!row.ok()) return row.error();
  if (!row->has_value()) {
    return make_error(Errc::kNotFound, "Inquiry " + std::to_string(int_of(outcome, "id")) +
                                           " not found");
  }
  return present(std::move(**row));
}

// The root execution of `row` (its parent chain; workflows key a tree by its root).
Result<int64_t> root_of(ServiceContext& s, Json row) {
  int64_t root = int_of(row, "id");
  for (int depth = 0; depth < 64; ++depth) {
    const int64_t parent = int_of(row, "parent");
    if (parent <= 0) break;
    root = parent;
    auto up = s.views.get_execution(parent);
    if (!up.ok()) return up.error();
    if (!up->has_value()) break;
    row = std::move(**up);
  }
  return root;
}

Resp create_inquiry(ServiceContext& s, Call& c) {
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  const Json& b = *body;
  Json errors = Json::object();
  auto optional_type = [&](const char* f, bool ok, const char* what) {
    if (b.contains(f) && !b[f].is_null() && !ok) errors[f] = std::string("must be ") + what;
  };
  optional_type("purpose", b.value("purpose", Json()).is_string(), "a string");
  if (!b.contains("prompt") || !b["prompt"].is_string() || b["prompt"].get<std::string>().empty()) {
    errors["prompt"] = b.contains("prompt") ? "must be a non-empty string" : "is required";
  }
  optional_type("response_schema", b.value("response_schema", Json()).is_object(), "an object");
  optional_type("assigned_to",
                b.value("assigned_to", Json()).is_string() ||
                    b.value("assigned_to", Json()).is_number_integer(),
                "an identity login or id");
  optional_type("execution", b.value("execution", Json()).is_number_integer(), "an integer");
  if (b.contains("response_options") && !b["response_options"].is_null()) {
    const Json& opts = b["response_options"];
    if (!opts.is_array()) {
      errors["response_options"] = "must be a list of {ref, label, style, response}";
    } else {
      for (size_t i = 0; i < opts.size(); ++i) {
        if (!opts[i].is_object()) {
          errors["response_options[" + std::to_string(i) + "]"] = "must be an object";
        }
      }
    }
  }
  int64_t timeout_seconds = 0;
  if (b.contains("timeout_seconds") && !b["timeout_seconds"].is_null()) {
    const Json& t = b["timeout_seconds"];
    if (!t.is_number_integer() || t.get<int64_t>() < 1 || t.get<int64_t>() > 365LL * 24 * 3600) {
      errors["timeout_seconds"] = "must be an integer from 1 to 31536000";
    } else {
      timeout_seconds = t.get<int64_t>();
    }
  }
  if (!errors.empty()) return validation(errors);

  const Principal& who = c.who();
  int64_t execution_id = int_of(b, "execution");
  if (who.execution_id != 0) {
    if (execution_id != 0 && execution_id != who.execution_id) {
      return error(Errc::kForbidden,
                   "Permission denied: an execution token creates inquiries for its own execution");
    }
    execution_id = who.execution_id;
  } else if (execution_id <= 0) {
    return validation(Json{{"execution", "is required unless the caller holds an execution token"}});
  }
  auto found = s.views.get_execution(execution_id);
  if (!found.ok()) return Resp::error(found.error());
  const std::string exec_label = "Execution " + std::to_string(execution_id);
  if (!found->has_value()) return error(Errc::kNotFound, exec_label + " not found");
  const Json execution = std::move(**found);
  if (auto refused = c.check_record(exec_label, "execution", execution)) return *refused;
  const std::string scope = projections::record_scope(projections::Entity::kExecution, execution);
  if (who.execution_id == 0 &&
      !c.can().may("create", authz::Object{"inquiries", authz::View::scope_pack(scope)})) {
    return error(Errc::kForbidden, "Permission denied: needs inquiries:create");
  }
  auto root = root_of(s, execution);
  if (!root.ok()) return Resp::error(root.error());

  const Json task = execution.value("workflow_task", Json(nullptr));
  const int64_t now = s.now_ms();
  const int64_t id = s.ids.next();
  Json inquiry = {
      {"id", id},
      {"execution", execution_id},
      {"created_by_execution", who.execution_id != 0 ? Json(execution_id) : Json(nullptr)},
      {"workflow_execution", task.is_object() ? task.value("workflow_execution", Json(nullptr))
                                              : Json(nullptr)},
      {"workflow_task_name", task.is_object() ? task.value("task_name", Json(nullptr))
                                              : Json(nullptr)},
      {"purpose", b.value("purpose", Json(nullptr))},
      {"prompt", b["prompt"]},
      {"response_schema", b.value("response_schema", Json(nullptr))},
      {"response_options", b.value("response_options", Json(nullptr))},
      {"assigned_to", b.value("assigned_to", Json(nullptr))},
      {"timeout_seconds", timeout_seconds > 0 ? Json(timeout_seconds) : Json(nullptr)},
      {"timeout_at",
       timeout_seconds > 0 ? Json(format_rfc3339_ms(now + timeout_seconds * 1000)) : Json(nullptr)},
      {"created", format_rfc3339_ms(now)},
      {"scope", scope},
      {"root", *root}};
  auto out = command(s, "inquiry.create", id, *root, Json{{"inquiry", std::move(inquiry)}});
  if (!out.ok()) return Resp::error(out.error());
  auto row = outcome_row(s, *out);
  if (!row.ok()) return Resp::error(row.error());
  const int code = out->value("code", 201);
  return data(code, Json{{"inquiry", std::move(*row)}},
              code == 201 ? "Inquiry created" : "Inquiry already exists");
}

Resp respond_inquiry(ServiceContext& s, Call& c) {
  std::optional<Resp> refused;
  auto row = find_inquiry(s, c, refused);
  if (!row) return *refused;
  if (auto r = require(c, *row, "respond")) return *r;
  if (auto r = require_pending(*row)) return *r;
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  if (!body->contains("response")) {
    return error(Errc::kBadRequest, "Invalid response: response: is required");
  }
  const Principal& who = c.who();
  const auto& grants = c.can().principal().grants;
  const bool unrestricted = std::any_of(grants.begin(), grants.end(), [](const authz::Grant& g) {
    return g.resource == "inquiries" && g.actions.count("respond") > 0 && !g.pack_refs &&
           !g.owner_types && !g.owner_refs;
  });
  Json responder = who.execution_id != 0
                       ? Json{{"id", 0}, {"login", "execution:" + std::to_string(who.execution_id)}}
                       : Json{{"id", who.id}, {"login", who.login}};
  responder["unrestricted"] = unrestricted;
  const int64_t id = int_of(*row, "id");
  auto out = command(s, "inquiry.respond", id, int_of(*row, "root"),
                     Json{{"id", id}, {"response", (*body)["response"]}, {"responder", responder}});
  if (!out.ok()) return Resp::error(out.error());
  auto answered = outcome_row(s, *out);
  if (!answered.ok()) return Resp::error(answered.error());
  return data(200, std::move(*answered));
}

Resp update_inquiry(ServiceContext& s, Call& c) {
  std::optional<Resp> refused;
  auto row = find_inquiry(s, c, refused);
  if (!row) return *refused;
  if (auto r = require(c, *row, "update")) return *r;
  if (auto r = require_pending(*row)) return *r;
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  Json changes = Json::object();
  for (const char* f : {"prompt", "assigned_to", "timeout_at", "status"}) {
    if (body->contains(f)) changes[f] = (*body)[f];
  }
  const int64_t id = int_of(*row, "id");
  auto out = command(s, "inquiry.update", id, int_of(*row, "root"),
                     Json{{"id", id}, {"changes", std::move(changes)}});
  if (!out.ok()) return Resp::error(out.error());
  auto updated = outcome_row(s, *out);
  if (!updated.ok()) return Resp::error(updated.error());
  return data(200, std::move(*updated));
}

Resp delete_inquiry(ServiceContext& s, Call& c) {
  std::optional<Resp> refused;
  auto row = find_inquiry(s, c, refused);
  if (!row) return *refused;
  if (auto r = require(c, *row, "delete")) return *r;
  const int64_t id = int_of(*row, "id");
  auto out = command(s, "inquiry.delete", id, int_of(*row, "root"), Json{{"id", id}});
  if (!out.ok()) return Resp::error(out.error());
  return detail::deleted("Inquiry deleted");
}

Resp get_inquiry(ServiceContext& s, Call& c) {
  std::optional<Resp> refused;
  auto row = find_inquiry(s, c, refused);
  if (!row) return *refused;
  return data(200, present(std::move(*row)));
}

// Lists. `execution`: the /executions/{id}/inquiries route's execution (already checked).
Resp list_inquiries(ServiceContext& s, Call& c, std::optional<std::string> status_override,
                    std::optional<int64_t> execution) {
  Req& req = c.req;
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  projections::InquiryFilter filter;
  const auto statuses = detail::csv_set(status_override ? status_override : str_param(req, "status"));
  for (const auto& st : statuses) {
    if (std::find(std::begin(projections::kInquiryStatuses), std::end(projections::kInquiryStatuses),
                  st) == std::end(projections::kInquiryStatuses)) {
      return error(Errc::kBadRequest, "Unknown inquiry status '" + st + "'");
    }
    filter.statuses.push_back(st);
  }
  if (auto e = int_param(req, "execution", filter.execution)) return *e;
  if (auto e = int_param(req, "created_by_execution", filter.created_by_execution)) return *e;
  filter.assigned_to = str_param(req, "assigned_to");
  if (execution) {
    if (filter.execution && *filter.execution != *execution) {
      filter.scopes = std::vector<std::string>{};  // two different executions: nothing
    }
    filter.execution = execution;
  }
  const int64_t own = c.who().execution_id;
  if (!filter.scopes) {
    if (own != 0 && (!filter.execution || *filter.execution == own)) {
      filter.execution = own;  // an execution token reads its own execution's inquiries
    } else {
      filter.scopes = readable_scopes(c, "inquiries");
    }
  }
  auto res = s.views.list_inquiries(filter, to_page(*page));
  if (!res.ok()) return Resp::error(res.error());
  for (auto& row : res->items) row = present(std::move(row));
  return Resp::json(200, rest::list_envelope(std::move(res->items), *page, res->total));
}

Resp execution_inquiries(ServiceContext& s, Call& c) {
  const std::string& id = c.req.params["id"];
  const std::string label = "Execution " + id;
  if (!detail::all_digits(id)) return error(Errc::kNotFound, label + " not found");
  auto row = s.views.get_execution(std::stoll(id));
  if (!row.ok()) return Resp::error(row.error());
  if (!row->has_value()) return error(Errc::kNotFound, label + " not found");
  if (auto refused = c.check_record(label, "execution", **row)) return *refused;
  return list_inquiries(s, c, std::nullopt, std::stoll(id));
}

}  // namespace

void register_inquiry_routes(RouteTable& t, ServiceContext& s) {
  const std::string v1 = "/api/v1/inquiries";
  t.add("GET", v1, Access::to("inquiries", "read"),
        [&s](Call& c) { return list_inquiries(s, c, std::nullopt, std::nullopt); });
  // Execution tokens create for their own execution without a grant; others need
  // inquiries:create on the execution's pack: decided on the execution named.
  t.add("POST", v1, Access::to("inquiries", "create").on_object(),
        [&s](Call& c) { return create_inquiry(s, c); });
  t.add("GET", v1 + "/status/{status}", Access::to("inquiries", "read"),
        [&s](Call& c) { return list_inquiries(s, c, c.req.params["status"], std::nullopt); });
  t.add("GET", v1 + "/{id}", Access::to("inquiries", "read"),
        [&s](Call& c) { return get_inquiry(s, c); });
  t.add("PUT", v1 + "/{id}", Access::to("inquiries", "update"),
        [&s](Call& c) { return update_inquiry(s, c); });
  t.add("DELETE", v1 + "/{id}", Access::to("inquiries", "delete"),
        [&s](Call& c) { return delete_inquiry(s, c); });
  t.add("POST", v1 + "/{id}/respond", Access::to("inquiries", "respond"),
        [&s](Call& c) { return respond_inquiry(s, c); });
  t.add("GET", "/api/v1/executions/{id}/inquiries", Access::to("inquiries", "read"),
        [&s](Call& c) { return execution_inquiries(s, c); });
}

}  // namespace attune::service
