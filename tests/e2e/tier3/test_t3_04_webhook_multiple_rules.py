"""T3.4 — Webhook with multiple rules (SCENARIOS.md), API.md §10.1: one webhook event fires every matching rule
on its trigger, exactly one enforcement (and one execution) each."""
from __future__ import annotations

from attune_e2e import TERMINAL, expect
from rule_rig import RuleRig


def test_one_event_fires_every_matching_rule_once(api):
    rig = RuleRig(api)
    rules = [rig.rule(action_params={"n": i, "who": "{{ event.payload.who }}"}, name=f"r{i}") for i in range(4)]
    rules.append(rig.rule({"expression": "event.payload.who == 'ann'"}, {"n": 4}, name="cond"))
    rules.append(rig.rule([{"field": "who", "operator": "equals", "value": "ann"}], {"n": 5}, name="arr"))
    event_id = rig.fire({"who": "ann"})
    rig.expect_matches({r["ref"]: {event_id} for r in rules})

    enforcement_ids = set()
    for i, r in enumerate(rules):
        enf, ex = rig.execution_config(r["ref"], event_id)
        assert enf["rule"] == r["id"] and enf["event"] == event_id
        assert enf["config"]["n"] == i
        enforcement_ids.add(enf["id"])
        ex = api.wait_execution(ex["id"], TERMINAL)
        assert ex["status"] == "completed", ex
        assert ex["config"] == enf["config"]
        assert len(api.items("/api/v1/executions", enforcement=enf["id"])) == 1
    assert len(enforcement_ids) == len(rules)
    # The event itself is one event, whatever the number of rules.
    assert expect(api.get(f"/api/v1/events/{event_id}"), 200)["data"]["payload"] == {"who": "ann"}


def test_each_event_fires_each_rule_once(api):
    rig = RuleRig(api)
    rules = [rig.rule(action_params={"i": "{{ event.payload.i }}"}, name=f"m{i}") for i in range(3)]
    events = [rig.fire({"i": i}) for i in range(3)]
    rig.expect_matches({r["ref"]: set(events) for r in rules})
    for r in rules:
        enfs = rig.enforcements(r["ref"], events)
        assert sorted(e["event"] for e in enfs) == sorted(events)
        assert sorted(e["config"]["i"] for e in enfs) == [0, 1, 2]


def test_disabled_rule_among_several_produces_nothing(api):
    rig = RuleRig(api)
    on = rig.rule(name="on")
    off = rig.rule(name="off", enabled=False)
    event_id = rig.fire({"x": 1})
    rig.expect_matches({on["ref"]: {event_id}, off["ref"]: set()})
