"""T1.4 — Webhook trigger with payload (SCENARIOS.md), API.md §9.1, §10, §11."""
from __future__ import annotations

import json
import re

import pytest

from attune_e2e import (TERMINAL, assert_timestamps, describe, expect, expect_error, is_id, now_mark)

ECHO = 'echo "$message"'
CAT_STDIN = "cat"


def test_webhook_receipt_creates_event_at_once(api):
    flow = api.webhook_flow(ECHO, action_params={"message": "hello"})
    payload = {"x": "hello-from-webhook", "n": 1}
    resp = api.fire_webhook(flow.key, payload)
    body = expect(resp, 200)
    receipt = body["data"]
    assert receipt["message"] == "Webhook received successfully"
    assert receipt["trigger_ref"] == flow.trigger_ref
    assert is_id(receipt["event_id"])
    assert_timestamps(receipt, ("received_at",))

    # Read-your-writes: the event is visible at once, without polling.
    event = expect(api.get(f"/api/v1/events/{receipt['event_id']}"), 200)["data"]
    assert event["id"] == receipt["event_id"]
    assert event["payload"] == payload
    assert event["source_ref"] == "webhook"
    assert event["trigger_ref"] == flow.trigger_ref
    assert event["trigger"] == flow.trigger["id"]
    assert isinstance(event["config"], dict) and event["config"].get("source") == "webhook", event
    assert event["config"].get("webhook_key") == flow.key, event
    assert_timestamps(event)

    listed = api.list("/api/v1/events", trigger_ref=flow.trigger_ref)
    assert [e["id"] for e in listed["items"]] == [receipt["event_id"]]
    row = listed["items"][0]
    assert row["has_payload"] is True, row
    assert "payload" not in row, f"list rows replace payload by has_payload: {row}"


def test_webhook_runs_rule_and_action_to_completion(api):
    flow = api.webhook_flow(ECHO, action_params={"message": "hello"})
    payload = {"x": "some value"}
    event_id = api.fire(flow.key, payload)["event_id"]

    enfs = api.wait_enforcements(flow.rule_ref, 1)
    assert len(enfs) == 1, enfs
    enf = expect(api.get(f"/api/v1/enforcements/{enfs[0]['id']}"), 200)["data"]
    assert enf["event"] == event_id
    assert enf["rule"] == flow.rule["id"]
    assert enf["rule_ref"] == flow.rule_ref
    assert enf["trigger_ref"] == flow.trigger_ref
    assert enf["config"] == {"message": "hello"}
    assert enf["payload"] == payload
    assert enf["condition"] == "all"

    ex = api.execution_for_enforcement(enf["id"])
    ex = api.wait_execution(ex["id"])
    assert ex["status"] == "completed", ex
    assert ex["action_ref"] == flow.action_ref
    assert ex["action"] == flow.action["id"]
    assert ex["enforcement"] == enf["id"]
    assert ex["config"] == {"message": "hello"}
    result = ex["result"]
    assert result["stdout"].strip() == "hello", result
    assert result["exit_code"] == 0, result
    assert isinstance(result["duration_ms"], (int, float)) and result["duration_ms"] >= 0, result
    assert "stderr" in result, result

    # The enforcement goes created -> processed once its execution exists.
    enf = api.wait_for(lambda: (lambda e: e if e["status"] == "processed" else None)(
        api.get_data(f"/api/v1/enforcements/{enf['id']}")), desc="enforcement processed")
    assert_timestamps(enf, ("created", "updated", "resolved_at"))


def test_action_receives_parameters_on_stdin(api):
    params = {"message": "hello", "count": 3, "nested": {"a": [1, 2]}}
    flow = api.webhook_flow(CAT_STDIN, action_params=params)
    api.fire(flow.key, {"irrelevant": True})
    (ex,) = api.wait_rule_executions(flow.rule_ref, 1)
    assert ex["status"] == "completed", ex
    lines = ex["result"]["stdout"].strip().splitlines()
    assert len(lines) == 1, f"parameters must be one JSON line on stdin: {ex['result']['stdout']!r}"
    assert json.loads(lines[0]) == params


def test_action_params_template_from_payload(api):
    flow = api.webhook_flow(ECHO, action_params={"message": "{{ event.payload.x }}"})
    api.fire(flow.key, {"x": "templated-value"})
    (ex,) = api.wait_rule_executions(flow.rule_ref, 1)
    assert ex["status"] == "completed", ex
    assert ex["config"] == {"message": "templated-value"}
    assert ex["result"]["stdout"].strip() == "templated-value"


def test_three_posts_three_events_enforcements_executions(api):
    flow = api.webhook_flow(ECHO, action_params={"message": "hello"})
    event_ids = [api.fire(flow.key, {"i": i})["event_id"] for i in range(3)]
    assert len(set(event_ids)) == 3

    events = api.list("/api/v1/events", trigger_ref=flow.trigger_ref)
    assert events["pagination"]["total_items"] == 3
    assert sorted(e["id"] for e in events["items"]) == sorted(event_ids)

    enfs = api.wait_enforcements(flow.rule_ref, 3)
    assert len(enfs) == 3
    assert sorted(e["event"] for e in enfs) == sorted(event_ids)

    execs = api.wait_rule_executions(flow.rule_ref, 3)
    assert len(execs) == 3
    assert sorted(e["enforcement"] for e in execs) == sorted(e["id"] for e in enfs)
    for ex in execs:
        assert ex["status"] == "completed", ex
        assert ex["result"]["stdout"].strip() == "hello"
    # Still exactly three after everything settled.
    assert api.list("/api/v1/executions", rule_ref=flow.rule_ref)["pagination"]["total_items"] == 3
    assert api.list("/api/v1/enforcements", rule_ref=flow.rule_ref)["pagination"]["total_items"] == 3


NESTED = {
    "user": {"name": "Zoë \"quoted\" \\ back", "roles": ["admin", "ops"], "age": 42,
             "address": {"city": "Montréal", "geo": {"lat": 45.5017, "lng": -73.5673}}},
    "items": [{"id": 1, "tags": []}, {"id": 2, "tags": ["a", {"deep": [[], [None, True, False]]}]}],
    "empty_obj": {}, "empty_list": [], "nothing": None, "flag": False,
    "big": 9007199254740991, "neg": -17, "ratio": 0.25,
    "text": "line1\nline2\ttab", "emoji": "\u2603\ufe0f \U0001F680", "unicode_key_\u00e9": "v",
}


def test_nested_json_payload_preserved_exactly(api):
    flow = api.webhook_flow(ECHO, action_params={"message": "nested"})
    event_id = api.fire(flow.key, NESTED)["event_id"]
    event = api.get_data(f"/api/v1/events/{event_id}")
    assert event["payload"] == NESTED
    assert json.dumps(event["payload"], sort_keys=True) == json.dumps(NESTED, sort_keys=True)
    (enf,) = api.wait_enforcements(flow.rule_ref, 1)
    assert api.get_data(f"/api/v1/enforcements/{enf['id']}")["payload"] == NESTED
    (ex,) = api.wait_rule_executions(flow.rule_ref, 1)
    assert ex["status"] == "completed", ex


def test_empty_payload_object(api):
    flow = api.webhook_flow(ECHO, action_params={"message": "empty"})
    event_id = api.fire(flow.key, {})["event_id"]
    assert api.get_data(f"/api/v1/events/{event_id}")["payload"] == {}
    (ex,) = api.wait_rule_executions(flow.rule_ref, 1)
    assert ex["status"] == "completed", ex
    assert ex["result"]["stdout"].strip() == "empty"


def test_null_payload(api):
    flow = api.webhook_flow(ECHO, action_params={"message": "null-payload"})
    event_id = api.fire(flow.key, None)["event_id"]
    event = api.get_data(f"/api/v1/events/{event_id}")
    assert "payload" in event and event["payload"] is None, event
    (ex,) = api.wait_rule_executions(flow.rule_ref, 1)
    assert ex["status"] == "completed", ex
    assert ex["result"]["stdout"].strip() == "null-payload"


def test_optional_webhook_fields_recorded_in_event_config(api):
    flow = api.webhook_flow(ECHO, action_params={"message": "x"})
    body = {"payload": {"k": 1}, "headers": {"X-Origin": "e2e"}, "source_ip": "10.1.2.3", "user_agent": "e2e/1"}
    event_id = expect(api.fire_webhook(flow.key, body=body), 200)["data"]["event_id"]
    event = api.get_data(f"/api/v1/events/{event_id}")
    assert event["payload"] == {"k": 1}
    cfg = event["config"]
    assert cfg["source"] == "webhook"
    assert cfg["webhook_key"] == flow.key
    assert_timestamps(cfg, ("received_at",))


def _event_count(api, trigger_ref):
    return api.list("/api/v1/events", trigger_ref=trigger_ref)["pagination"]["total_items"]


def test_unknown_webhook_key_404(api):
    resp = api.fire_webhook("no-such-key-" + "x" * 40, {"a": 1})
    expect_error(resp, 404, "NOT_FOUND", message="Invalid webhook key")


def test_disabled_webhook_400_and_nothing_written(api):
    flow = api.webhook_flow(ECHO, action_params={"message": "x"})
    expect(api.post(f"/api/v1/triggers/{flow.trigger_ref}/webhooks/disable"), 200)
    resp = api.fire_webhook(flow.key, {"a": 1})
    expect_error(resp, 400, "BAD_REQUEST", message=f"Webhooks are not enabled for trigger '{flow.trigger_ref}'")
    assert _event_count(api, flow.trigger_ref) == 0


def test_disabled_trigger_400(api):
    flow = api.webhook_flow(ECHO, action_params={"message": "x"})
    expect(api.put(f"/api/v1/triggers/{flow.trigger_ref}", json={"enabled": False}), 200)
    resp = api.fire_webhook(flow.key, {"a": 1})
    expect_error(resp, 400, "BAD_REQUEST", message=f"Trigger '{flow.trigger_ref}' is disabled")
    assert _event_count(api, flow.trigger_ref) == 0


@pytest.mark.parametrize("raw", [
    pytest.param(json.dumps({"data": {"a": 1}}), id="no-payload-member"),
    pytest.param('{"payload": {"a": 1}', id="truncated-json"),
    pytest.param("not json at all", id="garbage"),
    pytest.param("", id="empty-body"),
    pytest.param("[1, 2, 3]", id="array-body"),
])
def test_webhook_bad_body_400_and_nothing_written(api, raw):
    flow = api.webhook_flow(ECHO, action_params={"message": "x"})
    resp = api.fire_webhook(flow.key, data=raw.encode())
    expect_error(resp, 400, "BAD_REQUEST", message_contains="Invalid JSON payload")
    assert _event_count(api, flow.trigger_ref) == 0
    assert api.list("/api/v1/executions", rule_ref=flow.rule_ref)["pagination"]["total_items"] == 0


def test_webhook_enable_disable_regenerate(api):
    pack = api.create_pack()
    trig = api.create_trigger(f"{pack['ref']}.hook")
    assert trig["webhook_enabled"] is False
    assert trig.get("webhook_key") is None

    # Regenerate is refused while webhooks are not enabled.
    expect_error(api.post(f"/api/v1/triggers/{trig['ref']}/webhooks/regenerate"), 400, "BAD_REQUEST")

    enabled = expect(api.post(f"/api/v1/triggers/{trig['ref']}/webhooks/enable"), 200)["data"]
    assert enabled["webhook_enabled"] is True
    key = enabled["webhook_key"]
    assert isinstance(key, str) and len(key) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", key), key
    assert api.get_data(f"/api/v1/triggers/{trig['ref']}")["webhook_key"] == key

    # Enabling again keeps the key.
    again = expect(api.post(f"/api/v1/triggers/{trig['id']}/webhooks/enable"), 200)["data"]
    assert again["webhook_key"] == key

    disabled = expect(api.post(f"/api/v1/triggers/{trig['ref']}/webhooks/disable"), 200)["data"]
    assert disabled["webhook_enabled"] is False
    assert disabled["webhook_key"] == key, "disable keeps the key"
    expect_error(api.fire_webhook(key, {}), 400, "BAD_REQUEST")

    reenabled = expect(api.post(f"/api/v1/triggers/{trig['ref']}/webhooks/enable"), 200)["data"]
    assert reenabled["webhook_key"] == key
    expect(api.fire_webhook(key, {"n": 1}), 200)

    regen = expect(api.post(f"/api/v1/triggers/{trig['ref']}/webhooks/regenerate"), 200)["data"]
    new_key = regen["webhook_key"]
    assert regen["webhook_enabled"] is True
    assert isinstance(new_key, str) and len(new_key) >= 32 and new_key != key
    expect_error(api.fire_webhook(key, {"n": 2}), 404, "NOT_FOUND", message="Invalid webhook key")
    receipt = expect(api.fire_webhook(new_key, {"n": 3}), 200)["data"]
    assert api.get_data(f"/api/v1/events/{receipt['event_id']}")["payload"] == {"n": 3}
    assert _event_count(api, trig["ref"]) == 2


def test_webhook_routes_for_unknown_trigger_404(api):
    for op in ("enable", "disable", "regenerate"):
        expect_error(api.post(f"/api/v1/triggers/nosuchpack_zz.nothing/webhooks/{op}"), 404, "NOT_FOUND")


def test_webhook_receipt_needs_no_auth_but_trigger_routes_do(api, anon):
    flow = api.webhook_flow(ECHO, action_params={"message": "x"})
    expect_error(anon.post(f"/api/v1/triggers/{flow.trigger_ref}/webhooks/enable"), 401, "UNAUTHORIZED")
    # Even a garbage Authorization header does not matter for webhook receipt.
    resp = api.fire_webhook(flow.key, {"a": 1}, headers={"Authorization": "Bearer garbage"})
    assert resp.status_code == 200, describe(resp)


def test_webhook_action_failure_does_not_affect_receipt(api):
    flow = api.webhook_flow("echo boom >&2; exit 5", action_params={"message": "x"})
    mark = now_mark()
    event_id = api.fire(flow.key, {"a": 1})["event_id"]
    (ex,) = api.wait_rule_executions(flow.rule_ref, 1)
    assert ex["status"] == "failed"
    assert ex["result"]["exit_code"] == 5
    assert api.get_data(f"/api/v1/events/{event_id}")["payload"] == {"a": 1}
    assert ex["status"] in TERMINAL
    assert any(e["id"] == ex["id"] for e in api.items("/api/v1/executions", created_after=mark,
                                                      trigger_ref=flow.trigger_ref))
