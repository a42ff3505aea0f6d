"""Bad input gets the status and error body of API.md §3 and writes nothing."""
from __future__ import annotations

import json

import pytest

from attune_e2e import describe, expect, expect_error, now_mark, uid

JSON_HEADERS = {"Content-Type": "application/json"}


def _total(api, path, **params):
    return api.list(path, **params)["pagination"]["total_items"]


# ----------------------------------------------------------------------------------- malformed JSON

@pytest.mark.parametrize("path", ["/api/v1/packs", "/api/v1/actions", "/api/v1/triggers", "/api/v1/rules",
                                  "/api/v1/executions/execute", "/auth/login"])
@pytest.mark.parametrize("raw", [
    pytest.param(b'{"ref": "x", ', id="truncated"),
    pytest.param(b"{ref: 'x'}", id="not-json"),
    pytest.param(b'{"ref": "x"} trailing', id="trailing-garbage"),
    pytest.param(b"\xff\xfe{}", id="bad-utf8"),
])
def test_malformed_json_400(api, path, raw):
    before = _total(api, "/api/v1/packs")
    resp = api.post(path, data=raw, headers=JSON_HEADERS)
    expect_error(resp, 400, "BAD_REQUEST")
    assert _total(api, "/api/v1/packs") == before


@pytest.mark.parametrize("raw", [b"", b"[]", b'"a string"', b"42", b"null"])
def test_non_object_body_400(api, raw):
    before = _total(api, "/api/v1/packs")
    expect_error(api.post("/api/v1/packs", data=raw, headers=JSON_HEADERS), 400, "BAD_REQUEST")
    assert _total(api, "/api/v1/packs") == before


def test_malformed_json_on_put_400_and_unchanged(api):
    pack = api.create_pack(label="Original")
    expect_error(api.put(f"/api/v1/packs/{pack['ref']}", data=b'{"label": ', headers=JSON_HEADERS),
                 400, "BAD_REQUEST")
    assert api.get_data(f"/api/v1/packs/{pack['ref']}")["label"] == "Original"


# -------------------------------------------------------------------------------------- wrong types

def _validation(resp, field):
    err = expect_error(resp, 422, "VALIDATION_ERROR")
    assert isinstance(err.get("details"), dict), f"no details: {describe(resp)}"
    fields = err["details"].get("fields")
    assert isinstance(fields, dict) and field in fields, f"details.fields lacks {field!r}: {describe(resp)}"
    assert isinstance(fields[field], str) and fields[field]
    return err


@pytest.mark.parametrize("body,field", [
    ({"ref": 5}, "ref"),
    ({"ref": "Bad Ref!"}, "ref"),
    ({"ref": "1234"}, "ref"),
    ({"ref": ""}, "ref"),
    ({"label": 5}, "label"),
    ({"version": ["1"]}, "version"),
    ({"tags": "a,b"}, "tags"),
    ({"ref": None}, "ref"),
])
def test_pack_wrong_types_422(api, body, field):
    doc = {"ref": f"e2e_{uid()}", "label": "L", "version": "1.0.0"}
    doc.update(body)
    before = _total(api, "/api/v1/packs")
    _validation(api.post("/api/v1/packs", json=doc), field)
    assert _total(api, "/api/v1/packs") == before
    if isinstance(doc["ref"], str) and doc["ref"]:
        expect_error(api.get(f"/api/v1/packs/{doc['ref']}"), 404)


def test_pack_missing_required_422(api):
    ref = f"e2e_{uid()}"
    _validation(api.post("/api/v1/packs", json={"label": "L", "version": "1"}), "ref")
    _validation(api.post("/api/v1/packs", json={"ref": ref, "version": "1"}), "label")
    expect_error(api.get(f"/api/v1/packs/{ref}"), 404, "NOT_FOUND")


@pytest.mark.parametrize("body,field", [
    ({"enabled": "yes"}, "enabled"),
    ({"ref": 5}, "ref"),
    ({"entrypoint": 7}, "entrypoint"),
    ({"label": {"x": 1}}, "label"),
    ({"param_schema": "nope"}, "param_schema"),
    ({"timeout_seconds": "soon"}, "timeout_seconds"),
])
def test_action_wrong_types_422(api, body, field):
    pack = api.create_pack()
    doc = {"ref": f"{pack['ref']}.a", "pack_ref": pack["ref"], "label": "A", "entrypoint": "true",
           "runtime_ref": "core.shell"}
    doc.update(body)
    _validation(api.post("/api/v1/actions", json=doc), field)
    assert api.items("/api/v1/actions", pack_ref=pack["ref"]) == []


def test_trigger_wrong_types_422(api):
    pack = api.create_pack()
    p = pack["ref"]
    _validation(api.post("/api/v1/triggers", json={"ref": f"{p}.t", "pack_ref": p, "label": 5}), "label")
    _validation(api.post("/api/v1/triggers", json={"ref": f"{p}.t", "pack_ref": p, "label": "T",
                                                   "enabled": "yes"}), "enabled")
    assert api.items("/api/v1/triggers", pack_ref=p) == []


def test_rule_wrong_types_422(api):
    pack = api.create_pack()
    p = pack["ref"]
    act = api.create_action(f"{p}.a", "true")
    trig = api.create_trigger(f"{p}.t")
    base = {"ref": f"{p}.r", "pack_ref": p, "label": "R", "trigger_ref": trig["ref"], "action_ref": act["ref"]}
    for patch, field in (({"enabled": "yes"}, "enabled"), ({"action_params": "x=1"}, "action_params"),
                         ({"trigger_ref": 5}, "trigger_ref"), ({"label": []}, "label")):
        _validation(api.post("/api/v1/rules", json={**base, **patch}), field)
    assert api.items("/api/v1/rules", pack_ref=p) == []


def test_put_wrong_types_422_and_unchanged(api):
    pack = api.create_pack()
    act = api.create_action(f"{pack['ref']}.a", "true")
    _validation(api.put(f"/api/v1/actions/{act['ref']}", json={"enabled": "no"}), "enabled")
    assert api.get_data(f"/api/v1/actions/{act['ref']}")["enabled"] is True


# ------------------------------------------------------------------------------------ unknown refs

def test_unknown_pack_ref_404(api):
    ghost = f"ghost_{uid()}"
    expect_error(api.post("/api/v1/actions", json={"ref": f"{ghost}.a", "pack_ref": ghost, "label": "A",
                                                   "entrypoint": "true", "runtime_ref": "core.shell"}),
                 404, "NOT_FOUND")
    expect_error(api.post("/api/v1/triggers", json={"ref": f"{ghost}.t", "pack_ref": ghost, "label": "T"}),
                 404, "NOT_FOUND")
    expect_error(api.get(f"/api/v1/actions/{ghost}.a"), 404, "NOT_FOUND")
    expect_error(api.get(f"/api/v1/triggers/{ghost}.t"), 404, "NOT_FOUND")
    expect_error(api.get(f"/api/v1/packs/{ghost}"), 404, "NOT_FOUND")


def test_unknown_runtime_404(api):
    pack = api.create_pack()
    resp = api.post("/api/v1/actions", json={"ref": f"{pack['ref']}.a", "pack_ref": pack["ref"], "label": "A",
                                             "entrypoint": "true", "runtime_ref": "core.nosuchruntime"})
    assert resp.status_code in (404, 422), describe(resp)
    assert api.items("/api/v1/actions", pack_ref=pack["ref"]) == []


def test_rule_unknown_trigger_or_action_404(api):
    pack = api.create_pack()
    p = pack["ref"]
    act = api.create_action(f"{p}.a", "true")
    trig = api.create_trigger(f"{p}.t")
    base = {"ref": f"{p}.r", "pack_ref": p, "label": "R"}
    expect_error(api.post("/api/v1/rules", json={**base, "trigger_ref": f"{p}.nope", "action_ref": act["ref"]}),
                 404, "NOT_FOUND")
    expect_error(api.post("/api/v1/rules", json={**base, "trigger_ref": trig["ref"], "action_ref": f"{p}.nope"}),
                 404, "NOT_FOUND")
    # Unknown pack (a bare ref, so that it is not also a ref/pack mismatch).
    expect_error(api.post("/api/v1/rules", json={**base, "ref": "r", "trigger_ref": trig["ref"],
                                                 "action_ref": act["ref"], "pack_ref": f"ghost_{uid()}"}),
                 404, "NOT_FOUND")
    assert api.items("/api/v1/rules", pack_ref=p) == []
    expect_error(api.get(f"/api/v1/rules/{p}.r"), 404, "NOT_FOUND")


def test_unknown_route_404(api):
    expect_error(api.get("/api/v1/nonexistent"), 404, "NOT_FOUND")


def test_unknown_definitions_404(api):
    for kind in ("packs", "actions", "triggers", "rules"):
        expect_error(api.get(f"/api/v1/{kind}/nosuch_{uid()}.x" if kind != "packs" else f"/api/v1/{kind}/nosuch_{uid()}"),
                     404, "NOT_FOUND")
        expect_error(api.get(f"/api/v1/{kind}/9007199254740990"), 404, "NOT_FOUND")
        expect_error(api.delete(f"/api/v1/{kind}/9007199254740990"), 404, "NOT_FOUND")
    expect_error(api.post("/api/v1/rules/nosuch_zz.r/enable"), 404, "NOT_FOUND")
    expect_error(api.post("/api/v1/rules/nosuch_zz.r/disable"), 404, "NOT_FOUND")


# -------------------------------------------------------------------------------------- duplicates

def test_duplicate_refs_409_and_original_unchanged(api):
    pack = api.create_pack(label="First")
    p = pack["ref"]
    expect_error(api.post("/api/v1/packs", json={"ref": p, "label": "Second", "version": "9"}), 409, "CONFLICT")
    assert api.get_data(f"/api/v1/packs/{p}")["label"] == "First"

    act = api.create_action(f"{p}.a", "echo first", label="First")
    expect_error(api.post("/api/v1/actions", json={"ref": f"{p}.a", "pack_ref": p, "label": "Second",
                                                   "entrypoint": "echo second", "runtime_ref": "core.shell"}),
                 409, "CONFLICT")
    # A bare ref that resolves to the same full ref is a duplicate as well.
    expect_error(api.post("/api/v1/actions", json={"ref": "a", "pack_ref": p, "label": "Second",
                                                   "entrypoint": "echo second", "runtime_ref": "core.shell"}),
                 409, "CONFLICT")
    got = api.get_data(f"/api/v1/actions/{p}.a")
    assert got["label"] == "First" and got["entrypoint"] == "echo first" and got["id"] == act["id"]

    trig = api.create_trigger(f"{p}.t", label="First")
    expect_error(api.post("/api/v1/triggers", json={"ref": f"{p}.t", "pack_ref": p, "label": "Second"}),
                 409, "CONFLICT")
    assert api.get_data(f"/api/v1/triggers/{p}.t")["label"] == "First"

    api.create_rule(f"{p}.r", trig["ref"], act["ref"], label="First")
    expect_error(api.post("/api/v1/rules", json={"ref": f"{p}.r", "pack_ref": p, "label": "Second",
                                                 "trigger_ref": trig["ref"], "action_ref": act["ref"]}),
                 409, "CONFLICT")
    assert api.get_data(f"/api/v1/rules/{p}.r")["label"] == "First"
    assert len(api.items("/api/v1/actions", pack_ref=p)) == 1
    assert len(api.items("/api/v1/triggers", pack_ref=p)) == 1
    assert len(api.items("/api/v1/rules", pack_ref=p)) == 1


def test_duplicate_core_ref_409(api):
    expect_error(api.post("/api/v1/packs", json={"ref": "core", "label": "x", "version": "1"}), 409, "CONFLICT")


# ------------------------------------------------------------------------------------ oversized body

@pytest.mark.parametrize("size", [1024 * 1024 + 1024, 4 * 1024 * 1024], ids=["1MiB+1KiB", "4MiB"])
def test_oversized_body_400(api, size):
    ref = f"e2e_{uid()}"
    big = "x" * size
    resp = api.post("/api/v1/packs", json={"ref": ref, "label": "Big", "version": "1", "description": big})
    expect_error(resp, 400, "BAD_REQUEST", message_contains="Payload too large")
    expect_error(api.get(f"/api/v1/packs/{ref}"), 404, "NOT_FOUND")


def test_just_under_limit_accepted(api):
    # ~900 KiB is within the 1 MiB default request limit.
    pack = api.create_pack(description="y" * (900 * 1024))
    assert len(api.get_data(f"/api/v1/packs/{pack['ref']}")["description"]) == 900 * 1024


@pytest.mark.parametrize("size", [1024 * 1024 + 100, 2 * 1024 * 1024], ids=["1MiB+100", "2MiB"])
def test_oversized_webhook_400_nothing_written(api, size):
    flow = api.webhook_flow("true", action_params={})
    mark = now_mark()
    resp = api.fire_webhook(flow.key, {"blob": "z" * size})
    expect_error(resp, 400, "BAD_REQUEST", message_contains="Payload too large")
    assert api.items("/api/v1/events", trigger_ref=flow.trigger_ref) == []
    assert api.items("/api/v1/executions", created_after=mark, rule_ref=flow.rule_ref) == []
    # The server is fine afterwards.
    expect(api.fire_webhook(flow.key, {"small": True}), 200)


def test_oversized_execute_400(api):
    mark = now_mark()
    resp = api.post("/api/v1/executions/execute",
                    data=json.dumps({"action_ref": "core.echo",
                                     "parameters": {"message": "m" * (1024 * 1024 + 10)}}).encode(),
                    headers=JSON_HEADERS)
    expect_error(resp, 400, "BAD_REQUEST", message_contains="Payload too large")
    assert api.items("/api/v1/executions", created_after=mark) == []


def test_server_healthy_after_bad_input(anon):
    assert expect(anon.get("/health"), 200) == {"status": "ok"}
