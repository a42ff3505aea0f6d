"""CRUD of packs, actions, triggers, rules; the built-in core pack (API.md §3, §6–§10)."""
from __future__ import annotations

import pytest

from attune_e2e import (assert_list_envelope, assert_timestamps, expect, expect_error, is_id, uid)


def _deleted(api, path):
    body = expect(api.delete(path), 200)
    assert body.get("success") is True, body
    expect_error(api.get(path), 404, "NOT_FOUND")


# ------------------------------------------------------------------------------------------- packs

def test_pack_crud(api):
    ref = f"e2e_{uid()}"
    created = expect(api.post("/api/v1/packs", json={
        "ref": ref, "label": "Pack label", "version": "1.2.3", "description": "desc",
        "tags": ["a", "b"], "config": {"k": 1}}), 201)
    assert set(created) >= {"data"}
    pack = created["data"]
    assert is_id(pack["id"])
    assert pack["ref"] == ref
    assert pack["label"] == "Pack label"
    assert pack["version"] == "1.2.3"
    assert pack["description"] == "desc"
    assert pack["tags"] == ["a", "b"]
    assert pack["config"] == {"k": 1}
    assert pack["installation_method"] == "api"
    assert pack["owner_identity"] == api.user["id"]
    assert_timestamps(pack)

    assert api.get_data(f"/api/v1/packs/{ref}") == pack
    assert api.get_data(f"/api/v1/packs/{pack['id']}") == pack

    listed = api.list("/api/v1/packs", page_size=100)
    assert_list_envelope(listed)
    assert any(p["id"] == pack["id"] for p in listed["items"]) or listed["pagination"]["total_items"] > 100

    updated = expect(api.put(f"/api/v1/packs/{ref}", json={"label": "New label", "version": "2.0.0"}), 200)["data"]
    assert updated["label"] == "New label"
    assert updated["version"] == "2.0.0"
    assert updated["ref"] == ref and updated["id"] == pack["id"]
    assert updated["description"] == "desc", "PUT changes only the given fields"
    assert api.get_data(f"/api/v1/packs/{pack['id']}")["label"] == "New label"

    _deleted(api, f"/api/v1/packs/{ref}")
    expect_error(api.get(f"/api/v1/packs/{pack['id']}"), 404, "NOT_FOUND")


def test_unknown_pack_404(api):
    expect_error(api.get(f"/api/v1/packs/nosuch_{uid()}"), 404, "NOT_FOUND")
    expect_error(api.get("/api/v1/packs/9007199254740990"), 404, "NOT_FOUND")
    expect_error(api.put(f"/api/v1/packs/nosuch_{uid()}", json={"label": "x"}), 404, "NOT_FOUND")
    expect_error(api.delete(f"/api/v1/packs/nosuch_{uid()}"), 404, "NOT_FOUND")


# ----------------------------------------------------------------------------------------- actions

def test_action_crud(api):
    pack = api.create_pack()
    p = pack["ref"]
    resp = api.post("/api/v1/actions", json={
        "ref": f"{p}.hello", "pack_ref": p, "label": "Hello", "description": "says hello",
        "entrypoint": 'echo "$message"', "runtime_ref": "core.shell",
        "param_schema": {"message": {"type": "string", "required": True}}})
    action = expect(resp, 201)["data"]
    assert is_id(action["id"])
    assert action["ref"] == f"{p}.hello"
    assert action["pack"] == pack["id"]
    assert action["pack_ref"] == p
    assert action["label"] == "Hello"
    assert action["entrypoint"] == 'echo "$message"'
    assert action["runtime_ref"] == "core.shell"
    assert is_id(action["runtime"])
    assert action["enabled"] is True
    assert action["param_schema"] == {"message": {"type": "string", "required": True}}
    assert_timestamps(action)

    assert api.get_data(f"/api/v1/actions/{action['ref']}") == action
    assert api.get_data(f"/api/v1/actions/{action['id']}") == action

    listed = api.list("/api/v1/actions", pack_ref=p)
    assert_list_envelope(listed)
    assert [a["id"] for a in listed["items"]] == [action["id"]]

    upd = expect(api.put(f"/api/v1/actions/{action['ref']}",
                         json={"label": "Hello 2", "enabled": False, "entrypoint": "echo changed"}), 200)["data"]
    assert upd["label"] == "Hello 2"
    assert upd["enabled"] is False
    assert upd["entrypoint"] == "echo changed"
    assert upd["ref"] == action["ref"] and upd["id"] == action["id"]
    assert api.get_data(f"/api/v1/actions/{action['id']}")["enabled"] is False

    _deleted(api, f"/api/v1/actions/{action['ref']}")
    assert api.list("/api/v1/actions", pack_ref=p)["items"] == []


def test_action_bare_ref_is_prefixed_with_pack(api):
    pack = api.create_pack()
    action = expect(api.post("/api/v1/actions", json={
        "ref": "bare_name", "pack_ref": pack["ref"], "label": "Bare", "entrypoint": "true",
        "runtime_ref": "core.shell"}), 201)["data"]
    assert action["ref"] == f"{pack['ref']}.bare_name"
    expect(api.get(f"/api/v1/actions/{pack['ref']}.bare_name"), 200)


def test_action_runtime_by_id(api):
    pack = api.create_pack()
    shell = api.get_data("/api/v1/actions/core.echo")
    a = expect(api.post("/api/v1/actions", json={
        "ref": f"{pack['ref']}.byid", "pack_ref": pack["ref"], "label": "By id", "entrypoint": "true",
        "runtime": shell["runtime"]}), 201)["data"]
    assert a["runtime"] == shell["runtime"]
    assert a["runtime_ref"] == shell["runtime_ref"]


# ---------------------------------------------------------------------------------------- triggers

def test_trigger_crud(api):
    pack = api.create_pack()
    p = pack["ref"]
    trig = expect(api.post("/api/v1/triggers", json={
        "ref": f"{p}.ping", "pack_ref": p, "label": "Ping", "description": "a trigger",
        "param_schema": {"x": {"type": "string"}}}), 201)["data"]
    assert is_id(trig["id"])
    assert trig["ref"] == f"{p}.ping"
    assert trig["pack"] == pack["id"] and trig["pack_ref"] == p
    assert trig["label"] == "Ping"
    assert trig["enabled"] is True
    assert trig["webhook_enabled"] is False
    assert trig["webhook_key"] is None
    assert_timestamps(trig)

    assert api.get_data(f"/api/v1/triggers/{trig['ref']}") == trig
    assert api.get_data(f"/api/v1/triggers/{trig['id']}") == trig
    listed = api.list("/api/v1/triggers", pack_ref=p)
    assert_list_envelope(listed)
    assert [t["id"] for t in listed["items"]] == [trig["id"]]

    upd = expect(api.put(f"/api/v1/triggers/{trig['id']}", json={"label": "Pong", "enabled": False}), 200)["data"]
    assert upd["label"] == "Pong" and upd["enabled"] is False and upd["ref"] == trig["ref"]

    # Server-set webhook fields are ignored on create/update.
    ignored = expect(api.put(f"/api/v1/triggers/{trig['ref']}",
                             json={"webhook_enabled": True, "webhook_key": "x" * 40}), 200)["data"]
    assert ignored["webhook_enabled"] is False and ignored["webhook_key"] is None

    _deleted(api, f"/api/v1/triggers/{trig['ref']}")


# ------------------------------------------------------------------------------------------- rules

def test_rule_crud_enable_disable(api):
    pack = api.create_pack()
    p = pack["ref"]
    act = api.create_action(f"{p}.act", 'echo "$message"')
    trig = api.create_trigger(f"{p}.trig")
    rule = expect(api.post("/api/v1/rules", json={
        "ref": f"{p}.rule", "pack_ref": p, "label": "Rule", "trigger_ref": trig["ref"],
        "action_ref": act["ref"], "action_params": {"message": "hi"}, "conditions": []}), 201)["data"]
    assert is_id(rule["id"])
    assert rule["ref"] == f"{p}.rule"
    assert rule["pack"] == pack["id"] and rule["pack_ref"] == p
    assert rule["action"] == act["id"] and rule["action_ref"] == act["ref"]
    assert rule["trigger"] == trig["id"] and rule["trigger_ref"] == trig["ref"]
    assert rule["action_params"] == {"message": "hi"}
    assert rule["conditions"] == []
    assert rule["enabled"] is True
    assert_timestamps(rule)

    assert api.get_data(f"/api/v1/rules/{rule['ref']}") == rule
    assert api.get_data(f"/api/v1/rules/{rule['id']}") == rule

    disabled = expect(api.post(f"/api/v1/rules/{rule['ref']}/disable"), 200)["data"]
    assert disabled["enabled"] is False
    assert api.get_data(f"/api/v1/rules/{rule['ref']}")["enabled"] is False
    enabled = expect(api.post(f"/api/v1/rules/{rule['id']}/enable"), 200)["data"]
    assert enabled["enabled"] is True

    upd = expect(api.put(f"/api/v1/rules/{rule['ref']}",
                         json={"label": "Renamed", "action_params": {"message": "bye"}}), 200)["data"]
    assert upd["label"] == "Renamed"
    assert upd["action_params"] == {"message": "bye"}
    assert upd["trigger_ref"] == trig["ref"]

    _deleted(api, f"/api/v1/rules/{rule['ref']}")


def test_rule_list_filters(api):
    pack = api.create_pack()
    p = pack["ref"]
    a1 = api.create_action(f"{p}.a1", "true")
    a2 = api.create_action(f"{p}.a2", "true")
    t1 = api.create_trigger(f"{p}.t1")
    t2 = api.create_trigger(f"{p}.t2")
    r1 = api.create_rule(f"{p}.r1", t1["ref"], a1["ref"])
    r2 = api.create_rule(f"{p}.r2", t2["ref"], a1["ref"], enabled=False)
    r3 = api.create_rule(f"{p}.r3", t1["ref"], a2["ref"])
    assert r2["enabled"] is False

    def ids(**params):
        body = api.list("/api/v1/rules", **params)
        assert_list_envelope(body)
        return sorted(r["id"] for r in body["items"])

    assert ids(pack_ref=p) == sorted([r1["id"], r2["id"], r3["id"]])
    assert ids(trigger_ref=t1["ref"]) == sorted([r1["id"], r3["id"]])
    assert ids(action_ref=a1["ref"]) == sorted([r1["id"], r2["id"]])
    assert ids(pack_ref=p, enabled="false") == [r2["id"]]
    assert ids(pack_ref=p, enabled="0") == [r2["id"]]
    assert ids(pack_ref=p, enabled="true") == sorted([r1["id"], r3["id"]])
    assert ids(pack_ref=p, enabled="1") == sorted([r1["id"], r3["id"]])
    assert ids(trigger_ref=t2["ref"], action_ref=a1["ref"]) == [r2["id"]]


def test_trigger_and_action_list_filters(api):
    p1 = api.create_pack()["ref"]
    p2 = api.create_pack()["ref"]
    a = api.create_action(f"{p1}.x", "true")
    t = api.create_trigger(f"{p2}.y")
    assert [x["id"] for x in api.items("/api/v1/actions", pack_ref=p1)] == [a["id"]]
    assert api.items("/api/v1/actions", pack_ref=p2) == []
    assert [x["id"] for x in api.items("/api/v1/triggers", pack_ref=p2)] == [t["id"]]
    assert api.items("/api/v1/triggers", pack_ref=p1) == []


# ----------------------------------------------------------------------------------- pack deletion

def test_delete_pack_removes_components_keeps_history(api):
    flow = api.webhook_flow('echo "$message"', action_params={"message": "before delete"})
    api.fire(flow.key, {"a": 1})
    (ex,) = api.wait_rule_executions(flow.rule_ref, 1)
    (event,) = api.items("/api/v1/events", trigger_ref=flow.trigger_ref)

    _deleted(api, f"/api/v1/packs/{flow.pack_ref}")
    expect_error(api.get(f"/api/v1/actions/{flow.action_ref}"), 404, "NOT_FOUND")
    expect_error(api.get(f"/api/v1/triggers/{flow.trigger_ref}"), 404, "NOT_FOUND")
    expect_error(api.get(f"/api/v1/rules/{flow.rule_ref}"), 404, "NOT_FOUND")
    expect_error(api.get(f"/api/v1/actions/{flow.action['id']}"), 404, "NOT_FOUND")
    assert api.items("/api/v1/actions", pack_ref=flow.pack_ref) == []
    assert api.items("/api/v1/rules", pack_ref=flow.pack_ref) == []
    # The webhook key died with the trigger.
    expect_error(api.fire_webhook(flow.key, {"a": 2}), 404, "NOT_FOUND", message="Invalid webhook key")
    # Executions and events stay readable.
    assert api.get_data(f"/api/v1/executions/{ex['id']}")["status"] == "completed"
    assert api.get_data(f"/api/v1/events/{event['id']}")["payload"] == {"a": 1}

    # The ref can be used again afterwards.
    again = api.create_pack(flow.pack_ref)
    assert again["id"] != flow.pack["id"]


# -------------------------------------------------------------------------------------- core pack

CORE_ACTIONS = ("core.echo", "core.noop", "core.sleep")
CORE_TRIGGERS = ("core.webhook", "core.intervaltimer", "core.crontimer", "core.datetimetimer")


def test_core_pack_present(api):
    core = api.get_data("/api/v1/packs/core")
    assert core["ref"] == "core"
    assert_timestamps(core)
    assert "core" in [p["ref"] for p in api.items("/api/v1/packs")]
    actions = {a["ref"] for a in api.items("/api/v1/actions", pack_ref="core")}
    assert set(CORE_ACTIONS) <= actions, actions
    triggers = {t["ref"] for t in api.items("/api/v1/triggers", pack_ref="core")}
    assert set(CORE_TRIGGERS) <= triggers, triggers


@pytest.mark.parametrize("ref", CORE_ACTIONS)
def test_core_action_get(api, ref):
    a = api.get_data(f"/api/v1/actions/{ref}")
    assert a["ref"] == ref and a["pack_ref"] == "core" and a["enabled"] is True
    assert api.get_data(f"/api/v1/actions/{a['id']}")["ref"] == ref


@pytest.mark.parametrize("ref", CORE_TRIGGERS)
def test_core_trigger_get(api, ref):
    t = api.get_data(f"/api/v1/triggers/{ref}")
    assert t["ref"] == ref and t["pack_ref"] == "core"


def test_delete_core_pack_400(api):
    expect_error(api.delete("/api/v1/packs/core"), 400, "BAD_REQUEST")
    core = api.get_data("/api/v1/packs/core")
    expect_error(api.delete(f"/api/v1/packs/{core['id']}"), 400, "BAD_REQUEST")
    assert api.get_data("/api/v1/packs/core")["id"] == core["id"]
    for ref in CORE_ACTIONS:
        expect(api.get(f"/api/v1/actions/{ref}"), 200)
