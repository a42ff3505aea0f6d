"""T1.3 Cron timer: every-N-seconds, specific seconds lists, 5-field and named expressions."""
from __future__ import annotations

import time

from attune_e2e import expect_error
from timer_rig import assert_unique, scheduled_ms, ticks, timer_rule, wait_ticks


def test_cron_every_two_seconds(api):
    t = timer_rule(api, "core.crontimer", {"expression": "*/2 * * * * *", "timezone": "UTC"})
    time.sleep(5.2)
    got = ticks(api, t.rule_ref)
    assert 2 <= len(got) <= 4, got
    assert_unique(got)
    sched = [scheduled_ms(x) for x in got]
    assert all(s % 2000 == 0 for s in sched), sched
    assert all(b - a == 2000 for a, b in zip(sched, sched[1:])), sched
    assert all(x["type"] == "cron" and x["expression"] == "*/2 * * * * *" for x in got)
    api.delete(f"/api/v1/rules/{t.rule_ref}")


def test_cron_specific_seconds_list(api):
    now = int(time.time())
    wanted = sorted({(now + 2) % 60, (now + 4) % 60})
    expr = f"{','.join(map(str, wanted))} * * * * *"
    t = timer_rule(api, "core.crontimer", {"expression": expr})
    got = wait_ticks(api, t.rule_ref, 2, timeout=10)
    assert sorted(scheduled_ms(x) // 1000 % 60 for x in got[:2]) == wanted, (expr, got)
    assert all(x["delay_ms"] < 500 for x in got), got
    api.delete(f"/api/v1/rules/{t.rule_ref}")


def test_cron_expression_forms_are_accepted_or_refused(api):
    p = api.create_pack()["ref"]
    act = api.create_action(f"{p}.noop", "true")
    ok = ["0 * * * *", "0 0 9 * * MON-FRI", "0 0 12 1 JAN,JUL *", "*/5 * * * * *", "@hourly",
          "0 30 2 * * *"]
    for i, expr in enumerate(ok):
        api.create_rule(f"{p}.ok{i}", "core.crontimer", act["ref"],
                        trigger_params={"expression": expr, "timezone": "Europe/Berlin"}, enabled=False)
    for expr, why in [("61 * * * * *", "out of range"), ("* * * *", "5 or 6 fields"),
                      ("0 0 0 30 2 *", "never matches"), ("0 0 * * * FOO", "unknown value")]:
        r = api.post("/api/v1/rules", json={"ref": "bad", "pack_ref": p, "label": "bad",
                                            "trigger_ref": "core.crontimer", "action_ref": act["ref"],
                                            "trigger_params": {"expression": expr}})
        fields = expect_error(r, 422, "VALIDATION_ERROR")["details"]["fields"]
        assert why in fields["trigger_params.expression"], fields


def test_rrule_timer_runs_like_cron(api):
    t = timer_rule(api, "core.rruletimer", {"rrule": "FREQ=SECONDLY;INTERVAL=2;COUNT=2"})
    got = wait_ticks(api, t.rule_ref, 2, timeout=10)
    time.sleep(2.5)
    got = ticks(api, t.rule_ref)
    assert len(got) == 2, got  # COUNT
    sched = [scheduled_ms(x) for x in got]
    assert sched[1] - sched[0] == 2000 and all(x["type"] == "rrule" for x in got), got
