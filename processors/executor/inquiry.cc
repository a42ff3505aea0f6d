// The executor's inquiry decisions (pure).
#include "processors/executor/inquiry.h"

#include "processors/expr/param_schema.h"

#include "topology/core/time.h"

namespace attune::executor {
namespace {

std::string status_of(const Json& inquiry) {
  auto it = inquiry.find("status");
  return it != inquiry.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string id_text(const Json& inquiry) {
  auto it = inquiry.find("id");
  return it != inquiry.end() ? it->dump() : std::string("?");
}

InquiryDecision refuse(int code, std::string message) {
  InquiryDecision d;
  d.code = code;
  d.message = std::move(message);
  return d;
}

InquiryDecision not_pending(const Json& inquiry) {
  return refuse(409, "Inquiry " + id_text(inquiry) + " is already " + status_of(inquiry));
}

// The fields whose equality makes a create "identical" to an earlier one.
constexpr const char* kIdentityFields[] = {"purpose",         "prompt",      "response_options",
                                           "response_schema", "assigned_to", "timeout_seconds"};

Json field(const Json& o, const char* name) {
  auto it = o.find(name);
  return it == o.end() ? Json(nullptr) : *it;
}

}  // namespace

std::string_view to_string(InquiryStatus s) {
  switch (s) {
    case InquiryStatus::kPending:
      return "pending";
    case InquiryStatus::kResponded:
      return "responded";
    case InquiryStatus::kTimeout:
      return "timeout";
    case InquiryStatus::kCancelled:
      return "cancelled";
  }
  return "pending";
}

std::optional<InquiryStatus> parse_inquiry_status(std::string_view s) {
  for (InquiryStatus st : {InquiryStatus::kPending, InquiryStatus::kResponded,
                           InquiryStatus::kTimeout, InquiryStatus::kCancelled}) {
    if (to_string(st) == s) return st;
  }
  return std::nullopt;
}

std::optional<FieldError> validate_response(const Json& schema, const Json& response) {
  if (!response.is_object()) {
    return FieldError{"response", std::string("must be an object, got ") + expr::json_type_name(response)};
  }
  const Json spec_all = expr::flat_schema(schema);
  for (auto it = spec_all.begin(); it != spec_all.end(); ++it) {
    const std::string& name = it.key();
    const Json& spec = it.value();
    if (!spec.is_object()) continue;
    auto v = response.find(name);
    if (v == response.end() || v->is_null()) {
      if (spec.value("required", false)) return FieldError{name, "is required"};
      continue;
    }
    if (auto why = expr::check_value(spec, *v)) return FieldError{name, std::move(*why)};
  }
  return std::nullopt;
}

InquiryDecision decide_create(const Json& request, const std::vector<Json>& same_creator,
                              int64_t now_ms) {
  for (const Json& other : same_creator) {
    bool identical = true;
    for (const char* f : kIdentityFields) identical = identical && field(other, f) == field(request, f);
    if (identical) {
      InquiryDecision d;
      d.code = 200;
      d.existing = other.value("id", int64_t{0});
      return d;
    }
  }
  for (const Json& other : same_creator) {
    if (status_of(other) == to_string(InquiryStatus::kPending)) {
      return refuse(409, "Execution " + field(request, "created_by_execution").dump() +
                             " already has a different pending inquiry " + id_text(other));
    }
  }
  Json q = request;
  const std::string now = format_rfc3339_ms(now_ms);
  q["status"] = to_string(InquiryStatus::kPending);
  q["response"] = nullptr;
  q["responded_at"] = nullptr;
  if (!q.contains("created") || !q["created"].is_string()) q["created"] = now;
  q["updated"] = now;
  q["rev"] = 1;
  InquiryDecision d;
  d.code = 201;
  d.inquiry = std::move(q);
  d.change = "created";
  return d;
}

bool assigned_to_matches(const Json& assigned_to, const Responder& who) {
  if (assigned_to.is_null()) return true;
  if (assigned_to.is_number_integer()) return assigned_to.get<int64_t>() == who.id;
  if (assigned_to.is_string()) {
    const std::string& a = assigned_to.get_ref<const std::string&>();
    return a.empty() || a == who.login || (who.id > 0 && a == std::to_string(who.id));
  }
  return false;
}

namespace {
void touch(Json& q, int64_t now_ms) {
  q["updated"] = format_rfc3339_ms(now_ms);
  q["rev"] = q.value("rev", int64_t{0}) + 1;
}
}  // namespace

InquiryDecision decide_respond(const Json& inquiry, const Json& response, const Responder& who,
                               int64_t now_ms) {
  if (status_of(inquiry) != to_string(InquiryStatus::kPending)) return not_pending(inquiry);
  if (!who.unrestricted && !assigned_to_matches(field(inquiry, "assigned_to"), who)) {
    return refuse(403, "Inquiry " + id_text(inquiry) + " is assigned to " +
                           (inquiry["assigned_to"].is_string()
                                ? inquiry["assigned_to"].get<std::string>()
                                : inquiry["assigned_to"].dump()));
  }
  if (auto e = validate_response(field(inquiry, "response_schema"), response)) {
    return refuse(400, "Invalid response: " + e->text());
  }
  Json q = inquiry;
  q["status"] = to_string(InquiryStatus::kResponded);
  q["response"] = response;
  q["responded_at"] = format_rfc3339_ms(now_ms);
  q["responded_by"] = who.id > 0 ? Json(who.id) : Json(nullptr);
  touch(q, now_ms);
  InquiryDecision d;
  d.inquiry = std::move(q);
  d.change = "responded";
  return d;
}

InquiryDecision decide_update(const Json& inquiry, const Json& changes, int64_t now_ms) {
  if (status_of(inquiry) != to_string(InquiryStatus::kPending)) return not_pending(inquiry);
  if (!changes.is_object()) return refuse(400, "Update must be an object");
  Json q = inquiry;
  std::string change = "updated";
  if (auto p = changes.find("prompt"); p != changes.end()) {
    if (!p->is_string()) return refuse(400, "prompt: must be a string");
    q["prompt"] = *p;
  }
  if (auto a = changes.find("assigned_to"); a != changes.end()) {
    if (!a->is_null() && !a->is_string() && !a->is_number_integer()) {
      return refuse(400, "assigned_to: must be an identity login or id");
    }
    q["assigned_to"] = *a;
  }
  if (auto t = changes.find("timeout_at"); t != changes.end()) {
    if (t->is_null()) {
      q["timeout_at"] = nullptr;
    } else if (!t->is_string() || !parse_rfc3339_ms(t->get<std::string>())) {
      return refuse(400, "timeout_at: must be an RFC 3339 time or null");
    } else {
      q["timeout_at"] = format_rfc3339_ms(*parse_rfc3339_ms(t->get<std::string>()));
    }
  }
  if (auto s = changes.find("status"); s != changes.end()) {
    if (!s->is_string() || *s != to_string(InquiryStatus::kCancelled)) {
      return refuse(400, "status: may only be set to cancelled");
    }
    q["status"] = to_string(InquiryStatus::kCancelled);
    change = "cancelled";
  }
  touch(q, now_ms);
  InquiryDecision d;
  d.inquiry = std::move(q);
  d.change = change;
  return d;
}

std::optional<int64_t> inquiry_deadline(const Json& inquiry) {
  if (status_of(inquiry) != to_string(InquiryStatus::kPending)) return std::nullopt;
  auto t = inquiry.find("timeout_at");
  if (t == inquiry.end() || !t->is_string()) return std::nullopt;
  return parse_rfc3339_ms(t->get<std::string>());
}

InquiryDecision decide_timeout(const Json& inquiry, int64_t timeout_at_ms, int64_t now_ms) {
  const auto due = inquiry_deadline(inquiry);
  if (!due || *due != timeout_at_ms) return InquiryDecision{};  // answered, moved or cancelled
  Json q = inquiry;
  q["status"] = to_string(InquiryStatus::kTimeout);
  q["response"] = nullptr;
  touch(q, now_ms);
  InquiryDecision d;
  d.inquiry = std::move(q);
  d.change = "timeout";
  return d;
}

}  // namespace attune::executor
