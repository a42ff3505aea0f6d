"""T1.2 Date timer (one-shot): fires once at the set time, never again; far-future dates never early."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from attune_e2e import expect_error, rfc3339
from timer_rig import assert_unique, scheduled_ms, ticks, timer_rule, wait_ticks


def test_date_timer_fires_once_at_the_set_time(api):
    fire_at = datetime.now(timezone.utc) + timedelta(seconds=2)
    t = timer_rule(api, "core.datetimetimer", {"fire_at": rfc3339(fire_at)})
    far = timer_rule(api, "core.datetimetimer",
                     {"fire_at": rfc3339(datetime.now(timezone.utc) + timedelta(days=30))},
                     pack_ref=t.pack_ref)
    got = wait_ticks(api, t.rule_ref, 1, timeout=10)
    assert abs(scheduled_ms(got[0]) - int(fire_at.timestamp() * 1000)) <= 1, got
    assert got[0]["type"] == "datetime" and got[0]["delay_ms"] < 500, got
    api.wait_rule_executions(t.rule_ref, 1)
    time.sleep(2.5)  # no second fire
    assert len(ticks(api, t.rule_ref)) == 1
    assert len(api.items("/api/v1/executions", rule_ref=t.rule_ref)) == 1
    assert ticks(api, far.rule_ref) == []  # far future: not early


def test_date_timer_wall_time_in_a_zone(api):
    # No offset ⇒ read in `timezone`: 2 s from now on Tokyo's wall clock.
    tokyo = datetime.now(timezone(timedelta(hours=9))) + timedelta(seconds=2)
    wall = tokyo.strftime("%Y-%m-%dT%H:%M:%S.") + f"{tokyo.microsecond // 1000:03d}"
    t = timer_rule(api, "core.datetimetimer", {"fire_at": wall, "timezone": "Asia/Tokyo"})
    got = wait_ticks(api, t.rule_ref, 1, timeout=10)
    assert abs(scheduled_ms(got[0]) - int(tokyo.timestamp() * 1000)) <= 1, got


def test_date_timer_params_are_validated(api):
    p = api.create_pack()["ref"]
    act = api.create_action(f"{p}.noop", "true")
    for params, field in [({"fire_at": "tomorrow"}, "trigger_params.fire_at"),
                          ({}, "trigger_params.fire_at"),
                          ({"fire_at": rfc3339(), "timezone": "Nowhere/City"}, "trigger_params.timezone")]:
        r = api.post("/api/v1/rules", json={"ref": "bad", "pack_ref": p, "label": "bad",
                                            "trigger_ref": "core.datetimetimer",
                                            "action_ref": act["ref"], "trigger_params": params})
        assert field in expect_error(r, 422, "VALIDATION_ERROR")["details"]["fields"]
