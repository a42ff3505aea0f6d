// Unit tests for attune::core: ids, time formatting/parsing, envelopes, partitioning.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "topology/core/ids.h"
#include "topology/core/record.h"
#include "topology/core/result.h"
#include "topology/core/time.h"

namespace attune {
namespace {

TEST(Ids, UniqueIncreasingAndBelow2To53) {
  ManualClock clock(1767225600000);
  IdGenerator gen(3, clock);
  int64_t last = 0;
  std::set<int64_t> seen;
  for (int i = 0; i < 2000; ++i) {  // > 256 per ms: borrows from the next millisecond
    const int64_t id = gen.next();
    EXPECT_GT(id, last);
    EXPECT_LE(id, kMaxId);
    EXPECT_TRUE(seen.insert(id).second);
    EXPECT_EQ(IdGenerator::node_of(id), 3u);
    last = id;
  }
  clock.advance(Millis(1000));
  EXPECT_GT(gen.next(), last);
  EXPECT_GE(IdGenerator::timestamp_ms(gen.next()), 1767225601000);
}

TEST(Ids, ThreadSafe) {
  IdGenerator gen(0, SystemClock::instance());
  std::vector<std::vector<int64_t>> per(4);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) per[t].push_back(gen.next());
    });
  }
  for (auto& t : ts) t.join();
  std::set<int64_t> all;
  for (auto& v : per) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 20000u);
}

TEST(Ids, RejectsBadNode) { EXPECT_THROW(IdGenerator(16, SystemClock::instance()), std::exception); }

TEST(Time, FormatsUtcWithMillis) {
  EXPECT_EQ(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(1772357400125), "2026-03-01T09:30:00.125Z");
}

TEST(Time, ParsesVariants) {
  EXPECT_EQ(parse_rfc3339_ms("2026-03-01T09:30:00.125Z"), 1772357400125);
  EXPECT_EQ(parse_rfc3339_ms("2026-03-01T09:30:00Z"), 1772357400000);
  EXPECT_EQ(parse_rfc3339_ms("2026-03-01T10:30:00.125+01:00"), 1772357400125);
  EXPECT_EQ(parse_rfc3339_ms("2026-03-01T09:30:00.123456Z"), 1772357400123);
  EXPECT_EQ(parse_rfc3339_ms("2024-02-29T00:00:00Z"), 1709164800000);
}

TEST(Time, RejectsGarbage) {
  for (const char* s : {"", "2026", "2026-13-01T00:00:00Z", "2026-03-01T09:30:00",
                        "2026-03-01T09:30:00.Z", "2026-03-01T09:30:00Zjunk", "x026-03-01T09:30:00Z"}) {
    EXPECT_FALSE(parse_rfc3339_ms(s).has_value()) << s;
  }
}

TEST(Envelope, RoundTrip) {
  Envelope e{"event.created", 42, "core.webhook", 1000, "api", Json{{"a", 1}}};
  Envelope back;
  std::string err;
  ASSERT_TRUE(Envelope::parse(e.dump(), back, err)) << err;
  EXPECT_EQ(back.type, "event.created");
  EXPECT_EQ(back.id, 42);
  EXPECT_EQ(back.payload["a"], 1);
}

TEST(Envelope, RejectsMalformed) {
  Envelope out;
  std::string err;
  EXPECT_FALSE(Envelope::parse("not json", out, err));
  EXPECT_FALSE(Envelope::parse("[1]", out, err));
  EXPECT_FALSE(Envelope::parse(R"({"id":1})", out, err));
  EXPECT_NE(err.find("type"), std::string::npos);
}

TEST(Partition, StableAndInRange) {
  EXPECT_EQ(partition_for("abc", 1), 0);
  for (int i = 0; i < 1000; ++i) {
    const auto k = std::to_string(i);
    const int32_t p = partition_for(k, 7);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, 7);
    EXPECT_EQ(p, partition_for(k, 7));
  }
}

TEST(ResultType, CarriesValueOrError) {
  Result<int> ok = 5;
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 5);
  Result<int> bad = make_error(Errc::kNotFound, "nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(errc_http_status(bad.error().code), 404);
  EXPECT_STREQ(errc_name(Errc::kValidation), "VALIDATION_ERROR");
}

}  // namespace
}  // namespace attune
