"""T3.2 Timer cancellation: disable stops it (in-flight executions finish), enable resumes, delete ends it."""
from __future__ import annotations

import time

from attune_e2e import expect
from timer_rig import assert_unique, ticks, timer_rule, wait_ticks


def test_disable_enable_delete_lifecycle(api):
    t = timer_rule(api, "core.intervaltimer", {"unit": "seconds", "interval": 1},
                   script="sleep 1.5; echo done")
    wait_ticks(api, t.rule_ref, 1, timeout=5)
    expect(api.post(f"/api/v1/rules/{t.rule_ref}/disable"), 200)
    n_disabled = len(ticks(api, t.rule_ref))
    # The execution that was running when the rule was disabled finishes normally.
    execs = api.wait_rule_executions(t.rule_ref, n_disabled, timeout=15)
    assert all(e["status"] == "completed" for e in execs), execs
    time.sleep(2.2)
    assert len(ticks(api, t.rule_ref)) == n_disabled, "a disabled timer fired"

    expect(api.post(f"/api/v1/rules/{t.rule_ref}/enable"), 200)
    enabled_at = time.time()
    got = wait_ticks(api, t.rule_ref, n_disabled + 2, timeout=6)
    assert_unique(got)
    # Nothing was caught up for the disabled period: the first new tick is one interval after enable.
    first_new = got[n_disabled]
    assert first_new["caught_up"] is False

    api.delete(f"/api/v1/rules/{t.rule_ref}")
    time.sleep(0.3)
    n_deleted = len(ticks(api, t.rule_ref))
    time.sleep(2.2)
    assert len(ticks(api, t.rule_ref)) == n_deleted, "a deleted timer fired"
    assert time.time() - enabled_at < 30


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
