// Admission decisions (admission.h).
#include "processors/admission/admission.h"

#include <algorithm>

namespace attune::admission {
namespace {

bool group_full(const GroupCounters& g, const Limits& l) {
  return l.concurrency && g.active >= *l.concurrency;
}

bool rate_full(const Counters& a, const Limits& l) {
  return l.rate && static_cast<int64_t>(a.starts.size()) >= l.rate->max_executions;
}

void admit(Counters& a, GroupCounters& g, const Limits& l, int64_t now_ms) {
  ++g.active;
  ++a.active;
  if (l.rate) a.starts.push_back(now_ms);
}

}  // namespace

Limits limits_of(const Effective& e) {
  Limits l;
  if (e.concurrency) {
    l.concurrency = e.concurrency->limit;
    l.cancel = e.concurrency->cancel;
  }
  l.rate = e.rate_limit;
  return l;
}

void prune_starts(Counters& a, const Limits& l, int64_t now_ms) {
  if (!l.rate) {
    a.starts.clear();
    return;
  }
  const int64_t window_ms = l.rate->window_seconds * 1000;
  // A start at t counts while now < t + window.
  auto keep = std::find_if(a.starts.begin(), a.starts.end(),
                           [&](int64_t t) { return t + window_ms > now_ms; });
  a.starts.erase(a.starts.begin(), keep);
}

Verdict decide_request(Counters& a, GroupCounters& g, const Limits& l, int64_t now_ms) {
  prune_starts(a, l, now_ms);
  const bool full = group_full(g, l);
  if (full && l.cancel) return Verdict::kReject;
  ++a.total_enqueued;
  // FIFO: nobody overtakes a waiting execution of its group (nor, under a rate limit, of any).
  if (full || rate_full(a, l) || g.queued > 0 || (l.rate && a.queued > 0)) {
    ++g.queued;
    ++a.queued;
    return Verdict::kEnqueue;
  }
  admit(a, g, l, now_ms);
  return Verdict::kAdmit;
}

void decide_adopt(Counters& a, GroupCounters& g) {
  ++a.total_enqueued;
  ++g.active;
  ++a.active;
}

void decide_release(Counters& a, GroupCounters& g, bool was_active) {
  if (was_active) {
    g.active = std::max<int64_t>(0, g.active - 1);
    a.active = std::max<int64_t>(0, a.active - 1);
  } else {
    g.queued = std::max<int64_t>(0, g.queued - 1);
    a.queued = std::max<int64_t>(0, a.queued - 1);
  }
  ++a.total_completed;
}

Next next_admission(Counters& a, std::vector<Waiting>& waiting, const Limits& l, int64_t now_ms) {
  prune_starts(a, l, now_ms);
  Next n;
  if (rate_full(a, l)) {
    const bool any = std::any_of(waiting.begin(), waiting.end(),
                                 [](const Waiting& w) { return w.counters.queued > 0; });
    if (any) n.wake_at_ms = a.starts.front() + l.rate->window_seconds * 1000;
    return n;
  }
  for (size_t i = 0; i < waiting.size(); ++i) {
    const Waiting& w = waiting[i];
    if (w.counters.queued <= 0 || group_full(w.counters, l)) continue;
    if (!n.admit || w.head_seq < waiting[*n.admit].head_seq) n.admit = i;
  }
  if (n.admit) {
    GroupCounters& g = waiting[*n.admit].counters;
    --g.queued;
    --a.queued;
    admit(a, g, l, now_ms);
  }
  return n;
}

}  // namespace attune::admission
