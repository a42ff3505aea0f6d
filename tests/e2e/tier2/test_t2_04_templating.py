"""T2.4 — Parameter templating (SCENARIOS.md), API.md §10.2: action_params rendered from the trigger data with
the JSON types kept, stored as the enforcement's and the execution's config, and received by the action."""
from __future__ import annotations

import json

import pytest

from attune_e2e import TERMINAL
from rule_rig import RuleRig

PAYLOAD = {
    "user": {"name": "ann", "id": 42, "roles": ["admin", "ops"], "address": {"city": "Montréal"}},
    "count": 7, "ratio": 0.25, "active": True, "off": False, "nothing": None,
    "items": [{"sku": "a-1", "qty": 2}, {"sku": "b-2", "qty": 5}],
    "text": "  Mixed Case  ",
}


@pytest.fixture
def rig(api):
    return RuleRig(api, pack_fields={"config": {"region": "eu-west", "limits": {"max": 10}}})


def render(rig, action_params, payload=PAYLOAD):
    """Fires one event at a fresh rule; returns (enforcement, completed execution, event id)."""
    r = rig.rule(action_params=action_params, name="tmpl")
    event_id = rig.fire(payload)
    enf, ex = rig.execution_config(r["ref"], event_id)
    ex = rig.api.wait_execution(ex["id"], TERMINAL)
    assert enf["config"] == ex["config"], (enf, ex)
    return enf, ex, event_id


def test_trigger_data_reaches_the_action(rig):
    enf, ex, _ = render(rig, {"who": "{{ event.payload.user.name }}", "via_alias": "{{ trigger.payload.count }}"})
    assert enf["config"] == {"who": "ann", "via_alias": 7}
    assert ex["status"] == "completed", ex
    # The action (cat) receives exactly the rendered parameters on stdin.
    assert json.loads(ex["result"]["stdout"].strip().splitlines()[0]) == {"who": "ann", "via_alias": 7}


def test_nested_json_paths(rig):
    enf, _, _ = render(rig, {
        "city": "{{ event.payload.user.address.city }}",
        "first_role": "{{ event.payload.user.roles[0] }}",
        "last_role": "{{ event.payload.user.roles[-1] }}",
        "second_sku": "{{ event.payload.items[1].sku }}",
        "by_key": "{{ event.payload['user']['id'] }}",
        "nested": {"deep": ["{{ event.payload.items[0].qty }}", {"x": "{{ event.payload.ratio }}"}]},
    })
    assert enf["config"] == {"city": "Montréal", "first_role": "admin", "last_role": "ops", "second_sku": "b-2",
                             "by_key": 42, "nested": {"deep": [2, {"x": 0.25}]}}


def test_whole_objects_and_lists_keep_their_type(rig):
    enf, _, _ = render(rig, {"user": "{{ event.payload.user }}", "items": "{{ event.payload.items }}",
                             "payload": "{{ event.payload }}"})
    assert enf["config"]["user"] == PAYLOAD["user"]
    assert enf["config"]["items"] == PAYLOAD["items"]
    assert enf["config"]["payload"] == PAYLOAD


def test_numbers_and_booleans_keep_their_type(rig):
    enf, _, _ = render(rig, {"count": "{{ event.payload.count }}", "ratio": "{{ event.payload.ratio }}",
                             "active": "{{ event.payload.active }}", "off": "{{ event.payload.off }}",
                             "sum": "{{ event.payload.count + event.payload.user.id }}",
                             "cmp": "{{ event.payload.count > 5 }}", "literal": 3, "flag": True})
    cfg = enf["config"]
    assert cfg == {"count": 7, "ratio": 0.25, "active": True, "off": False, "sum": 49, "cmp": True,
                   "literal": 3, "flag": True}
    assert isinstance(cfg["count"], int) and not isinstance(cfg["count"], bool)
    assert isinstance(cfg["active"], bool)


def test_missing_values_render_as_null(rig):
    enf, ex, _ = render(rig, {"missing": "{{ event.payload.does_not_exist }}",
                              "missing_deep": "{{ event.payload.user.address.zip.code }}",
                              "out_of_range": "{{ event.payload.items[9] }}",
                              "explicit_null": "{{ event.payload.nothing }}",
                              "in_text": "zip=[{{ event.payload.user.zip }}]"})
    assert enf["config"] == {"missing": None, "missing_deep": None, "out_of_range": None,
                             "explicit_null": None, "in_text": "zip=[]"}
    assert ex["status"] == "completed", ex


def test_mixed_text_renders_to_a_string(rig):
    enf, _, _ = render(rig, {"msg": "User {{ event.payload.user.name }} has {{ event.payload.count }} items",
                             "obj": "roles: {{ event.payload.user.roles }}",
                             "padded": " {{ event.payload.count }}"})
    assert enf["config"] == {"msg": "User ann has 7 items", "obj": 'roles: ["admin","ops"]', "padded": " 7"}


def test_filters(rig):
    enf, _, _ = render(rig, {
        "upper": "{{ event.payload.user.name | upper }}",
        "default": "{{ event.payload.missing | default('x') }}",
        "default_null": "{{ event.payload.nothing | default('fallback') }}",
        "kept": "{{ event.payload.count | default(0) }}",
        "trim_lower": "{{ event.payload.text | trim | lower }}",
        "length": "{{ event.payload.items | length }}",
        "json": "{{ event.payload.user.roles | tojson }}",
        "int": "{{ '12' | int }}",
        "string": "{{ event.payload.count | string }}",
    })
    assert enf["config"] == {"upper": "ANN", "default": "x", "default_null": "fallback", "kept": 7,
                             "trim_lower": "mixed case", "length": 2, "json": '["admin","ops"]', "int": 12,
                             "string": "7"}


def test_event_pack_config_and_system_context(rig):
    r = rig.rule(action_params={
        "event_id": "{{ event.id }}", "trigger_ref": "{{ event.trigger_ref }}",
        "region": "{{ config.region }}", "max": "{{ pack.config.limits.max }}",
        "rule_ref": "{{ system.rule.ref }}", "rule_id": "{{ system.rule.id }}",
        "sys_event": "{{ system.event.id }}", "enforcement": "{{ system.enforcement.id }}",
        "timestamp": "{{ system.timestamp }}", "source": "{{ event.config.source }}",
    }, name="ctx")
    event_id = rig.fire({"a": 1})
    enf, ex = rig.execution_config(r["ref"], event_id)
    cfg = enf["config"]
    assert cfg["event_id"] == event_id and cfg["sys_event"] == event_id
    assert cfg["trigger_ref"] == rig.trigger_ref
    assert cfg["region"] == "eu-west" and cfg["max"] == 10
    assert cfg["rule_ref"] == r["ref"] and cfg["rule_id"] == r["id"]
    assert cfg["enforcement"] == enf["id"]
    assert isinstance(cfg["timestamp"], str) and cfg["timestamp"].endswith("Z")
    assert cfg["source"] == "webhook"
    assert ex["config"] == cfg


def test_condition_and_template_together(rig):
    r = rig.rule(conditions={"expression": "event.payload.count > 5"},
                 action_params={"summary": "{{ event.payload.user.name | upper }}: {{ event.payload.count }}"},
                 name="both")
    small = rig.fire({**PAYLOAD, "count": 1})
    big = rig.fire(PAYLOAD)
    rig.expect_matches({r["ref"]: {big}})
    enf, ex = rig.execution_config(r["ref"], big)
    assert enf["config"] == {"summary": "ANN: 7"}
    assert small in rig.fired
