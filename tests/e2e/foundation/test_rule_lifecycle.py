"""Rule lifecycle (API.md §10, issue 3): enable, disable, update and delete take effect for the very next event;
conditions and templates that do not compile are refused with 422 and their position; an evaluation error at
run time is no match, counted in /metrics."""
from __future__ import annotations

import re

from attune_e2e import expect, expect_error, wait_for
from rule_rig import RuleRig

METRIC = "attune_rule_evaluation_errors_total"


def evaluation_errors(client) -> float:
    resp = client.get("/metrics", auth=False)
    assert resp.status_code == 200, resp.text[:300]
    total = 0.0
    for line in resp.text.splitlines():
        m = re.match(rf"^{METRIC}(\{{[^}}]*\}})?\s+(\S+)$", line)
        if m:
            total += float(m.group(2))
    return total


def test_disable_enable_take_effect_for_the_next_event(api):
    rig = RuleRig(api)
    r = rig.rule(name="toggle")
    e1 = rig.fire({"n": 1})
    rig.expect_matches({r["ref"]: {e1}})

    data = expect(api.post(f"/api/v1/rules/{r['ref']}/disable"), 200)["data"]
    assert data["enabled"] is False
    e2 = rig.fire({"n": 2})
    rig.expect_matches({r["ref"]: {e1}})

    data = expect(api.post(f"/api/v1/rules/{r['ref']}/enable"), 200)["data"]
    assert data["enabled"] is True
    e3 = rig.fire({"n": 3})
    rig.expect_matches({r["ref"]: {e1, e3}})
    assert e2 in rig.fired


def test_update_conditions_and_params_take_effect_for_the_next_event(api):
    rig = RuleRig(api)
    r = rig.rule({"expression": "event.payload.level == 'warn'"}, {"v": "old"}, name="upd")
    e_warn = rig.fire({"level": "warn"})
    rig.expect_matches({r["ref"]: {e_warn}})

    body = {"conditions": {"expression": "event.payload.level == 'error'"},
            "action_params": {"v": "new {{ event.payload.level }}"}}
    updated = expect(api.put(f"/api/v1/rules/{r['ref']}", json=body), 200)["data"]
    assert updated["conditions"] == body["conditions"]
    e_warn2 = rig.fire({"level": "warn"})
    e_error = rig.fire({"level": "error"})
    rig.expect_matches({r["ref"]: {e_warn, e_error}})
    enf, ex = rig.execution_config(r["ref"], e_error)
    assert enf["config"] == {"v": "new error"} and ex["config"] == {"v": "new error"}
    old, _ = rig.execution_config(r["ref"], e_warn)
    assert old["config"] == {"v": "old"}
    assert e_warn2 in rig.fired

    # Back to the array form, immediately after (possibly within the same millisecond).
    expect(api.put(f"/api/v1/rules/{r['ref']}",
                   json={"conditions": [{"field": "level", "operator": "equals", "value": "warn"}]}), 200)
    e_warn3 = rig.fire({"level": "warn"})
    rig.expect_matches({r["ref"]: {e_warn, e_error, e_warn3}})


def test_delete_takes_effect_for_the_next_event(api):
    rig = RuleRig(api)
    keep = rig.rule(name="keep")
    gone = rig.rule(name="gone")
    e1 = rig.fire({"n": 1})
    rig.expect_matches({keep["ref"]: {e1}, gone["ref"]: {e1}})
    body = expect(api.delete(f"/api/v1/rules/{gone['ref']}"), 200)
    assert body["success"] is True
    expect_error(api.get(f"/api/v1/rules/{gone['ref']}"), 404, "NOT_FOUND")
    e2 = rig.fire({"n": 2})
    rig.expect_matches({keep["ref"]: {e1, e2}, gone["ref"]: {e1}})


def test_bad_conditions_and_templates_are_refused_with_their_position(api):
    rig = RuleRig(api)
    base = {"ref": f"{rig.pack_ref}.bad", "pack_ref": rig.pack_ref, "label": "bad",
            "trigger_ref": rig.trigger_ref, "action_ref": rig.action_ref}

    def refused(field, **fields):
        body = expect_error(api.post("/api/v1/rules", json={**base, **fields}), 422, "VALIDATION_ERROR")
        msg = body["details"]["fields"][field]
        assert isinstance(msg, str) and msg, body
        return msg

    # "event.payload.n > 5)": the stray ')' is the 20th character.
    msg = refused("conditions", conditions={"expression": "event.payload.n > 5)"})
    assert "unexpected ')' at column 20" in msg, msg
    assert "at column" in refused("conditions", conditions={"expression": "{{ event.payload.n > }}"})
    assert "at column" in refused("conditions", conditions={"expression": "event.payload.n in [1, 2"})
    msg = refused("conditions", conditions=[{"field": "a", "operator": "equals", "value": 1},
                                            {"field": "a", "operator": "equal", "value": 1}])
    assert "conditions[1].operator" in msg and "unknown operator 'equal'" in msg, msg
    assert "regex" in refused("conditions", conditions=[{"field": "a", "operator": "regex", "value": "("}])
    msg = refused("action_params", action_params={"ok": "{{ event.id }}", "nested": {"x": ["{{ event.payload.a) }}"]}})
    assert msg.startswith("action_params.nested.x[0]: ") and "at column" in msg, msg
    assert "at column" in refused("action_params", action_params={"m": "hello {{ event.payload. }}"})
    expect_error(api.get(f"/api/v1/rules/{base['ref']}"), 404)

    # Updates are checked the same way and leave the rule unchanged.
    r = rig.rule({"expression": "event.payload.a == 1"}, {"v": "{{ event.payload.a }}"}, name="good")
    body = expect_error(api.put(f"/api/v1/rules/{r['ref']}", json={"conditions": {"expression": "(a"}}),
                        422, "VALIDATION_ERROR")
    assert "at column" in body["details"]["fields"]["conditions"], body
    body = expect_error(api.put(f"/api/v1/rules/{r['ref']}", json={"action_params": {"v": "{{ ) }}"}}),
                        422, "VALIDATION_ERROR")
    assert "at column" in body["details"]["fields"]["action_params"], body
    now = api.get_data(f"/api/v1/rules/{r['ref']}")
    assert now["conditions"] == {"expression": "event.payload.a == 1"}
    assert now["action_params"] == {"v": "{{ event.payload.a }}"}
    ev = rig.fire({"a": 1})
    rig.expect_matches({r["ref"]: {ev}})


def test_evaluation_error_is_no_match_and_counted(api, anon):
    rig = RuleRig(api)
    r = rig.rule({"expression": "event.payload.x > 5"}, name="cmp")
    tmpl = rig.rule(action_params={"v": "{{ event.payload.x - 1 }}"}, name="tmplerr")
    before = evaluation_errors(anon)
    bad = rig.fire({"x": "a string"})
    rig.settle()
    after = wait_for(lambda: (lambda v: v if v >= before + 2 else None)(evaluation_errors(anon)),
                     timeout=10, desc=f"{METRIC} to grow by 2 from {before}")
    assert after >= before + 2
    good = rig.fire({"x": 10})
    rig.expect_matches({r["ref"]: {good}, tmpl["ref"]: {good}})
    enf, _ = rig.execution_config(tmpl["ref"], good)
    assert enf["config"] == {"v": 9}
    assert bad in rig.fired
