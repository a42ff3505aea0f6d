// Admission decisions (API.md §15, DESIGN.md §9): pure functions of (counters, input, limits,
// now), table-tested in tests/unit/admission/. The admission stage (admission_processor.h) loads
// the counters of one action from its store, asks, applies the answer and stores them again.
//
// Model. Executions of one action are in groups (the values of the concurrency policy's
// `parameters`; one group "" without them). A group has `active` admitted executions not yet
// ended and `queued` ones waiting, in FIFO order; the action keeps the totals and the start
// times inside the rate window. Concurrency limits a group's `active`; the rate limit counts
// the action's starts within any `window_seconds` (sliding). Nobody overtakes a queued execution
// of its own group, and, under a rate limit, of any group.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "processors/admission/policy.h"

namespace attune::admission {

// The limits in force for one action (from its Effective policy at decision time).
struct Limits {
  std::optional<int64_t> concurrency;  // per group
  bool cancel = false;                 // concurrency method "cancel"
  std::optional<RateSpec> rate;
};
Limits limits_of(const Effective& e);

struct Counters {
  int64_t active = 0;  // admitted, not yet ended (all groups)
  int64_t queued = 0;  // waiting (all groups)
  int64_t total_enqueued = 0;
  int64_t total_completed = 0;
  std::vector<int64_t> starts;  // start times (epoch ms) inside the rate window, ascending
};

struct GroupCounters {
  int64_t active = 0;
  int64_t queued = 0;
};

enum class Verdict { kAdmit, kEnqueue, kReject };

// A new execution in group `g`: admitted now, queued, or (concurrency method cancel, limit
// reached) rejected. Updates the counters (a rejected one passes no admission: nothing counted).
Verdict decide_request(Counters& a, GroupCounters& g, const Limits& l, int64_t now_ms);

// An execution that started without admission (before its action's policy existed or was
// enabled) counts as admitted from now on: active, and passed admission.
void decide_adopt(Counters& a, GroupCounters& g);

// An admitted execution ended (`was_active`) or a queued one left the queue (cancelled): either
// way it counts as completed.
void decide_release(Counters& a, GroupCounters& g, bool was_active);

// A group with executions waiting, and the action-wide sequence number of its oldest one.
struct Waiting {
  std::string group;
  int64_t head_seq = 0;
  GroupCounters counters;
};

struct Next {
  std::optional<size_t> admit;       // index into `waiting` whose head starts now
  std::optional<int64_t> wake_at_ms;  // nothing now: the rate window frees a start then
};

// Which waiting execution starts next, if any: the oldest head among the groups below their
// concurrency limit, while the rate window allows a start. On admission the chosen group's and
// the action's counters move one from queued to active and the start is recorded; the caller
// pops that head (updating its head_seq, or removing the group when empty) and asks again.
Next next_admission(Counters& a, std::vector<Waiting>& waiting, const Limits& l, int64_t now_ms);

// Drops start times older than the window (all of them without a rate limit).
void prune_starts(Counters& a, const Limits& l, int64_t now_ms);

}  // namespace attune::admission
