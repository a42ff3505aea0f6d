"""T2.5 — Rule criteria (SCENARIOS.md), API.md §10.1, §10.3: equality, numeric thresholds, complex and/or,
list membership and the array form, each rule deciding for each event."""
from __future__ import annotations

import pytest

from rule_rig import RuleRig


@pytest.fixture
def rig(api):
    return RuleRig(api)


def test_equality(rig):
    eq = rig.rule({"expression": "event.payload.status == 'error'"}, name="eq")
    ne = rig.rule({"expression": "{{ event.payload.status != 'error' }}"}, name="ne")
    alias = rig.rule({"expression": "{{ trigger.payload.level == 'info' }}"}, name="alias")
    e_error = rig.fire({"status": "error", "level": "info"})
    e_ok = rig.fire({"status": "ok"})
    e_case = rig.fire({"status": "ERROR"})
    e_missing = rig.fire({"other": 1})
    e_num = rig.fire({"status": 1})
    rig.expect_matches({
        eq["ref"]: {e_error},
        ne["ref"]: {e_ok, e_case, e_missing, e_num},
        alias["ref"]: {e_error},
    })


def test_numeric_thresholds(rig):
    gt = rig.rule({"expression": "event.payload.cpu > 90"}, name="gt")
    gte = rig.rule({"expression": "event.payload.cpu >= 90"}, name="gte")
    lt = rig.rule({"expression": "event.payload.cpu < 10.5"}, name="lt")
    rng = rig.rule({"expression": "50 <= event.payload.cpu <= 60"}, name="range")
    arith = rig.rule({"expression": "event.payload.used / event.payload.total * 100 > 75"}, name="arith")
    e95 = rig.fire({"cpu": 95})
    e90 = rig.fire({"cpu": 90.0})
    e10 = rig.fire({"cpu": 10})
    e55 = rig.fire({"cpu": 55, "used": 80, "total": 100})
    e_low_ratio = rig.fire({"cpu": 11, "used": 1, "total": 4})
    rig.expect_matches({
        gt["ref"]: {e95},
        gte["ref"]: {e95, e90},
        lt["ref"]: {e10},
        rng["ref"]: {e55},
        arith["ref"]: {e55},
    })
    assert e_low_ratio in rig.fired


def test_complex_and_or(rig):
    expr = ("(event.payload.severity == 'critical' or event.payload.priority >= 8) "
            "and event.payload.env != 'dev' and not event.payload.muted")
    r = rig.rule({"expression": expr}, name="complex")
    nested = rig.rule({"expression": "event.payload.user.role == 'admin' and "
                                     "(event.payload.user.tags | length) > 1"}, name="nested")
    critical = rig.fire({"severity": "critical", "priority": 1, "env": "prod", "muted": False})
    priority = rig.fire({"severity": "low", "priority": 9, "env": "staging"})
    dev = rig.fire({"severity": "critical", "priority": 9, "env": "dev"})
    muted = rig.fire({"severity": "critical", "env": "prod", "muted": True})
    neither = rig.fire({"severity": "low", "priority": 2, "env": "prod"})
    admin = rig.fire({"user": {"role": "admin", "tags": ["a", "b"]}})
    admin_one_tag = rig.fire({"user": {"role": "admin", "tags": ["a"]}})
    rig.expect_matches({
        r["ref"]: {critical, priority},
        nested["ref"]: {admin},
    })
    assert {dev, muted, neither, admin_one_tag} <= set(rig.fired)


def test_list_membership(rig):
    in_list = rig.rule({"expression": "event.payload.env in ['prod', 'staging']"}, name="in")
    not_in = rig.rule({"expression": "event.payload.env not in ['prod', 'staging']"}, name="notin")
    contains = rig.rule({"expression": "'urgent' in event.payload.tags"}, name="contains")
    prod = rig.fire({"env": "prod", "tags": ["urgent", "db"]})
    staging = rig.fire({"env": "staging", "tags": []})
    dev = rig.fire({"env": "dev", "tags": ["urgent"]})
    rig.expect_matches({
        in_list["ref"]: {prod, staging},
        not_in["ref"]: {dev},
        contains["ref"]: {prod, dev},
    })


def test_array_form_with_several_operators(rig):
    all_hold = rig.rule([
        {"field": "service", "operator": "equals", "value": "billing"},
        {"field": "host", "operator": "startswith", "value": "db-"},
        {"field": "value", "operator": "gte", "value": 95},
        {"field": "region", "operator": "in", "value": ["eu", "us"]},
        {"field": "meta.owner", "operator": "exists"},
        {"field": "message", "operator": "icontains", "value": "TIMEOUT"},
    ], name="all")
    attune_ops = rig.rule([
        {"field": "tags", "operator": "contains", "value": "pager"},
        {"field": "level", "operator": "not_equals", "value": "debug"},
    ], name="attune")
    regex = rig.rule([{"field": "host", "operator": "regex", "value": "db-[0-9]+"},
                      {"field": "meta.owner", "operator": "nexists"}], name="regex")
    full = {"service": "billing", "host": "db-17", "value": 97, "region": "eu",
            "meta": {"owner": "ops"}, "message": "Connection timeout", "tags": ["pager"], "level": "warn"}
    e_full = rig.fire(full)
    e_low = rig.fire({**full, "value": 50})
    e_region = rig.fire({**full, "region": "apac"})
    e_debug = rig.fire({**full, "level": "debug"})
    e_regex = rig.fire({"host": "db-3", "tags": ["x"]})
    rig.expect_matches({
        all_hold["ref"]: {e_full, e_debug},
        attune_ops["ref"]: {e_full, e_low, e_region},
        regex["ref"]: {e_regex},
    })


def test_matching_rule_enforcement_records_the_conditions(rig):
    conditions = [{"field": "n", "operator": "gt", "value": 3}]
    r = rig.rule(conditions, name="rec")
    ev = rig.fire({"n": 4})
    enf, ex = rig.execution_config(r["ref"], ev)
    assert enf["conditions"] == conditions
    assert enf["condition"] == "all"
    assert enf["payload"] == {"n": 4}
    assert ex["enforcement"] == enf["id"]
