// The pure admission decisions (processors/admission/admission.h, API.md §15): table-driven with
// an injected `now`, and a randomized property test against a reference model.
#include "processors/admission/admission.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <random>
#include <set>

namespace attune::admission {
namespace {

constexpr int64_t kNow = 1'767'225'600'000;  // 2026-01-01

Limits limits(std::optional<int64_t> concurrency, bool cancel = false,
              std::optional<RateSpec> rate = std::nullopt) {
  Limits l;
  l.concurrency = concurrency;
  l.cancel = cancel;
  l.rate = rate;
  return l;
}
Limits rate_only(int64_t max, int64_t window_s) {
  return limits(std::nullopt, false, RateSpec{max, window_s});
}

Counters counters(int64_t active, int64_t queued, int64_t enqueued, int64_t completed,
                  std::vector<int64_t> starts = {}) {
  Counters c;
  c.active = active;
  c.queued = queued;
  c.total_enqueued = enqueued;
  c.total_completed = completed;
  c.starts = std::move(starts);
  return c;
}

// The starts that count at `now` (a start at t counts while now < t + window).
std::vector<int64_t> counting(const std::vector<int64_t>& starts, const Limits& l, int64_t now) {
  std::vector<int64_t> out;
  if (!l.rate) return out;
  for (int64_t t : starts) {
    if (now < t + l.rate->window_seconds * 1000) out.push_back(t);
  }
  return out;
}

std::string str(Verdict v) {
  switch (v) {
    case Verdict::kAdmit:
      return "admit";
    case Verdict::kEnqueue:
      return "enqueue";
    case Verdict::kReject:
      return "reject";
  }
  return "?";
}

// --- limits_of ------------------------------------------------------------------------------

TEST(LimitsOf, FromEffective) {
  Effective none;
  Limits l = limits_of(none);
  EXPECT_FALSE(l.concurrency);
  EXPECT_FALSE(l.cancel);
  EXPECT_FALSE(l.rate);

  Effective e;
  e.concurrency = ConcurrencySpec{3, true, {"host"}};
  e.rate_limit = RateSpec{5, 60};
  e.retry = RetrySpec{};
  l = limits_of(e);
  EXPECT_EQ(l.concurrency, 3);
  EXPECT_TRUE(l.cancel);
  ASSERT_TRUE(l.rate);
  EXPECT_EQ(l.rate->max_executions, 5);
  EXPECT_EQ(l.rate->window_seconds, 60);

  Effective r;
  r.rate_limit = RateSpec{1, 1};
  l = limits_of(r);
  EXPECT_FALSE(l.concurrency);
  EXPECT_TRUE(l.rate);
}

// --- decide_request ---------------------------------------------------------------------------

struct RequestCase {
  const char* name;
  Counters a;
  GroupCounters g;
  Limits l;
  Verdict want;
  Counters a_after;  // starts compared as those counting at kNow
  GroupCounters g_after;
};

TEST(DecideRequest, Table) {
  const RateSpec r2_10{2, 10};  // 2 starts per 10 s
  // clang-format off
  const std::vector<RequestCase> cases = {
      {"no limits: admit", counters(0, 0, 0, 0), {0, 0}, limits(std::nullopt),
       Verdict::kAdmit, counters(1, 0, 1, 0), {1, 0}},
      {"under the limit: admit", counters(1, 0, 5, 4), {1, 0}, limits(2), Verdict::kAdmit,
       counters(2, 0, 6, 4), {2, 0}},
      {"at the limit: enqueue", counters(2, 0, 2, 0), {2, 0}, limits(2), Verdict::kEnqueue,
       counters(2, 1, 3, 0), {2, 1}},
      {"above a lowered limit: enqueue", counters(3, 0, 3, 0), {3, 0}, limits(1),
       Verdict::kEnqueue, counters(3, 1, 4, 0), {3, 1}},
      {"at the limit, method cancel: reject, nothing counted", counters(1, 0, 1, 0), {1, 0},
       limits(1, true), Verdict::kReject, counters(1, 0, 1, 0), {1, 0}},
      {"under the limit, method cancel: admit", counters(1, 0, 1, 0), {1, 0}, limits(2, true),
       Verdict::kAdmit, counters(2, 0, 2, 0), {2, 0}},
      {"FIFO: the group has queued ones (below the limit): enqueue", counters(1, 2, 3, 0),
       {1, 2}, limits(3), Verdict::kEnqueue, counters(1, 3, 4, 0), {1, 3}},
      {"FIFO: the group has queued ones, no active: enqueue", counters(0, 1, 1, 0), {0, 1},
       limits(1), Verdict::kEnqueue, counters(0, 2, 2, 0), {0, 2}},
      {"another group full and queued: admit (no rate limit)", counters(1, 4, 5, 0), {0, 0},
       limits(1), Verdict::kAdmit, counters(2, 4, 6, 0), {1, 0}},
      {"limit counts per group, not per action", counters(5, 0, 5, 0), {0, 0}, limits(1),
       Verdict::kAdmit, counters(6, 0, 6, 0), {1, 0}},
      {"rate window full: enqueue", counters(2, 0, 2, 0, {kNow - 5000, kNow - 1000}), {2, 0},
       limits(std::nullopt, false, r2_10), Verdict::kEnqueue,
       counters(2, 1, 3, 0, {kNow - 5000, kNow - 1000}), {2, 1}},
      {"rate: a start exactly one window ago no longer counts: admit",
       counters(0, 0, 2, 2, {kNow - 10000, kNow - 1000}), {0, 0},
       limits(std::nullopt, false, r2_10), Verdict::kAdmit,
       counters(1, 0, 3, 2, {kNow - 1000, kNow}), {1, 0}},
      {"rate: a start 1 ms short of a window ago still counts: enqueue",
       counters(0, 0, 2, 2, {kNow - 9999, kNow - 1}), {0, 0},
       limits(std::nullopt, false, r2_10), Verdict::kEnqueue,
       counters(0, 1, 3, 2, {kNow - 9999, kNow - 1}), {0, 1}},
      {"rate: old starts only: admit", counters(0, 0, 2, 2, {kNow - 20000, kNow - 15000}),
       {0, 0}, limits(std::nullopt, false, r2_10), Verdict::kAdmit,
       counters(1, 0, 3, 2, {kNow}), {1, 0}},
      {"rate: room, but another group has queued ones: enqueue",
       counters(0, 1, 1, 0, {}), {0, 0}, limits(std::nullopt, false, r2_10), Verdict::kEnqueue,
       counters(0, 2, 2, 0, {}), {0, 1}},
      {"rate: room, this group has queued ones: enqueue", counters(0, 1, 1, 0, {}), {0, 1},
       limits(std::nullopt, false, r2_10), Verdict::kEnqueue, counters(0, 2, 2, 0, {}), {0, 2}},
      {"rate and concurrency: concurrency full: enqueue", counters(1, 0, 1, 0, {kNow - 20000}),
       {1, 0}, limits(1, false, r2_10), Verdict::kEnqueue, counters(1, 1, 2, 0, {}), {1, 1}},
      {"rate and concurrency: rate full: enqueue",
       counters(0, 0, 2, 2, {kNow - 3000, kNow - 2000}), {0, 0}, limits(5, false, r2_10),
       Verdict::kEnqueue, counters(0, 1, 3, 2, {kNow - 3000, kNow - 2000}), {0, 1}},
      {"rate full, method cancel below the concurrency limit: enqueue, not reject",
       counters(0, 0, 2, 2, {kNow - 3000, kNow - 2000}), {0, 0}, limits(5, true, r2_10),
       Verdict::kEnqueue, counters(0, 1, 3, 2, {kNow - 3000, kNow - 2000}), {0, 1}},
      {"rate room, concurrency full, method cancel: reject", counters(1, 0, 1, 0, {}), {1, 0},
       limits(1, true, r2_10), Verdict::kReject, counters(1, 0, 1, 0, {}), {1, 0}},
      {"rate and concurrency both allow: admit, start recorded",
       counters(1, 0, 1, 0, {kNow - 500}), {0, 0}, limits(2, false, r2_10), Verdict::kAdmit,
       counters(2, 0, 2, 0, {kNow - 500, kNow}), {1, 0}},
  };
  // clang-format on
  for (const RequestCase& c : cases) {
    SCOPED_TRACE(c.name);
    Counters a = c.a;
    GroupCounters g = c.g;
    EXPECT_EQ(str(decide_request(a, g, c.l, kNow)), str(c.want));
    EXPECT_EQ(a.active, c.a_after.active);
    EXPECT_EQ(a.queued, c.a_after.queued);
    EXPECT_EQ(a.total_enqueued, c.a_after.total_enqueued);
    EXPECT_EQ(a.total_completed, c.a_after.total_completed);
    EXPECT_EQ(counting(a.starts, c.l, kNow), counting(c.a_after.starts, c.l, kNow));
    EXPECT_TRUE(std::is_sorted(a.starts.begin(), a.starts.end()));
    if (!c.l.rate) {
      EXPECT_TRUE(a.starts.empty());  // no rate limit: no start times kept
    }
    EXPECT_EQ(g.active, c.g_after.active);
    EXPECT_EQ(g.queued, c.g_after.queued);
  }
}

// At most max_executions starts in any window: requests every 100 ms for a minute.
TEST(DecideRequest, SlidingWindowNeverExceeded) {
  const Limits l = rate_only(3, 2);
  Counters a;
  std::vector<int64_t> admitted;
  for (int64_t t = kNow; t < kNow + 60'000; t += 100) {
    GroupCounters g;  // each its own group: the rate limit alone decides
    a.queued = 0;     // (no queue: the enqueued ones are dropped from the picture)
    if (decide_request(a, g, l, t) == Verdict::kAdmit) admitted.push_back(t);
  }
  for (size_t i = 0; i < admitted.size(); ++i) {
    size_t in = 0;
    for (size_t j = i; j < admitted.size() && admitted[j] < admitted[i] + 2000; ++j) ++in;
    EXPECT_LE(in, 3u) << "window from " << admitted[i] - kNow;
  }
  // The window is used fully: 3 starts every 2 s.
  EXPECT_EQ(admitted.size(), 90u);
  EXPECT_EQ(admitted[0], kNow);
  EXPECT_EQ(admitted[3], kNow + 2000);
}

// --- decide_release ---------------------------------------------------------------------------

TEST(DecideRelease, Table) {
  struct Case {
    const char* name;
    Counters a;
    GroupCounters g;
    bool was_active;
    Counters a_after;
    GroupCounters g_after;
  };
  // clang-format off
  const std::vector<Case> cases = {
      {"an active one ended", counters(2, 1, 5, 2), {2, 1}, true, counters(1, 1, 5, 3), {1, 1}},
      {"a queued one left the queue", counters(2, 1, 5, 2), {2, 1}, false,
       counters(2, 0, 5, 3), {2, 0}},
      {"the last active one", counters(1, 0, 1, 0), {1, 0}, true, counters(0, 0, 1, 1), {0, 0}},
      {"the action counts all groups", counters(3, 2, 9, 4), {1, 1}, false,
       counters(3, 1, 9, 5), {1, 0}},
  };
  // clang-format on
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Counters a = c.a;
    GroupCounters g = c.g;
    decide_release(a, g, c.was_active);
    EXPECT_EQ(a.active, c.a_after.active);
    EXPECT_EQ(a.queued, c.a_after.queued);
    EXPECT_EQ(a.total_enqueued, c.a_after.total_enqueued);
    EXPECT_EQ(a.total_completed, c.a_after.total_completed);
    EXPECT_EQ(g.active, c.g_after.active);
    EXPECT_EQ(g.queued, c.g_after.queued);
  }
}

// --- next_admission ---------------------------------------------------------------------------

struct NextCase {
  const char* name;
  Counters a;
  std::vector<Waiting> waiting;
  Limits l;
  std::optional<size_t> admit;
  std::optional<int64_t> wake_at;
};

TEST(NextAdmission, Table) {
  const RateSpec r1_10{1, 10}, r2_10{2, 10};
  // clang-format off
  const std::vector<NextCase> cases = {
      {"nothing waiting", counters(0, 0, 0, 0), {}, limits(1), std::nullopt, std::nullopt},
      {"one group below its limit", counters(0, 1, 2, 1), {{"", 7, {0, 1}}}, limits(1), 0,
       std::nullopt},
      {"one group at its limit", counters(1, 1, 2, 0), {{"", 7, {1, 1}}}, limits(1),
       std::nullopt, std::nullopt},
      {"oldest head first across groups", counters(0, 3, 3, 0),
       {{"a", 5, {0, 2}}, {"b", 3, {0, 1}}, {"c", 9, {0, 1}}}, limits(1), 1, std::nullopt},
      {"a full group is skipped", counters(1, 3, 4, 0),
       {{"a", 5, {0, 2}}, {"b", 3, {1, 1}}, {"c", 9, {0, 1}}}, limits(1), 0, std::nullopt},
      {"all groups full: nothing, no wake", counters(2, 2, 4, 0),
       {{"a", 5, {1, 1}}, {"b", 3, {1, 1}}}, limits(1), std::nullopt, std::nullopt},
      {"a group with nothing queued is skipped", counters(0, 1, 1, 0),
       {{"a", 1, {0, 0}}, {"b", 4, {0, 1}}}, limits(1), 1, std::nullopt},
      {"no concurrency limit, rate window has room", counters(0, 2, 2, 0, {kNow - 1000}),
       {{"a", 2, {0, 1}}, {"b", 1, {0, 1}}}, limits(std::nullopt, false, r2_10), 1,
       std::nullopt},
      {"rate window full: nothing; wake when the oldest start leaves the window",
       counters(1, 1, 2, 0, {kNow - 3000}), {{"", 1, {1, 1}}},
       limits(std::nullopt, false, r1_10), std::nullopt, kNow - 3000 + 10000},
      {"rate window full with two starts: wake at the oldest + window",
       counters(2, 1, 3, 0, {kNow - 4000, kNow - 1000}), {{"", 1, {2, 1}}},
       limits(std::nullopt, false, r2_10), std::nullopt, kNow + 6000},
      {"rate window full even when groups have room",
       counters(1, 2, 3, 0, {kNow - 9999}), {{"a", 1, {0, 1}}, {"b", 2, {1, 1}}},
       limits(5, false, r1_10), std::nullopt, kNow + 1},
      {"an expired start frees the window", counters(1, 1, 2, 0, {kNow - 10000}),
       {{"", 1, {1, 1}}}, limits(std::nullopt, false, r1_10), 0, std::nullopt},
      {"rate room but every group full: nothing, no wake", counters(2, 2, 4, 0, {}),
       {{"a", 1, {1, 1}}, {"b", 2, {1, 1}}}, limits(1, false, r2_10), std::nullopt,
       std::nullopt},
  };
  // clang-format on
  for (const NextCase& c : cases) {
    SCOPED_TRACE(c.name);
    Counters a = c.a;
    std::vector<Waiting> w = c.waiting;
    const Next n = next_admission(a, w, c.l, kNow);
    EXPECT_EQ(n.admit, c.admit);
    EXPECT_EQ(n.wake_at_ms, c.wake_at);
    if (n.admit) {
      // The chosen group and the action move one from queued to active; the start is recorded.
      const GroupCounters& before = c.waiting[*n.admit].counters;
      EXPECT_EQ(w[*n.admit].counters.active, before.active + 1);
      EXPECT_EQ(w[*n.admit].counters.queued, before.queued - 1);
      EXPECT_EQ(a.active, c.a.active + 1);
      EXPECT_EQ(a.queued, c.a.queued - 1);
      if (c.l.rate) {
        ASSERT_FALSE(a.starts.empty());
        EXPECT_EQ(a.starts.back(), kNow);
      }
    } else {
      EXPECT_EQ(a.active, c.a.active);
      EXPECT_EQ(a.queued, c.a.queued);
    }
    // Totals never move on admission from the queue.
    EXPECT_EQ(a.total_enqueued, c.a.total_enqueued);
    EXPECT_EQ(a.total_completed, c.a.total_completed);
    for (size_t i = 0; i < w.size(); ++i) {
      if (n.admit && i == *n.admit) continue;
      EXPECT_EQ(w[i].counters.active, c.waiting[i].counters.active) << i;
      EXPECT_EQ(w[i].counters.queued, c.waiting[i].counters.queued) << i;
    }
  }
}

// Asking again and again, as the stage does: a rate window of 2 admits two of five, then wakes.
TEST(NextAdmission, DrainsUntilTheWindowIsFull) {
  const Limits l = rate_only(2, 10);
  Counters a = counters(0, 5, 5, 0);
  std::vector<Waiting> w = {{"", 0, {0, 5}}};
  std::vector<int64_t> when;
  int64_t now = kNow;
  for (int step = 0; step < 100 && w[0].counters.queued > 0; ++step) {
    const Next n = next_admission(a, w, l, now);
    if (n.admit) {
      when.push_back(now);
      ++w[0].head_seq;
      continue;
    }
    ASSERT_TRUE(n.wake_at_ms);
    ASSERT_GT(*n.wake_at_ms, now);
    now = *n.wake_at_ms;
  }
  EXPECT_EQ(when, (std::vector<int64_t>{kNow, kNow, kNow + 10000, kNow + 10000, kNow + 20000}));
  EXPECT_EQ(a.active, 5);
  EXPECT_EQ(a.queued, 0);
}

TEST(PruneStarts, Table) {
  Counters a = counters(0, 0, 0, 0, {kNow - 20000, kNow - 10000, kNow - 9999, kNow});
  prune_starts(a, rate_only(5, 10), kNow);
  EXPECT_EQ(a.starts, (std::vector<int64_t>{kNow - 9999, kNow}));
  prune_starts(a, limits(3), kNow);
  EXPECT_TRUE(a.starts.empty());
}

// --- invariants: random operations against a reference model ---------------------------------

// What the admission should do, written plainly: queues of ids per group, active ids per group,
// every start ever made.
struct Model {
  Limits l;
  std::map<std::string, std::deque<int64_t>> queued;
  std::map<std::string, std::set<int64_t>> active;
  std::map<int64_t, int64_t> seq;  // id → order of queueing
  std::vector<int64_t> starts;     // all, ascending
  int64_t enqueued = 0, completed = 0, next_seq = 0;

  int64_t in_window(int64_t now) const {
    if (!l.rate) return 0;
    return std::count_if(starts.begin(), starts.end(),
                         [&](int64_t t) { return now < t + l.rate->window_seconds * 1000; });
  }
  size_t total_queued() const {
    size_t n = 0;
    for (auto& [g, q] : queued) n += q.size();
    return n;
  }
  size_t total_active() const {
    size_t n = 0;
    for (auto& [g, s] : active) n += s.size();
    return n;
  }
  bool group_full(const std::string& g) const {
    auto it = active.find(g);
    const int64_t n = it == active.end() ? 0 : static_cast<int64_t>(it->second.size());
    return l.concurrency && n >= *l.concurrency;
  }
  bool rate_full(int64_t now) const { return l.rate && in_window(now) >= l.rate->max_executions; }

  Verdict request(int64_t id, const std::string& g, int64_t now) {
    if (group_full(g) && l.cancel) return Verdict::kReject;
    ++enqueued;
    if (group_full(g) || rate_full(now) || !queued[g].empty() || (l.rate && total_queued() > 0)) {
      queued[g].push_back(id);
      seq[id] = next_seq++;
      return Verdict::kEnqueue;
    }
    active[g].insert(id);
    if (l.rate) starts.push_back(now);
    return Verdict::kAdmit;
  }
  // The group whose head starts next, or "" with ok=false; wake when the rate window is full.
  std::optional<std::string> next(int64_t now, std::optional<int64_t>& wake) const {
    wake.reset();
    if (total_queued() == 0) return std::nullopt;
    if (rate_full(now)) {
      int64_t oldest = INT64_MAX;
      for (int64_t t : starts) {
        if (now < t + l.rate->window_seconds * 1000) oldest = std::min(oldest, t);
      }
      wake = oldest + l.rate->window_seconds * 1000;
      return std::nullopt;
    }
    std::optional<std::string> best;
    int64_t best_seq = INT64_MAX;
    for (auto& [g, q] : queued) {
      if (q.empty() || group_full(g)) continue;
      if (seq.at(q.front()) < best_seq) {
        best_seq = seq.at(q.front());
        best = g;
      }
    }
    return best;
  }
};

struct PropertyConfig {
  const char* name;
  Limits l;
  int groups;
};

TEST(AdmissionProperty, RandomOperationsKeepTheInvariants) {
  const std::vector<PropertyConfig> configs = {
      {"concurrency 1, one group", limits(1), 1},
      {"concurrency 2, three groups", limits(2), 3},
      {"concurrency 1, cancel, two groups", limits(1, true), 2},
      {"rate 3/2s", rate_only(3, 2), 1},
      {"rate 2/1s, three groups", rate_only(2, 1), 3},
      {"concurrency 2 and rate 4/3s, three groups", limits(2, false, RateSpec{4, 3}), 3},
      {"concurrency 1 cancel and rate 2/1s, two groups", limits(1, true, RateSpec{2, 1}), 2},
      {"no limits", limits(std::nullopt), 2},
  };
  // Fixed, so a failure repeats; ATTUNE_TEST_SEED explores others.
  const char* env_seed = std::getenv("ATTUNE_TEST_SEED");
  const uint32_t seed =
      env_seed ? static_cast<uint32_t>(std::strtoul(env_seed, nullptr, 10)) : 20261207;
  std::printf("admission property test: seed %u\n", seed);
  for (const PropertyConfig& cfg : configs) {
    SCOPED_TRACE(cfg.name);
    std::mt19937 rng(seed);
    Model m;
    m.l = cfg.l;
    Counters a;
    std::map<std::string, GroupCounters> gc;
    std::set<int64_t> rejected;
    int64_t now = kNow, next_id = 1;
    std::map<std::string, std::vector<int64_t>> admitted_order;  // per group, from the queue
    auto group_name = [&](int i) { return i == 0 ? std::string() : "g" + std::to_string(i); };
    int64_t admits = 0, enqueues = 0, rejects = 0, releases = 0, cancels = 0, pumps = 0,
            from_queue = 0;

    for (int step = 0; step < 4000; ++step) {
      const int op = std::uniform_int_distribution<int>(0, 99)(rng);
      if (op < 30) {  // a request
        const std::string g =
            group_name(std::uniform_int_distribution<int>(0, cfg.groups - 1)(rng));
        const int64_t id = next_id++;
        const Verdict want = m.request(id, g, now);
        const Verdict got = decide_request(a, gc[g], cfg.l, now);
        ASSERT_EQ(str(got), str(want)) << "step " << step << " id " << id << " group " << g;
        if (got == Verdict::kAdmit) ++admits;
        if (got == Verdict::kEnqueue) ++enqueues;
        if (got == Verdict::kReject) ++rejects;
      } else if (op < 55) {  // an active one ends
        std::vector<std::pair<std::string, int64_t>> all;
        for (auto& [g, s] : m.active) {
          for (int64_t id : s) all.emplace_back(g, id);
        }
        if (all.empty()) continue;
        auto [g, id] = all[std::uniform_int_distribution<size_t>(0, all.size() - 1)(rng)];
        m.active[g].erase(id);
        ++m.completed;
        decide_release(a, gc[g], true);
        ++releases;
      } else if (op < 63) {  // a queued one is cancelled (anywhere in its queue)
        std::vector<std::pair<std::string, size_t>> all;
        for (auto& [g, q] : m.queued) {
          for (size_t i = 0; i < q.size(); ++i) all.emplace_back(g, i);
        }
        if (all.empty()) continue;
        auto [g, i] = all[std::uniform_int_distribution<size_t>(0, all.size() - 1)(rng)];
        m.queued[g].erase(m.queued[g].begin() + static_cast<std::ptrdiff_t>(i));
        ++m.completed;
        decide_release(a, gc[g], false);
        ++cancels;
      } else if (op < 88) {  // the stage pumps: start whatever may start now
        ++pumps;
        for (int guard = 0;; ++guard) {
          ASSERT_LT(guard, 10000);
          std::vector<Waiting> waiting;
          for (auto& [g, q] : m.queued) {
            if (!q.empty()) waiting.push_back(Waiting{g, m.seq.at(q.front()), gc[g]});
          }
          std::optional<int64_t> want_wake;
          const std::optional<std::string> want = m.next(now, want_wake);
          const Next n = next_admission(a, waiting, cfg.l, now);
          ASSERT_EQ(n.admit.has_value(), want.has_value()) << "step " << step;
          if (!n.admit) {
            EXPECT_EQ(n.wake_at_ms, want_wake) << "step " << step;
            break;
          }
          const Waiting& w = waiting[*n.admit];
          ASSERT_EQ(w.group, *want) << "step " << step;
          gc[w.group] = w.counters;
          const int64_t id = m.queued[w.group].front();
          m.queued[w.group].pop_front();
          m.active[w.group].insert(id);
          if (cfg.l.rate) m.starts.push_back(now);
          admitted_order[w.group].push_back(id);
          ++from_queue;
        }
      } else {  // time passes
        now += std::uniform_int_distribution<int64_t>(0, 4000)(rng);
      }

      // The invariants, after every operation.
      ASSERT_EQ(a.total_enqueued, a.total_completed + a.active + a.queued) << "step " << step;
      ASSERT_EQ(a.total_enqueued, m.enqueued);
      ASSERT_EQ(a.total_completed, m.completed);
      ASSERT_EQ(a.active, static_cast<int64_t>(m.total_active())) << "step " << step;
      ASSERT_EQ(a.queued, static_cast<int64_t>(m.total_queued())) << "step " << step;
      int64_t sum_active = 0, sum_queued = 0;
      for (auto& [g, c] : gc) {
        ASSERT_EQ(c.active, static_cast<int64_t>(m.active[g].size())) << g << " step " << step;
        ASSERT_EQ(c.queued, static_cast<int64_t>(m.queued[g].size())) << g << " step " << step;
        if (cfg.l.concurrency) {
          ASSERT_LE(c.active, *cfg.l.concurrency) << g;
        }
        sum_active += c.active;
        sum_queued += c.queued;
      }
      ASSERT_EQ(sum_active, a.active);
      ASSERT_EQ(sum_queued, a.queued);
      ASSERT_TRUE(std::is_sorted(a.starts.begin(), a.starts.end()));
    }
    // The rate limit held over the whole run: no window holds more than max_executions starts.
    if (cfg.l.rate) {
      const int64_t w = cfg.l.rate->window_seconds * 1000;
      for (size_t i = 0; i < m.starts.size(); ++i) {
        const auto end = std::lower_bound(m.starts.begin(), m.starts.end(), m.starts[i] + w);
        ASSERT_LE(end - (m.starts.begin() + static_cast<std::ptrdiff_t>(i)),
                  cfg.l.rate->max_executions)
            << "window from " << m.starts[i] - kNow;
      }
    }
    // FIFO within every group: admitted from the queue in the order queued.
    for (auto& [g, ids] : admitted_order) {
      EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << "group " << g;
    }
    // The run exercised what it should.
    EXPECT_GT(admits, 0);
    if (cfg.l.concurrency || cfg.l.rate) {
      if (cfg.l.cancel) {
        EXPECT_GT(rejects, 0);
      } else {
        EXPECT_GT(enqueues, 0);
        EXPECT_GT(from_queue, 0);
      }
    }
    std::printf(
        "  %s: %lld admitted, %lld queued, %lld admitted from the queue, %lld rejected, "
        "%lld ended, %lld cancelled, %lld pumps\n",
        cfg.name, static_cast<long long>(admits), static_cast<long long>(enqueues),
        static_cast<long long>(from_queue), static_cast<long long>(rejects),
        static_cast<long long>(releases), static_cast<long long>(cancels),
        static_cast<long long>(pumps));
  }
}

}  // namespace
}  // namespace attune::admission
