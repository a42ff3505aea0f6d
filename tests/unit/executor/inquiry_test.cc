// Unit tests of the executor's inquiry decisions (processors/executor/inquiry.h): response schema
// validation (table-driven, errors name the field), create dedupe, respond, update and timeout.
#include "processors/executor/inquiry.h"

#include <gtest/gtest.h>

#include "topology/core/time.h"

namespace attune::executor {
namespace {

constexpr int64_t kNow = 1767225600000;  // 2026-01-01

TEST(InquiryResponseSchema, TableOfCases) {
  const Json flat = Json::parse(R"({
    "approved": {"type": "boolean", "required": true},
    "reason": {"type": "string"},
    "level": {"type": "integer", "minimum": 1, "maximum": 3},
    "color": {"type": "string", "enum": ["red", "blue"]}
  })");
  const Json json_schema = Json::parse(R"({
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "count": {"type": "number"}},
    "required": ["approved"]
  })");
  struct Case {
    const char* name;
    Json schema;
    Json response;
    std::optional<std::string> error;  // "<field>: <message>"
  };
  const std::vector<Case> cases = {
      {"all fields valid", flat,
       Json{{"approved", true}, {"reason", "ok"}, {"level", 2}, {"color", "red"}}, std::nullopt},
      {"only the required field", flat, Json{{"approved", false}}, std::nullopt},
      {"extra fields pass", flat, Json{{"approved", true}, {"extra", 1}}, std::nullopt},
      {"required missing", flat, Json{{"reason", "x"}}, "approved: is required"},
      {"required null", flat, Json{{"approved", nullptr}}, "approved: is required"},
      {"wrong type", flat, Json{{"approved", "yes"}},
       "approved: must be of type boolean, got string"},
      {"integer given a fraction", flat, Json{{"approved", true}, {"level", 1.5}},
       "level: must be of type integer, got number"},
      {"below minimum", flat, Json{{"approved", true}, {"level", 0}}, "level: must be >= 1"},
      {"above maximum", flat, Json{{"approved", true}, {"level", 4}}, "level: must be <= 3"},
      {"not in enum", flat, Json{{"approved", true}, {"color", "green"}},
       R"(color: must be one of ["red","blue"])"},
      {"not an object", flat, Json::array({1}), "response: must be an object, got array"},
      {"json schema ok", json_schema, Json{{"approved", true}, {"count", 2.5}}, std::nullopt},
      {"json schema required", json_schema, Json{{"count", 1}}, "approved: is required"},
      {"json schema type", json_schema, Json{{"approved", true}, {"count", "x"}},
       "count: must be of type number, got string"},
      {"no schema", nullptr, Json{{"anything", 1}}, std::nullopt},
      {"empty schema", Json::object(), Json::object(), std::nullopt},
      {"no schema but not an object", nullptr, Json("yes"),
       "response: must be an object, got string"},
  };
  for (const auto& c : cases) {
    const auto got = validate_response(c.schema, c.response);
    if (!c.error) {
      EXPECT_FALSE(got.has_value()) << c.name << ": " << got->text();
    } else {
      ASSERT_TRUE(got.has_value()) << c.name;
      EXPECT_EQ(got->text(), *c.error) << c.name;
    }
  }
}

Json request(int64_t id, Json creator, const std::string& prompt = "Deploy?") {
  return Json{{"id", id},
              {"execution", 10},
              {"created_by_execution", creator},
              {"purpose", "approval"},
              {"prompt", prompt},
              {"response_schema", {{"approved", {{"type", "boolean"}, {"required", true}}}}},
              {"response_options", nullptr},
              {"assigned_to", nullptr},
              {"timeout_seconds", 60},
              {"timeout_at", format_rfc3339_ms(kNow + 60000)},
              {"created", format_rfc3339_ms(kNow)}};
}

TEST(InquiryCreate, NewIdenticalRepeatAndConflict) {
  auto first = decide_create(request(1, 10), {}, kNow);
  ASSERT_EQ(first.code, 201);
  ASSERT_TRUE(first.inquiry.has_value());
  EXPECT_EQ((*first.inquiry)["status"], "pending");
  EXPECT_TRUE((*first.inquiry)["response"].is_null());
  EXPECT_EQ(first.change, "created");
  EXPECT_EQ(inquiry_deadline(*first.inquiry), kNow + 60000);

  // Identical repeat from the same execution: the existing one (even once answered).
  auto repeat = decide_create(request(2, 10), {*first.inquiry}, kNow + 5);
  EXPECT_EQ(repeat.code, 200);
  EXPECT_EQ(repeat.existing, 1);
  EXPECT_FALSE(repeat.inquiry.has_value());

  // A different one while the first is pending: 409.
  auto other = decide_create(request(3, 10, "Roll back?"), {*first.inquiry}, kNow + 5);
  EXPECT_EQ(other.code, 409);
  EXPECT_NE(other.message.find("pending inquiry 1"), std::string::npos) << other.message;

  // Once the first is answered, the execution may ask something else.
  Json answered = *first.inquiry;
  answered["status"] = "responded";
  auto next = decide_create(request(4, 10, "Roll back?"), {answered}, kNow + 5);
  EXPECT_EQ(next.code, 201);
}

TEST(InquiryRespond, OutcomesTable) {
  Json pending = *decide_create(request(1, 10), {}, kNow).inquiry;
  Json assigned = pending;
  assigned["assigned_to"] = "alice";
  const Responder alice{7, "alice", false};
  const Responder bob{8, "bob", false};
  const Responder admin{9, "admin", true};
  struct Case {
    const char* name;
    Json inquiry;
    Json response;
    Responder who;
    int code;
    std::string message;
  };
  Json responded = pending;
  responded["status"] = "responded";
  Json timed_out = pending;
  timed_out["status"] = "timeout";
  const std::vector<Case> cases = {
      {"valid", pending, Json{{"approved", true}}, bob, 200, ""},
      {"schema violation names the field", pending, Json{{"approved", "y"}}, bob, 400,
       "Invalid response: approved: must be of type boolean, got string"},
      {"missing field", pending, Json::object(), bob, 400, "Invalid response: approved: is required"},
      {"already responded", responded, Json{{"approved", true}}, bob, 409,
       "Inquiry 1 is already responded"},
      {"already timed out", timed_out, Json{{"approved", true}}, bob, 409,
       "Inquiry 1 is already timeout"},
      {"assignee by login", assigned, Json{{"approved", true}}, alice, 200, ""},
      {"someone else", assigned, Json{{"approved", true}}, bob, 403,
       "Inquiry 1 is assigned to alice"},
      {"unrestricted responder", assigned, Json{{"approved", true}}, admin, 200, ""},
  };
  for (const auto& c : cases) {
    auto d = decide_respond(c.inquiry, c.response, c.who, kNow + 10);
    EXPECT_EQ(d.code, c.code) << c.name;
    EXPECT_EQ(d.message, c.message) << c.name;
    EXPECT_EQ(d.inquiry.has_value(), c.code == 200) << c.name;
    if (d.inquiry) {
      EXPECT_EQ((*d.inquiry)["status"], "responded") << c.name;
      EXPECT_EQ((*d.inquiry)["response"], c.response) << c.name;  // stored as sent
      EXPECT_EQ((*d.inquiry)["responded_at"], format_rfc3339_ms(kNow + 10)) << c.name;
      EXPECT_GT((*d.inquiry)["rev"].get<int64_t>(), c.inquiry["rev"].get<int64_t>()) << c.name;
      EXPECT_FALSE(inquiry_deadline(*d.inquiry).has_value()) << c.name;
    }
  }
  // Assignment by id.
  Json by_id = pending;
  by_id["assigned_to"] = 7;
  EXPECT_EQ(decide_respond(by_id, Json{{"approved", true}}, alice, kNow).code, 200);
  EXPECT_EQ(decide_respond(by_id, Json{{"approved", true}}, bob, kNow).code, 403);
}

TEST(InquiryUpdateAndTimeout, Table) {
  Json pending = *decide_create(request(1, 10), {}, kNow).inquiry;
  auto moved = decide_update(pending, Json{{"timeout_at", format_rfc3339_ms(kNow + 5000)},
                                           {"prompt", "Now?"}, {"assigned_to", "carol"}},
                             kNow + 1);
  ASSERT_TRUE(moved.inquiry.has_value());
  EXPECT_EQ(moved.change, "updated");
  EXPECT_EQ((*moved.inquiry)["prompt"], "Now?");
  EXPECT_EQ((*moved.inquiry)["assigned_to"], "carol");
  EXPECT_EQ(inquiry_deadline(*moved.inquiry), kNow + 5000);

  // The old deadline no longer applies; the new one does.
  EXPECT_FALSE(decide_timeout(*moved.inquiry, kNow + 60000, kNow + 60000).inquiry.has_value());
  auto fired = decide_timeout(*moved.inquiry, kNow + 5000, kNow + 5001);
  ASSERT_TRUE(fired.inquiry.has_value());
  EXPECT_EQ((*fired.inquiry)["status"], "timeout");
  EXPECT_TRUE((*fired.inquiry)["response"].is_null());
  EXPECT_EQ(fired.change, "timeout");
  // A response first prevents the timeout.
  auto answered = decide_respond(pending, Json{{"approved", true}}, Responder{1, "x", false}, kNow);
  EXPECT_FALSE(decide_timeout(*answered.inquiry, kNow + 60000, kNow + 60000).inquiry.has_value());

  auto cancelled = decide_update(pending, Json{{"status", "cancelled"}}, kNow + 1);
  ASSERT_TRUE(cancelled.inquiry.has_value());
  EXPECT_EQ(cancelled.change, "cancelled");
  EXPECT_FALSE(inquiry_deadline(*cancelled.inquiry).has_value());
  EXPECT_EQ(decide_update(*cancelled.inquiry, Json{{"prompt", "x"}}, kNow).code, 409);

  struct Bad {
    Json changes;
    std::string message;
  };
  for (const auto& b : std::vector<Bad>{
           {Json{{"status", "responded"}}, "status: may only be set to cancelled"},
           {Json{{"timeout_at", "tomorrow"}}, "timeout_at: must be an RFC 3339 time or null"},
           {Json{{"prompt", 3}}, "prompt: must be a string"},
           {Json{{"assigned_to", Json::array()}}, "assigned_to: must be an identity login or id"},
       }) {
    auto d = decide_update(pending, b.changes, kNow);
    EXPECT_EQ(d.code, 400) << b.changes.dump();
    EXPECT_EQ(d.message, b.message);
  }
  auto never = decide_update(pending, Json{{"timeout_at", nullptr}}, kNow);
  ASSERT_TRUE(never.inquiry.has_value());
  EXPECT_FALSE(inquiry_deadline(*never.inquiry).has_value());
}

TEST(InquiryStatus, NamesRoundTrip) {
  for (auto s : {InquiryStatus::kPending, InquiryStatus::kResponded, InquiryStatus::kTimeout,
                 InquiryStatus::kCancelled}) {
    EXPECT_EQ(parse_inquiry_status(to_string(s)), s);
  }
  EXPECT_FALSE(parse_inquiry_status("done").has_value());
}

}  // namespace
}  // namespace attune::executor
