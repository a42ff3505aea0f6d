"""T3.3 Concurrent timers: timers at different intervals fire independently with correct counts."""
from __future__ import annotations

import time

from timer_rig import assert_unique, scheduled_ms, ticks, timer_rule


def test_three_timers_at_different_intervals(api):
    p = api.create_pack()["ref"]
    timers = {n: timer_rule(api, "core.intervaltimer", {"unit": "seconds", "interval": n}, pack_ref=p)
              for n in (1, 2, 3)}
    start = time.time()
    time.sleep(6.4)
    for n, t in timers.items():
        elapsed = time.time() - start
        got = ticks(api, t.rule_ref)
        assert_unique(got)
        assert abs(len(got) - int(elapsed // n)) <= 1, (n, elapsed, got)
        sched = [scheduled_ms(x) for x in got]
        assert all(b - a == n * 1000 for a, b in zip(sched, sched[1:])), (n, sched)  # no drift
    for t in timers.values():
        api.delete(f"/api/v1/rules/{t.rule_ref}")
