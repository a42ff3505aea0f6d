// Cron parser and next-fire computation: every field form, names, DST in two zones, leap years,
// impossible dates.
#include <gtest/gtest.h>

#include "processors/sensor/cron.h"
#include "topology/core/time.h"

namespace attune::sensor {
namespace {

int64_t utc(const char* rfc3339) { return *parse_rfc3339_ms(rfc3339) / 1000; }
std::string fmt(int64_t s) { return format_rfc3339_ms(s * 1000); }

CronExpression cron(const char* text) {
  auto c = CronExpression::parse(text);
  EXPECT_TRUE(c.ok()) << text << ": " << (c.ok() ? "" : c.error().message);
  return *c;
}

// The next `n` fire times after `from` in `zone`.
std::vector<std::string> next_n(const char* expr, const char* from, int n,
                                const char* zone = "UTC") {
  auto tz = TimeZone::locate(zone);
  EXPECT_TRUE(tz.ok());
  const CronExpression c = cron(expr);
  std::vector<std::string> out;
  int64_t t = utc(from);
  for (int i = 0; i < n; ++i) {
    auto next = c.next_after(t, *tz);
    if (!next) break;
    out.push_back(fmt(*next));
    t = *next;
  }
  return out;
}

TEST(CronTest, SixFieldsSecondsFirst) {
  EXPECT_EQ(next_n("*/2 * * * * *", "2026-03-01T10:00:00.000Z", 3),
            (std::vector<std::string>{"2026-03-01T10:00:02.000Z", "2026-03-01T10:00:04.000Z",
                                      "2026-03-01T10:00:06.000Z"}));
  EXPECT_EQ(next_n("0,15,30,45 * * * * *", "2026-03-01T10:00:10.000Z", 4),
            (std::vector<std::string>{"2026-03-01T10:00:15.000Z", "2026-03-01T10:00:30.000Z",
                                      "2026-03-01T10:00:45.000Z", "2026-03-01T10:01:00.000Z"}));
}

TEST(CronTest, FiveFieldsMeanSecondZero) {
  EXPECT_EQ(next_n("*/15 * * * *", "2026-03-01T10:07:30.000Z", 2),
            (std::vector<std::string>{"2026-03-01T10:15:00.000Z", "2026-03-01T10:30:00.000Z"}));
  EXPECT_EQ(next_n("0 9 * * *", "2026-03-01T10:00:00.000Z", 1),
            (std::vector<std::string>{"2026-03-02T09:00:00.000Z"}));
}

TEST(CronTest, RangesStepsListsAndNames) {
  // MON-FRI at 09:30:00: 2026-03-06 is a Friday, so the weekend is skipped.
  EXPECT_EQ(next_n("0 30 9 * * MON-FRI", "2026-03-06T10:00:00.000Z", 2),
            (std::vector<std::string>{"2026-03-09T09:30:00.000Z", "2026-03-10T09:30:00.000Z"}));
  EXPECT_EQ(next_n("0 0 12 1 JAN,jul *", "2026-02-01T00:00:00.000Z", 2),
            (std::vector<std::string>{"2026-07-01T12:00:00.000Z", "2027-01-01T12:00:00.000Z"}));
  EXPECT_EQ(next_n("10-20/5 * * * * *", "2026-03-01T10:00:00.000Z", 4),
            (std::vector<std::string>{"2026-03-01T10:00:10.000Z", "2026-03-01T10:00:15.000Z",
                                      "2026-03-01T10:00:20.000Z", "2026-03-01T10:01:10.000Z"}));
  EXPECT_EQ(next_n("50/5 * * * * *", "2026-03-01T10:00:00.000Z", 3),
            (std::vector<std::string>{"2026-03-01T10:00:50.000Z", "2026-03-01T10:00:55.000Z",
                                      "2026-03-01T10:01:50.000Z"}));
  // Wrapping range: 22-2 hours; FRI-MON days (2026-03-06 is Friday).
  EXPECT_EQ(next_n("0 0 22-2/2 * * *", "2026-03-01T12:00:00.000Z", 3),
            (std::vector<std::string>{"2026-03-01T22:00:00.000Z", "2026-03-02T00:00:00.000Z",
                                      "2026-03-02T02:00:00.000Z"}));
  EXPECT_EQ(next_n("0 0 0 * * FRI-MON", "2026-03-05T12:00:00.000Z", 5),
            (std::vector<std::string>{"2026-03-06T00:00:00.000Z", "2026-03-07T00:00:00.000Z",
                                      "2026-03-08T00:00:00.000Z", "2026-03-09T00:00:00.000Z",
                                      "2026-03-13T00:00:00.000Z"}));
  // 7 is Sunday too; ? is *.
  EXPECT_EQ(next_n("0 0 0 ? * 7", "2026-03-01T12:00:00.000Z", 1),
            (std::vector<std::string>{"2026-03-08T00:00:00.000Z"}));
  EXPECT_EQ(next_n("@hourly", "2026-03-01T12:30:00.000Z", 1),
            (std::vector<std::string>{"2026-03-01T13:00:00.000Z"}));
  EXPECT_EQ(next_n("@yearly", "2026-03-01T12:30:00.000Z", 1),
            (std::vector<std::string>{"2027-01-01T00:00:00.000Z"}));
}

TEST(CronTest, DayOfMonthOrDayOfWeekLikeVixieCron) {
  // The 13th or any Friday.
  EXPECT_EQ(next_n("0 0 0 13 * FRI", "2026-03-01T00:00:00.000Z", 3),
            (std::vector<std::string>{"2026-03-06T00:00:00.000Z", "2026-03-13T00:00:00.000Z",
                                      "2026-03-20T00:00:00.000Z"}));
}

TEST(CronTest, LeapYearsAndImpossibleDates) {
  EXPECT_EQ(next_n("0 0 0 29 2 *", "2026-03-01T00:00:00.000Z", 2),
            (std::vector<std::string>{"2028-02-29T00:00:00.000Z", "2032-02-29T00:00:00.000Z"}));
  // 2100 is not a leap year: from 2097 the next Feb 29 is in 2104.
  EXPECT_EQ(next_n("0 0 0 29 2 *", "2097-01-01T00:00:00.000Z", 1),
            (std::vector<std::string>{"2104-02-29T00:00:00.000Z"}));
  // Feb 30 and Apr 31 never match.
  const auto tz = TimeZone::locate("UTC");
  EXPECT_FALSE(cron("0 0 0 30 2 *").next_after(utc("2026-01-01T00:00:00Z"), *tz));
  EXPECT_FALSE(cron("0 0 31 4 *").next_after(utc("2026-01-01T00:00:00Z"), *tz));
  // The 31st skips short months.
  EXPECT_EQ(next_n("0 0 0 31 * *", "2026-03-31T12:00:00.000Z", 2),
            (std::vector<std::string>{"2026-05-31T00:00:00.000Z", "2026-07-31T00:00:00.000Z"}));
}

TEST(CronTest, RejectsBadExpressions) {
  for (const char* bad : {"", "* * * *", "* * * * * * *", "60 * * * * *", "* 60 * * * *",
                          "* * 24 * * *", "* * * 0 * *", "* * * 32 * *", "* * * * 13 *",
                          "* * * * * 8", "*/0 * * * * *", "a * * * * *", "1-2-3 * * * * *",
                          "* * * * FOO *", ",1 * * * * *", "@every", "? * * * * *"}) {
    auto c = CronExpression::parse(bad);
    EXPECT_FALSE(c.ok()) << "'" << bad << "' parsed";
  }
  auto c = CronExpression::parse("0 0 25 * * *");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("hour"), std::string::npos) << c.error().message;
}

// America/New_York: 2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST.
TEST(CronTest, DstNewYorkSpringForward) {
  // 02:30 does not exist that day: it fires when the gap ends (03:00 EDT = 07:00Z), then normally.
  EXPECT_EQ(next_n("0 30 2 * * *", "2026-03-07T12:00:00.000Z", 3, "America/New_York"),
            (std::vector<std::string>{"2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z",
                                      "2026-03-10T06:30:00.000Z"}));
  // Hourly keeps firing every real hour across the gap.
  EXPECT_EQ(next_n("0 0 * * * *", "2026-03-08T05:30:00.000Z", 3, "America/New_York"),
            (std::vector<std::string>{"2026-03-08T06:00:00.000Z", "2026-03-08T07:00:00.000Z",
                                      "2026-03-08T08:00:00.000Z"}));
  // 09:00 local is 14:00Z before and 13:00Z after the change.
  EXPECT_EQ(next_n("0 0 9 * * *", "2026-03-07T00:00:00.000Z", 2, "America/New_York"),
            (std::vector<std::string>{"2026-03-07T14:00:00.000Z", "2026-03-08T13:00:00.000Z"}));
}

TEST(CronTest, DstNewYorkFallBack) {
  // 01:30 happens twice on 2026-11-01: a daily job fires once, at the first (EDT) one.
  EXPECT_EQ(next_n("0 30 1 * * *", "2026-10-31T00:00:00.000Z", 3, "America/New_York"),
            (std::vector<std::string>{"2026-10-31T05:30:00.000Z", "2026-11-01T05:30:00.000Z",
                                      "2026-11-02T06:30:00.000Z"}));
  // An every-30-minutes job keeps its period through the repeated hour.
  EXPECT_EQ(next_n("0 0,30 * * * *", "2026-11-01T04:45:00.000Z", 5, "America/New_York"),
            (std::vector<std::string>{"2026-11-01T05:00:00.000Z", "2026-11-01T05:30:00.000Z",
                                      "2026-11-01T06:00:00.000Z", "2026-11-01T06:30:00.000Z",
                                      "2026-11-01T07:00:00.000Z"}));
}

// Europe/Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
TEST(CronTest, DstBerlin) {
  EXPECT_EQ(next_n("0 30 2 * * *", "2026-03-28T12:00:00.000Z", 2, "Europe/Berlin"),
            (std::vector<std::string>{"2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"}));
  EXPECT_EQ(next_n("0 30 2 * * *", "2026-10-24T12:00:00.000Z", 2, "Europe/Berlin"),
            (std::vector<std::string>{"2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"}));
  // Every 5 s across the fall-back: ticks stay 5 real seconds apart.
  auto ticks = next_n("*/5 * * * * *", "2026-10-25T00:59:50.000Z", 4, "Europe/Berlin");
  EXPECT_EQ(ticks, (std::vector<std::string>{"2026-10-25T00:59:55.000Z", "2026-10-25T01:00:00.000Z",
                                             "2026-10-25T01:00:05.000Z", "2026-10-25T01:00:10.000Z"}));
}

TEST(CronTest, UnknownZoneIsAnError) {
  EXPECT_FALSE(TimeZone::locate("Mars/Olympus_Mons").ok());
  EXPECT_TRUE(TimeZone::locate("Asia/Kolkata").ok());
  // Half-hour offsets: 09:00 in Kolkata is 03:30Z.
  EXPECT_EQ(next_n("0 0 9 * * *", "2026-03-01T00:00:00.000Z", 1, "Asia/Kolkata"),
            (std::vector<std::string>{"2026-03-01T03:30:00.000Z"}));
}

}  // namespace
}  // namespace attune::sensor
