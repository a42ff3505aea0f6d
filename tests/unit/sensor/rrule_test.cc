// RFC 5545 recurrence rules.
#include <gtest/gtest.h>

#include "processors/sensor/rrule.h"
#include "processors/sensor/schedule.h"
#include "topology/core/time.h"

namespace attune::sensor {
namespace {

int64_t ms(const char* rfc3339) { return *parse_rfc3339_ms(rfc3339); }

std::vector<std::string> ticks(const char* rrule, const char* since, int n,
                               const char* zone = "UTC") {
  auto s = make_schedule(kRruleTimer, Json{{"rrule", rrule}, {"timezone", zone}}, ms(since));
  EXPECT_TRUE(s.ok()) << rrule << ": " << (s.ok() ? "" : s.error().message);
  std::vector<std::string> out;
  auto next = (*s)->first(ms(since));
  while (next && static_cast<int>(out.size()) < n) {
    out.push_back(format_rfc3339_ms(*next));
    next = (*s)->next_after(*next);
  }
  return out;
}

TEST(RruleTest, DailyByHourWithoutDtstartIsOnTheHour) {
  EXPECT_EQ(ticks("FREQ=DAILY;BYHOUR=9", "2026-03-01T10:23:17.500Z", 2),
            (std::vector<std::string>{"2026-03-02T09:00:00.000Z", "2026-03-03T09:00:00.000Z"}));
}

TEST(RruleTest, SecondlyIntervalAndCount) {
  EXPECT_EQ(ticks("FREQ=SECONDLY;INTERVAL=2;COUNT=3", "2026-03-01T10:00:00.200Z", 10),
            (std::vector<std::string>{"2026-03-01T10:00:01.000Z", "2026-03-01T10:00:03.000Z",
                                      "2026-03-01T10:00:05.000Z"}));
}

TEST(RruleTest, UntilIsInclusive) {
  EXPECT_EQ(ticks("FREQ=MINUTELY;UNTIL=20260301T100300Z", "2026-03-01T10:00:30.000Z", 10),
            (std::vector<std::string>{"2026-03-01T10:01:00.000Z", "2026-03-01T10:02:00.000Z",
                                      "2026-03-01T10:03:00.000Z"}));
}

TEST(RruleTest, MonthlyNthWeekdayAndSetPos) {
  // Second Tuesday of each month.
  EXPECT_EQ(ticks("FREQ=MONTHLY;BYDAY=2TU;BYHOUR=8", "2026-03-01T00:00:00.000Z", 3),
            (std::vector<std::string>{"2026-03-10T08:00:00.000Z", "2026-04-14T08:00:00.000Z",
                                      "2026-05-12T08:00:00.000Z"}));
  // Last weekday of the month.
  EXPECT_EQ(ticks("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "2026-01-01T00:00:00.000Z", 3),
            (std::vector<std::string>{"2026-01-30T00:00:00.000Z", "2026-02-27T00:00:00.000Z",
                                      "2026-03-31T00:00:00.000Z"}));
  // Last day of the month.
  EXPECT_EQ(ticks("FREQ=MONTHLY;BYMONTHDAY=-1", "2026-01-15T00:00:00.000Z", 2),
            (std::vector<std::string>{"2026-01-31T00:00:00.000Z", "2026-02-28T00:00:00.000Z"}));
}

TEST(RruleTest, YearlyByMonthByYearDayByWeekNo) {
  EXPECT_EQ(ticks("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "2026-01-01T00:00:00.000Z", 2),
            (std::vector<std::string>{"2028-02-29T00:00:00.000Z", "2032-02-29T00:00:00.000Z"}));
  EXPECT_EQ(ticks("FREQ=YEARLY;BYYEARDAY=100", "2026-01-01T00:00:00.000Z", 1),
            (std::vector<std::string>{"2026-04-10T00:00:00.000Z"}));
  // Monday of ISO week 20.
  EXPECT_EQ(ticks("FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", "2026-01-01T00:00:00.000Z", 1),
            (std::vector<std::string>{"2026-05-11T00:00:00.000Z"}));
}

TEST(RruleTest, WeeklyWithExplicitDtstart) {
  EXPECT_EQ(ticks("DTSTART:20260302T070000Z\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE",
                  "2026-03-01T00:00:00.000Z", 4),
            (std::vector<std::string>{"2026-03-02T07:00:00.000Z", "2026-03-04T07:00:00.000Z",
                                      "2026-03-16T07:00:00.000Z", "2026-03-18T07:00:00.000Z"}));
}

TEST(RruleTest, TimeZoneAcrossDst) {
  // 09:00 New York wall time before and after the 2026-03-08 change.
  EXPECT_EQ(ticks("FREQ=DAILY;BYHOUR=9", "2026-03-06T20:00:00.000Z", 3, "America/New_York"),
            (std::vector<std::string>{"2026-03-07T14:00:00.000Z", "2026-03-08T13:00:00.000Z",
                                      "2026-03-09T13:00:00.000Z"}));
}

TEST(RruleTest, RejectsBadRules) {
  for (const char* bad : {"", "INTERVAL=2", "FREQ=SOMETIMES", "FREQ=DAILY;COUNT=0",
                          "FREQ=DAILY;COUNT=2;UNTIL=20260101T000000Z", "FREQ=DAILY;BYHOUR=24",
                          "FREQ=DAILY;BYDAY=1MO", "FREQ=DAILY;BYWEEKNO=1", "FREQ=DAILY;X=1",
                          "FREQ=WEEKLY;BYMONTHDAY=1", "FREQ=DAILY;FREQ=DAILY"}) {
    EXPECT_FALSE(RecurrenceRule::parse(bad).ok()) << "'" << bad << "' parsed";
  }
}

}  // namespace
}  // namespace attune::sensor
