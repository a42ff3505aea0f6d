"""T3.5 — Webhook criteria filtering (SCENARIOS.md), API.md §10.1: among several rules on one webhook trigger,
only those whose criteria match the event create enforcements and executions."""
from __future__ import annotations

from attune_e2e import TERMINAL
from rule_rig import RuleRig


def test_only_matching_rules_create_executions(api):
    rig = RuleRig(api)
    eq = rig.rule({"expression": "event.payload.service == 'billing'"}, {"r": "eq"}, name="eq")
    num = rig.rule({"expression": "event.payload.value > 90"}, {"r": "num"}, name="num")
    both = rig.rule({"expression": "event.payload.service == 'billing' and event.payload.value > 90"},
                    {"r": "and"}, name="and")
    either = rig.rule({"expression": "event.payload.service == 'auth' or event.payload.value < 10"},
                      {"r": "or"}, name="or")
    member = rig.rule({"expression": "event.payload.region in ['eu', 'us']"}, {"r": "in"}, name="in")
    array = rig.rule([{"field": "service", "operator": "equals", "value": "billing"},
                      {"field": "region", "operator": "nin", "value": ["eu", "us"]}], {"r": "arr"}, name="arr")
    never = rig.rule({"expression": "event.payload.service == 'nothing-sends-this'"}, {"r": "never"}, name="never")

    billing_hot_eu = rig.fire({"service": "billing", "value": 95, "region": "eu"})
    billing_cold_apac = rig.fire({"service": "billing", "value": 5, "region": "apac"})
    auth_mid_us = rig.fire({"service": "auth", "value": 50, "region": "us"})
    other = rig.fire({"service": "search", "value": 50, "region": "apac"})

    rig.expect_matches({
        eq["ref"]: {billing_hot_eu, billing_cold_apac},
        num["ref"]: {billing_hot_eu},
        both["ref"]: {billing_hot_eu},
        either["ref"]: {billing_cold_apac, auth_mid_us},
        member["ref"]: {billing_hot_eu, auth_mid_us},
        array["ref"]: {billing_cold_apac},
        never["ref"]: set(),
    })
    assert other in rig.fired

    # Executions exist exactly for the matching (rule, event) pairs and carry each rule's parameters.
    for r, tag in ((eq, "eq"), (either, "or"), (array, "arr")):
        execs = api.wait_rule_executions(r["ref"], len(rig.matched(r["ref"])), TERMINAL)
        assert {e["config"]["r"] for e in execs} == {tag}
        assert all(e["status"] == "completed" for e in execs), execs
    assert api.items("/api/v1/executions", rule_ref=never["ref"]) == []
    assert api.items("/api/v1/enforcements", rule_ref=never["ref"]) == []
