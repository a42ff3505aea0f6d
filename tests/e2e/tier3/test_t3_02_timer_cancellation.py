"""T3.2 Timer cancellation: disable stops it (in-flight executions finish), enable resumes, delete ends it.

Timing-independent where it can be: a tick that becomes an enforcement was fired before the
disable/delete record was appended (its event carries the definitions offset it was fired at and
the rules stage drops events of a rule disabled at that offset), so every enforcement's fired_at
precedes the acknowledgement of the disable; that holds however loaded the machine is. Waits are
on conditions with generous timeouts; the few fixed sleeps only give a broken timer room to fire.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from attune_e2e import expect, parse_ts, rfc3339
from timer_rig import assert_unique, ticks, timer_rule, wait_ticks

# Time the sensor stage may take to consume a definition record after the API acknowledged it.
STAGE_LAG = 1.0


def _ts(tick: dict, field: str) -> float:
    return parse_ts(tick[field]).timestamp()


def _timer_events_after(api, rule_ref: str, after: float) -> list[dict]:
    """Timer events of the rule created after `after` (seen at the sensor, before any rule matching)."""
    mark = rfc3339(datetime.fromtimestamp(after, timezone.utc))
    rows = api.items("/api/v1/events", trigger_ref="core.intervaltimer", created_after=mark)
    return [r for r in rows if r.get("rule_ref") == rule_ref]


def _in_flight(api, rule_ref: str):
    return [e for e in api.items("/api/v1/executions", rule_ref=rule_ref) if e["status"] == "running"]


def test_disable_enable_delete_lifecycle(api):
    t = timer_rule(api, "core.intervaltimer", {"unit": "seconds", "interval": 1},
                   script="sleep 1.5; echo done")
    running = api.wait_for(lambda: _in_flight(api, t.rule_ref), timeout=30,
                           desc="a running execution")[0]
    expect(api.post(f"/api/v1/rules/{t.rule_ref}/disable"), 200)
    disabled_at = time.time()

    # The execution that was running when the rule was disabled finishes normally. Enforcements of
    # ticks fired just before the disable resolve as `processed` (their execution runs too) or as
    # `disabled` (no execution; API.md §10).
    def settled():
        enfs = api.items("/api/v1/enforcements", rule_ref=t.rule_ref)
        execs = api.items("/api/v1/executions", rule_ref=t.rule_ref)
        processed = [e for e in enfs if e["status"] == "processed"]
        if any(e["status"] == "created" for e in enfs) or len(execs) < len(processed):
            return None
        if any(e["status"] not in ("completed", "failed", "timeout", "cancelled", "abandoned")
               for e in execs):
            return None
        return execs
    execs = api.wait_for(settled, timeout=30, desc="enforcements resolved, executions finished")
    assert running["id"] in {e["id"] for e in execs}, (running, execs)
    assert all(e["status"] == "completed" for e in execs), execs

    time.sleep(2.2)  # room for a (wrongly) still running timer to fire
    before = ticks(api, t.rule_ref)
    assert before and all(_ts(k, "fired_at") <= disabled_at for k in before), \
        f"a disabled timer fired (disabled at {disabled_at}): {before}"
    assert not _timer_events_after(api, t.rule_ref, disabled_at + STAGE_LAG), "a disabled timer fired"

    enable_req = time.time()
    expect(api.post(f"/api/v1/rules/{t.rule_ref}/enable"), 200)
    enable_ack = time.time()
    got = wait_ticks(api, t.rule_ref, len(before) + 2, timeout=30)
    assert_unique(got)
    new = got[len(before):]
    assert [k["event"] for k in got[:len(before)]] == [k["event"] for k in before], got
    # Nothing was caught up for the disabled period: the first new tick is one interval after the
    # enable (the schedule restarts at the enable record's timestamp, between request and ack).
    assert new[0]["caught_up"] is False, new
    assert enable_req + 1 - 0.01 <= _ts(new[0], "scheduled_at") <= enable_ack + 1 + 0.01, \
        (enable_req, enable_ack, new)
    assert abs(_ts(new[1], "scheduled_at") - _ts(new[0], "scheduled_at") - 1.0) < 0.002, new

    expect(api.delete(f"/api/v1/rules/{t.rule_ref}"), 200)
    deleted_at = time.time()
    time.sleep(2.2)  # room for a (wrongly) still running timer to fire
    after = ticks(api, t.rule_ref)
    assert all(_ts(k, "fired_at") <= deleted_at for k in after), \
        f"a deleted timer fired (deleted at {deleted_at}): {after}"
    assert not _timer_events_after(api, t.rule_ref, deleted_at + STAGE_LAG), "a deleted timer fired"


def test_editing_trigger_params_reschedules(api):
    t = timer_rule(api, "core.intervaltimer", {"unit": "seconds", "interval": 1})
    wait_ticks(api, t.rule_ref, 1, timeout=5)
    expect(api.put(f"/api/v1/rules/{t.rule_ref}",
                   json={"trigger_params": {"unit": "seconds", "interval": 3}}), 200)
    edited = len(ticks(api, t.rule_ref))
    time.sleep(3.6)
    got = ticks(api, t.rule_ref)
    assert 1 <= len(got) - edited <= 2, got
    assert got[-1]["interval"] == 3
    api.delete(f"/api/v1/rules/{t.rule_ref}")
