"""T1.1 Interval timer automation: ticks on absolute times, each event → enforcement → execution."""
from __future__ import annotations

import time

from attune_e2e import expect_error
from timer_rig import assert_unique, percentile, scheduled_ms, ticks, timer_rule, wait_ticks


def test_interval_timer_fires_n_times_with_precision(api):
    t = timer_rule(api, "core.intervaltimer", {"unit": "seconds", "interval": 1}, script="echo tick")
    created = time.time()
    time.sleep(4.5)
    got = ticks(api, t.rule_ref)
    # 4.5 s after creation: ticks at +1, +2, +3, +4 (±1 for the moment we looked).
    assert 3 <= len(got) <= 5, got
    assert_unique(got)
    sched = [scheduled_ms(x) for x in got]
    # Absolute schedule: exactly one interval apart, first one interval after the rule was created.
    assert all(b - a == 1000 for a, b in zip(sched, sched[1:])), sched
    assert abs(sched[0] / 1000 - (created + 1)) < 1.0, (sched[0], created)
    delays = [x["delay_ms"] for x in got]
    print(f"interval timer delay_ms p50={percentile(delays, 0.5)} max={max(delays)}")
    assert max(delays) < 500, delays  # precision target is 10 ms idle; CI machines are shared
    for x in got:
        assert x["type"] == "interval" and x["rule_ref"] == t.rule_ref and x["interval"] == 1
        assert x["unit"] == "seconds" and x["fired_at"] >= x["scheduled_at"]
    # Each event: enforcement → completed execution.
    execs = api.wait_rule_executions(t.rule_ref, len(got))
    assert all(e["status"] == "completed" for e in execs), execs
    ev = api.get_data(f"/api/v1/events/{got[0]['event']}")
    assert ev["trigger_ref"] == "core.intervaltimer" and ev["rule_ref"] == t.rule_ref
    assert ev["source_ref"] == "core.timer_sensor" and ev["payload"]["type"] == "interval"
    api.delete(f"/api/v1/rules/{t.rule_ref}")


def test_interval_timer_params_are_validated(api):
    p = api.create_pack()["ref"]
    act = api.create_action(f"{p}.noop", "true")
    for params, field in [({"unit": "days", "interval": 1}, "trigger_params.unit"),
                          ({"unit": "seconds", "interval": 0}, "trigger_params.interval"),
                          ({"unit": "seconds"}, "trigger_params.interval"),
                          ({"unit": "seconds", "interval": 1, "catch_up": "some"},
                           "trigger_params.catch_up")]:
        r = api.post("/api/v1/rules", json={"ref": "bad", "pack_ref": p, "label": "bad",
                                            "trigger_ref": "core.intervaltimer",
                                            "action_ref": act["ref"], "trigger_params": params})
        body = expect_error(r, 422, "VALIDATION_ERROR")
        assert field in body["details"]["fields"], body
