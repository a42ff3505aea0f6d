"""Policies over the API (API.md §6, §7, §15, §16): CRUD, validation, filters, RBAC, pack files,
the policies that apply to an action, retries and the executions_total quota of execute, and the
queue statistics of an action nothing has admitted yet. Admission itself (queues, limits) is
tested elsewhere; the session server is shared, so every global policy here sets nothing and is
deleted again."""
from __future__ import annotations

import pytest

from attune_e2e import assert_list_envelope, assert_timestamps, expect, expect_error, is_id, uid
from packs_util import tar_pack, upload
from tenants import custom_set, tenant


def _pack_with_action(api, name: str = "run"):
    pack = api.create_pack()
    action = api.create_action(f"{pack['ref']}.{name}", "true")
    return pack, action


def _policy(api, **body) -> dict:
    return expect(api.post("/api/v1/policies", json=body), 201)["data"]


def _refs(body: dict) -> list:
    return [p["ref"] for p in body["items"]]


def _fields(resp) -> dict:
    body = expect_error(resp, 422, "VALIDATION_ERROR")
    return body["details"]["fields"]


# ------------------------------------------------------------------------------------------- CRUD

def test_policy_crud_by_ref_and_id(api):
    pack, action = _pack_with_action(api)
    p = pack["ref"]
    created = _policy(api, ref="limit", pack_ref=p, action_ref=action["ref"], label="Limit",
                      description="one at a time", priority=3, tags=["ops"],
                      concurrency={"limit": 1, "parameters": ["host"]},
                      rate_limit={"max_executions": 10, "window_seconds": 60},
                      quotas=[{"quota_type": "running_executions", "limit": 4}],
                      retry={"max_retries": 2, "backoff": "linear"})
    assert is_id(created["id"])
    assert created["ref"] == f"{p}.limit" and created["name"] == "limit"
    assert created["pack_ref"] == p and created["pack"] == pack["id"]
    assert created["scope"] == {"type": "action", "pack_ref": p, "action_ref": action["ref"]}
    assert created["action"] == action["id"] and created["action_ref"] == action["ref"]
    assert created["concurrency"] == {"limit": 1, "method": "enqueue", "parameters": ["host"]}
    assert created["rate_limit"] == {"max_executions": 10, "window_seconds": 60}
    assert created["quotas"] == [{"quota_type": "running_executions", "limit": 4}]
    assert created["retry"] == {"max_retries": 2, "on": ["failed", "timeout"], "backoff": "linear",
                                "delay_seconds": 1, "max_delay_seconds": 300}
    assert created["enabled"] is True and created["priority"] == 3 and created["tags"] == ["ops"]
    assert_timestamps(created)
    assert api.get_data(f"/api/v1/policies/{created['ref']}") == created
    assert api.get_data(f"/api/v1/policies/{created['id']}") == created

    updated = expect(api.put(f"/api/v1/policies/{created['ref']}",
                             json={"concurrency": {"limit": 3, "method": "cancel"}, "rate_limit": None,
                                   "pack_ref": "ignored", "ref": "ignored"}), 200)["data"]
    assert updated["concurrency"] == {"limit": 3, "method": "cancel", "parameters": []}
    assert updated["rate_limit"] is None
    assert updated["ref"] == created["ref"] and updated["pack_ref"] == p
    assert updated["retry"] == created["retry"], "PUT changes only the given fields"
    assert api.get_data(f"/api/v1/policies/{created['id']}") == updated

    body = expect(api.delete(f"/api/v1/policies/{created['ref']}"), 200)
    assert body.get("success") is True, body
    expect_error(api.get(f"/api/v1/policies/{created['ref']}"), 404, "NOT_FOUND")
    expect_error(api.delete(f"/api/v1/policies/{created['ref']}"), 404, "NOT_FOUND")


def test_scope_from_top_level_fields(api):
    pack, action = _pack_with_action(api)
    p = pack["ref"]
    on_pack = _policy(api, ref="on_pack", pack_ref=p, rate_limit={"max_executions": 5, "window_seconds": 1})
    assert on_pack["scope"] == {"type": "pack", "pack_ref": p}
    assert on_pack["action_ref"] is None
    # The owning pack from the action's ref; from a qualified ref.
    on_action = _policy(api, ref="on_action", action_ref=action["ref"])
    assert on_action["pack_ref"] == p and on_action["scope"]["type"] == "action"
    explicit = _policy(api, ref=f"{p}.explicit", scope={"type": "action", "action_ref": action["ref"]})
    assert explicit["pack_ref"] == p and explicit["scope"]["action_ref"] == action["ref"]
    # The action's policies go with it; the pack's stay.
    expect(api.delete(f"/api/v1/actions/{action['ref']}"), 200)
    expect_error(api.get(f"/api/v1/policies/{on_action['ref']}"), 404, "NOT_FOUND")
    expect_error(api.get(f"/api/v1/policies/{explicit['ref']}"), 404, "NOT_FOUND")
    assert api.get_data(f"/api/v1/policies/{on_pack['ref']}") == on_pack


def test_duplicates_unknown_references_and_validation(api):
    pack, action = _pack_with_action(api)
    p = pack["ref"]
    _policy(api, ref="dup", pack_ref=p)
    expect_error(api.post("/api/v1/policies", json={"ref": "dup", "pack_ref": p}), 409, "CONFLICT")
    expect_error(api.post("/api/v1/policies", json={"ref": "x", "pack_ref": f"nosuch_{uid()}"}),
                 404, "NOT_FOUND")
    expect_error(api.post("/api/v1/policies", json={"ref": "x", "pack_ref": p, "action_ref": f"{p}.nosuch"}),
                 404, "NOT_FOUND")
    expect_error(api.post("/api/v1/policies", json={
        "ref": "x", "pack_ref": p, "scope": {"type": "pack", "pack_ref": f"nosuch_{uid()}"}}), 404, "NOT_FOUND")

    cases = [
        ({"concurrency": {"limit": 0}}, {"concurrency.limit"}),
        ({"concurrency": {"limit": 1, "method": "drop"}}, {"concurrency.method"}),
        ({"concurrency": {"limit": 1, "parameters": "host"}}, {"concurrency.parameters"}),
        ({"rate_limit": {"max_executions": 0, "window_seconds": 0}},
         {"rate_limit.max_executions", "rate_limit.window_seconds"}),
        ({"quotas": [{"quota_type": "daily", "limit": 1}, {"quota_type": "executions_total", "limit": -1}]},
         {"quotas[0].quota_type", "quotas[1].limit"}),
        ({"retry": {"backoff": "random"}}, {"retry.backoff"}),
        ({"retry": {"max_retries": 101}}, {"retry.max_retries"}),
        ({"scope": {"type": "tenant"}}, {"scope.type"}),
        ({"enabled": "yes", "priority": "high", "tags": "a"}, {"enabled", "priority", "tags"}),
    ]
    for extra, fields in cases:
        body = {"ref": f"bad_{uid(6)}", "pack_ref": p, **extra}
        assert set(_fields(api.post("/api/v1/policies", json=body))) == fields, extra
        expect_error(api.get(f"/api/v1/policies/{p}.{body['ref']}"), 404, "NOT_FOUND")
    assert set(_fields(api.post("/api/v1/policies", json={"pack_ref": p}))) == {"ref"}
    assert set(_fields(api.put(f"/api/v1/policies/{p}.dup", json={"concurrency": {"limit": "2"}}))) == \
        {"concurrency.limit"}
    assert api.get_data(f"/api/v1/policies/{p}.dup")["concurrency"] is None


# ---------------------------------------------------------------------------------- lists, order

def test_lists_filters_and_the_policies_of_an_action_in_resolution_order(api):
    pack, action = _pack_with_action(api)
    other = api.create_action(f"{pack['ref']}.other", "true")
    p = pack["ref"]
    low = _policy(api, ref="a_low", pack_ref=p, action_ref=action["ref"], priority=1)
    high = _policy(api, ref="z_high", pack_ref=p, action_ref=action["ref"], priority=9)
    packwide = _policy(api, ref="packwide", pack_ref=p, priority=100)
    _policy(api, ref="for_other", pack_ref=p, action_ref=other["ref"])
    _policy(api, ref="off", pack_ref=p, action_ref=action["ref"], enabled=False)
    # A global policy that sets nothing (the session server is shared).
    everywhere = _policy(api, ref=f"{p}.everywhere", scope={"type": "global"})
    try:
        applying = expect(api.get(f"/api/v1/actions/{action['ref']}/policies"), 200)
        assert_list_envelope(applying)
        mine = [r for r in _refs(applying) if r.startswith(p + ".")]
        assert mine == [high["ref"], low["ref"], packwide["ref"], everywhere["ref"]]
        assert _refs(expect(api.get(f"/api/v1/actions/{action['id']}/policies"), 200)) == _refs(applying)

        assert sorted(_refs(api.list("/api/v1/policies", action_ref=action["ref"]))) == \
            sorted([low["ref"], high["ref"], f"{p}.off"])
        by_pack = api.list("/api/v1/policies", pack_ref=p, page_size=100)
        assert by_pack["pagination"]["total_items"] == 6
        assert set(_refs(api.list(f"/api/v1/packs/{p}/policies"))) == set(_refs(by_pack))
        first = api.list(f"/api/v1/packs/{p}/policies", page_size=2, order="asc")
        assert _refs(first) == [low["ref"], high["ref"]]
        assert first["pagination"]["total_items"] == 6 and first["pagination"]["has_next"] is True
    finally:
        expect(api.delete(f"/api/v1/policies/{everywhere['ref']}"), 200)
    expect_error(api.get(f"/api/v1/actions/{p}.nosuch/policies"), 404, "NOT_FOUND")
    expect_error(api.get(f"/api/v1/packs/nosuch_{uid()}/policies"), 404, "NOT_FOUND")


# ------------------------------------------------------------------------------------------ RBAC

def test_viewer_reads_but_cannot_write(server, api):
    pack, action = _pack_with_action(api)
    policy = _policy(api, ref="seen", pack_ref=pack["ref"], action_ref=action["ref"])
    # core.viewer reads everywhere; admin's pack is not the viewer's, so it stays invisible...
    outsider = tenant(server, api, "core.viewer", prefix="polview")
    expect_error(outsider.get(f"/api/v1/policies/{policy['ref']}"), 404, "NOT_FOUND")
    expect_error(outsider.post("/api/v1/policies", json={"ref": "x", "pack_ref": pack["ref"]}), 404, "NOT_FOUND")
    assert policy["ref"] not in _refs(outsider.list("/api/v1/policies"))
    # ...until a read-only grant names it: then it reads, and every write is 403.
    reader = custom_set(api, [{"resource": "policies", "actions": ["read"],
                               "constraints": {"pack_refs": [pack["ref"]]}}], prefix="polread")
    viewer = tenant(server, api, "core.viewer", reader, prefix="polview")
    assert viewer.get_data(f"/api/v1/policies/{policy['ref']}") == policy
    assert _refs(viewer.list("/api/v1/policies", pack_ref=pack["ref"])) == [policy["ref"]]
    expect_error(viewer.post("/api/v1/policies", json={"ref": "x", "pack_ref": pack["ref"]}), 403, "FORBIDDEN")
    expect_error(viewer.put(f"/api/v1/policies/{policy['ref']}", json={"priority": 1}), 403, "FORBIDDEN")
    expect_error(viewer.delete(f"/api/v1/policies/{policy['ref']}"), 403, "FORBIDDEN")


def test_editor_constrained_to_one_pack(server, api):
    mine, mine_action = _pack_with_action(api)
    theirs, theirs_action = _pack_with_action(api)
    grants = [{"resource": r, "actions": ["read", "create", "update", "delete"],
               "constraints": {"pack_refs": [mine["ref"]]}} for r in ("policies", "actions")]
    editor = tenant(server, api, custom_set(api, grants, prefix="poled"), prefix="poled")

    own = expect(editor.post("/api/v1/policies", json={
        "ref": "mine", "pack_ref": mine["ref"], "action_ref": mine_action["ref"],
        "concurrency": {"limit": 2}}), 201)["data"]
    expect(editor.put(f"/api/v1/policies/{own['ref']}", json={"priority": 2}), 200)
    # Another pack: invisible (404); its actions cannot be governed from this pack either.
    expect_error(editor.post("/api/v1/policies", json={"ref": "x", "pack_ref": theirs["ref"]}), 404, "NOT_FOUND")
    expect_error(editor.post("/api/v1/policies", json={
        "ref": "x", "pack_ref": mine["ref"], "action_ref": theirs_action["ref"]}), 404, "NOT_FOUND")
    # A global policy governs every pack: not with a constrained grant.
    expect_error(editor.post("/api/v1/policies", json={
        "ref": "x", "pack_ref": mine["ref"], "scope": {"type": "global"}}), 403, "FORBIDDEN")
    admins = _policy(api, ref="admins", pack_ref=theirs["ref"])
    expect_error(editor.get(f"/api/v1/policies/{admins['ref']}"), 404, "NOT_FOUND")
    expect_error(editor.delete(f"/api/v1/policies/{admins['ref']}"), 404, "NOT_FOUND")
    assert _refs(editor.list("/api/v1/policies")) == [own["ref"]]
    expect(editor.delete(f"/api/v1/policies/{own['ref']}"), 200)


# ------------------------------------------------------------------------------------------ packs

def _policy_pack(ref: str, with_packwide: bool = True) -> dict:
    files = {
        "pack.yaml": f"ref: {ref}\nversion: 1.0.0\n",
        "actions/job.yaml": "name: job\nrunner_type: shell\nentry_point: 'true'\n",
        "policies/one_at_a_time.yaml": "name: one_at_a_time\naction_ref: job\n"
                                       "concurrency: {limit: 1, method: cancel}\n",
    }
    if with_packwide:
        files["policies/packwide.yaml"] = (f"pack_ref: {ref}\npriority: 2\n"
                                           "rate_limit: {max_executions: 100, window_seconds: 1}\n")
    return files


def test_pack_files_install_replace_and_remove_policies(api):
    ref = f"polpack_{uid()}"
    comps = expect(upload(api, tar_pack(_policy_pack(ref))), 201)["data"]["components"]
    assert comps["policies"] == 2, comps
    listed = api.list(f"/api/v1/packs/{ref}/policies")
    assert sorted(_refs(listed)) == [f"{ref}.one_at_a_time", f"{ref}.packwide"]
    one = api.get_data(f"/api/v1/policies/{ref}.one_at_a_time")
    assert one["scope"] == {"type": "action", "pack_ref": ref, "action_ref": f"{ref}.job"}
    assert one["concurrency"] == {"limit": 1, "method": "cancel", "parameters": []}
    assert api.get_data(f"/api/v1/policies/{ref}.packwide")["scope"] == {"type": "pack", "pack_ref": ref}
    assert _refs(api.list(f"/api/v1/actions/{ref}.job/policies")) [:2] == \
        [f"{ref}.one_at_a_time", f"{ref}.packwide"]

    # Force re-install: kept ones keep their id, missing ones go.
    comps = expect(upload(api, tar_pack(_policy_pack(ref, with_packwide=False)), force=True), 201)["data"]["components"]
    assert comps["policies"] == 1, comps
    assert api.get_data(f"/api/v1/policies/{ref}.one_at_a_time")["id"] == one["id"]
    expect_error(api.get(f"/api/v1/policies/{ref}.packwide"), 404, "NOT_FOUND")

    expect(api.delete(f"/api/v1/packs/{ref}"), 200)
    expect_error(api.get(f"/api/v1/policies/{ref}.one_at_a_time"), 404, "NOT_FOUND")
    assert api.list("/api/v1/policies", pack_ref=ref)["items"] == []


def test_bad_policy_files_install_nothing(api):
    ref = f"polbad_{uid()}"
    for name, text, field in [
        ("bad.yaml", "name: bad\nconcurrency: {limit: 0}\n", "concurrency.limit"),
        ("bad.yaml", "name: bad\naction_ref: nosuch\nconcurrency: {limit: 1}\n", "action_ref"),
        ("bad.yaml", "name: 'a b'\n", "name"),
    ]:
        files = _policy_pack(ref)
        files[f"policies/{name}"] = text
        body = expect_error(upload(api, tar_pack(files)), 422, "VALIDATION_ERROR")
        assert body["details"]["file"] == f"policies/{name}", body
        assert body["details"]["field"] == field, body
        expect_error(api.get(f"/api/v1/packs/{ref}"), 404, "NOT_FOUND")
    broken = _policy_pack(ref)
    broken["policies/broken.yaml"] = "name: [unclosed\n"
    body = expect_error(upload(api, tar_pack(broken)), 422)
    assert body["details"]["file"] == "policies/broken.yaml" and body["details"]["line"] >= 1, body


# --------------------------------------------------------------------------------------- execute

def test_execute_retry_fields(api):
    _, action = _pack_with_action(api)
    for extra, field in [({"max_retries": 101}, "max_retries"), ({"max_retries": -1}, "max_retries"),
                         ({"max_retries": "2"}, "max_retries"), ({"retry": "often"}, "retry"),
                         ({"retry": {"backoff": "random"}}, "retry.backoff"),
                         ({"retry": {"max_retries": 200}}, "retry.max_retries"),
                         ({"retry": {"on": ["cancelled"]}}, "retry.on"),
                         ({"retry": {"delay_seconds": -1}}, "retry.delay_seconds")]:
        fields = _fields(api.post("/api/v1/executions/execute", json={"action_ref": action["ref"], **extra}))
        assert field in fields, (extra, fields)

    plain = api.execute(action["ref"])
    assert "retry" not in plain and plain["max_retries"] == 0, plain
    both = api.execute(action["ref"], max_retries=1, retry={"max_retries": 5, "backoff": "constant",
                                                           "on": ["timeout"], "delay_seconds": 2})
    assert both["retry"] == {"max_retries": 1, "on": ["timeout"], "backoff": "constant",
                             "delay_seconds": 2, "max_delay_seconds": 300}, both
    assert both["max_retries"] == 1, both
    alone = api.execute(action["ref"], max_retries=3)
    assert alone["retry"] == {"max_retries": 3, "on": ["failed", "timeout"], "backoff": "exponential",
                              "delay_seconds": 1, "max_delay_seconds": 300}, alone
    assert alone["max_retries"] == 3, alone


def _quota_refused(resp, message: str) -> None:
    expect_error(resp, 429, "TOO_MANY_REQUESTS", message=message)
    assert int(resp.headers["Retry-After"]) > 0, resp.headers


def test_executions_total_quota_of_an_action_then_lifted(api):
    pack, action = _pack_with_action(api)
    quota = _policy(api, ref="total", pack_ref=pack["ref"], action_ref=action["ref"],
                    quotas=[{"quota_type": "executions_total", "limit": 2}])
    for _ in range(2):
        api.execute(action["ref"])
    message = f"Quota exceeded: policy {quota['ref']} allows 2 executions of action '{action['ref']}'"
    for _ in range(2):  # refused, and still refused
        _quota_refused(api.post("/api/v1/executions/execute", json={"action_ref": action["ref"]}), message)
    assert api.list("/api/v1/executions", action_ref=action["ref"])["pagination"]["total_items"] == 2
    expect(api.put(f"/api/v1/policies/{quota['ref']}", json={"enabled": False}), 200)
    api.execute(action["ref"])


def test_executions_total_quota_of_a_pack(api):
    pack, first = _pack_with_action(api, "first")
    second = api.create_action(f"{pack['ref']}.second", "true")
    quota = _policy(api, ref="pack_total", pack_ref=pack["ref"],
                    quotas=[{"quota_type": "executions_total", "limit": 1}])
    api.execute(first["ref"])
    _quota_refused(api.post("/api/v1/executions/execute", json={"action_ref": second["ref"]}),
                   f"Quota exceeded: policy {quota['ref']} allows 1 executions of pack '{pack['ref']}'")


# ----------------------------------------------------------------------------------- queue stats

def test_queue_stats_of_an_action_nothing_admitted(api):
    pack, action = _pack_with_action(api)
    stats = api.get_data(f"/api/v1/actions/{action['ref']}/queue-stats")
    assert stats == {"action_id": action["id"], "action_ref": action["ref"], "active_count": 0,
                     "max_concurrent": None, "queue_length": 0, "total_enqueued": 0,
                     "total_completed": 0, "oldest_enqueued_at": None, "last_updated": None}
    assert api.get_data(f"/api/v1/actions/{action['id']}/queue-stats") == stats
    _policy(api, ref="lim", pack_ref=pack["ref"], action_ref=action["ref"], concurrency={"limit": 4})
    assert api.get_data(f"/api/v1/actions/{action['ref']}/queue-stats")["max_concurrent"] == 4
    expect_error(api.get(f"/api/v1/actions/{pack['ref']}.nosuch/queue-stats"), 404, "NOT_FOUND")
