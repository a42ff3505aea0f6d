// Inquiries (API.md §13): the executor's pure decisions over one inquiry — create (with the
// same-execution dedupe), respond (response_schema validation, assignment), update (PUT), timeout.
// executor_processor.cc is the I/O shell: it loads the inquiry, applies the decision, keeps the
// deadline index and writes the records (processors/RECORDS.md, "Inquiries").
//
//   pending -respond-> responded      pending -timeout (timeout_at passed)-> timeout
//   pending -update status:cancelled-> cancelled
//   responded | timeout | cancelled: terminal; respond/update answer 409
//   "Inquiry <id> is already <status>"
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "topology/core/record.h"

namespace attune::executor {

enum class InquiryStatus { kPending, kResponded, kTimeout, kCancelled };

std::string_view to_string(InquiryStatus s);
std::optional<InquiryStatus> parse_inquiry_status(std::string_view s);

// A response that fails the schema: the first offending field (in schema order) and why.
struct FieldError {
  std::string field;
  std::string message;
  std::string text() const { return field + ": " + message; }  // "approved: is required"
};

// Checks `response` against `schema` (flat {name: {type, required, enum, minimum, maximum}} or
// JSON-Schema {type: object, properties, required}; null/absent/empty: anything goes, but the
// response must still be an object). Nothing is filled in: a response is stored as sent.
std::optional<FieldError> validate_response(const Json& schema, const Json& response);

// The outcome of a command on an inquiry: an HTTP-like code the API answers with (200, 201, 400,
// 403, 404, 409), a message for refusals, and the inquiry after the change (set: store it and
// emit `inquiry.updated` with `change`).
struct InquiryDecision {
  int code = 200;
  std::string message;
  std::optional<Json> inquiry;
  std::string change;  // created | responded | updated | cancelled | timeout
  int64_t existing = 0;  // create: the inquiry an identical repeat returns
};

// Create. `same_creator` are the inquiries already created by the same `created_by_execution`
// (empty for access-token creates without a creating execution). An identical one (purpose,
// prompt, response_options, response_schema, assigned_to, timeout_seconds) ⇒ 200 with it; else a
// pending one ⇒ 409; else 201 with the new inquiry (status pending, response null).
InquiryDecision decide_create(const Json& request, const std::vector<Json>& same_creator,
                              int64_t now_ms);

// Who answers: identity id, login, and whether they hold unconstrained inquiries:respond.
struct Responder {
  int64_t id = 0;
  std::string login;
  bool unrestricted = false;
};
bool assigned_to_matches(const Json& assigned_to, const Responder& who);

// Respond: 409 unless pending; 403 when assigned to someone else and not unrestricted; 400 with
// the field on a schema violation; else responded with the response stored as sent.
InquiryDecision decide_respond(const Json& inquiry, const Json& response, const Responder& who,
                               int64_t now_ms);

// PUT {prompt?, assigned_to?, timeout_at?, status?}: 409 unless pending; status other than
// "cancelled" or a bad timeout_at ⇒ 400.
InquiryDecision decide_update(const Json& inquiry, const Json& changes, int64_t now_ms);

// A deadline fired for `timeout_at_ms`: applies only when the inquiry is pending and its
// timeout_at is still that time (a PUT may have moved it). Otherwise code 200 and no change.
InquiryDecision decide_timeout(const Json& inquiry, int64_t timeout_at_ms, int64_t now_ms);

// The inquiry's deadline (epoch ms of timeout_at) while it is pending; nullopt otherwise.
std::optional<int64_t> inquiry_deadline(const Json& inquiry);

}  // namespace attune::executor
