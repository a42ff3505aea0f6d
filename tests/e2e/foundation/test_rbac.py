"""T3.10 RBAC permission checks (SCENARIOS.md), API.md §3, §9.2, §14, §16.1–16.3: viewers read but
neither create nor execute, executors execute and cancel but do not create, editors create in their
own packs, admins manage permissions; grants constrained to packs; roles; frozen identities; what an
execution token may do; POST /events needs events:create. Visible but not permitted ⇒ 403,
invisible ⇒ 404."""
from __future__ import annotations

import websocket

from attune_e2e import expect, expect_error, uid
from tenants import assign, custom_set, register, tenant

CURL = 'curl -sS -H "Authorization: Bearer $ATTUNE_API_TOKEN" -H "Content-Type: application/json"'


def new_pack_body() -> dict:
    return {"ref": f"rb_{uid()}", "label": "RBAC", "version": "1.0.0"}


def assert_cannot_create(c, who: str) -> None:
    """No create right: POST /packs, /actions (in core, visible to all), /rules, /keys → 403."""
    for path, body in (
        ("/api/v1/packs", new_pack_body()),
        ("/api/v1/actions", {"ref": f"x{uid(6)}", "pack_ref": "core", "label": "x", "entrypoint": "true",
                             "runtime_ref": "core.shell"}),
        ("/api/v1/triggers", {"ref": f"t{uid(6)}", "pack_ref": "core", "label": "t"}),
        ("/api/v1/rules", {"ref": f"r{uid(6)}", "pack_ref": "core", "label": "r",
                           "trigger_ref": "core.intervaltimer", "action_ref": "core.noop",
                           "trigger_params": {"unit": "seconds", "interval": 3600}}),
        ("/api/v1/keys", {"local_ref": f"k{uid(6)}", "value": 1}),
    ):
        r = c.post(path, json=body)
        assert r.status_code == 403, f"{who}: expected 403 for POST {path}: {r.status_code} {r.text[:300]}"
        expect_error(r, 403, "FORBIDDEN")


# ----------------------------------------------------------------------------------------------- T3.10

def test_t3_10_viewer_reads_but_cannot_create_or_execute(server, api):
    viewer = tenant(server, api, "core.viewer", prefix="viewer")
    assert viewer.get_data("/auth/me")["assigned_permission_set_refs"] == ["core.viewer"]
    assert viewer.get_data("/api/v1/actions/core.echo")["ref"] == "core.echo"
    assert viewer.items("/api/v1/runtimes")
    expect(viewer.get("/api/v1/executions"), 200)
    expect(viewer.get("/api/v1/identities"), 200)  # identities:read is a read like any other
    assert_cannot_create(viewer, "viewer")
    expect_error(viewer.post("/api/v1/executions/execute", json={"action_ref": "core.echo"}), 403, "FORBIDDEN")
    expect_error(viewer.post("/api/v1/permissions/assignments",
                             json={"identity_id": viewer.user["id"], "permission_set_ref": "core.admin"}),
                 403, "FORBIDDEN")


def test_t3_10_executor_executes_and_cancels_but_cannot_create(server, api):
    ex = tenant(server, api, "core.executor", prefix="executor")
    done = ex.wait_execution(ex.execute("core.echo", {"message": "hi"})["id"])
    assert done["status"] == "completed", done
    long = ex.execute("core.sleep", {"seconds": 30})
    ex.wait_execution(long["id"], statuses={"running"})
    expect(ex.post(f"/api/v1/executions/{long['id']}/cancel"), 200)
    assert ex.wait_execution(long["id"])["status"] == "cancelled"
    assert_cannot_create(ex, "executor")
    # Executing a request with a permission set the caller does not hold: 403 (§11.4).
    expect_error(ex.post("/api/v1/executions/execute", json={"action_ref": "core.noop",
                                                              "permission_set_refs": ["core.admin"]}), 403)


def test_t3_10_editor_creates_in_its_own_pack_but_manages_no_permissions(server, api):
    ed = tenant(server, api, "core.editor", prefix="editor")
    flow = ed.webhook_flow('echo "n=$n"', action_params={"n": "{{ event.payload.n }}"})
    assert flow.pack["owner_identity"] == ed.user["id"]
    ed.fire(flow.key, {"n": 3})
    (run,) = ed.wait_rule_executions(flow.rule_ref, 1)
    assert run["status"] == "completed" and run["result"]["stdout"].strip() == "n=3", run
    expect(ed.post("/api/v1/keys", json={"local_ref": "cfg", "value": 1, "owner_type": "pack",
                                         "owner_pack_ref": flow.pack_ref}), 201)
    expect(ed.put(f"/api/v1/actions/{flow.action_ref}", json={"label": "renamed"}), 200)
    # No permissions:manage: no new sets, no assignments (not even to itself), no roles.
    expect_error(ed.post("/api/v1/permissions/sets", json={"ref": f"mine_{uid()}", "grants": []}), 403, "FORBIDDEN")
    expect_error(ed.post("/api/v1/permissions/assignments",
                         json={"identity_id": ed.user["id"], "permission_set_ref": "core.admin"}), 403, "FORBIDDEN")
    expect_error(ed.post(f"/api/v1/identities/{ed.user['id']}/roles", json={"role": "admin"}), 403)
    assert ed.get_data("/auth/me")["assigned_permission_set_refs"] == ["core.editor"]
    expect(ed.delete(f"/api/v1/packs/{flow.pack_ref}"), 200)


def test_t3_10_admin_can_do_all(server, api):
    root = tenant(server, api, "core.admin", prefix="root")
    flow = root.webhook_flow("echo admin")
    root.fire(flow.key, {})
    (run,) = root.wait_rule_executions(flow.rule_ref, 1)
    assert run["status"] == "completed", run
    set_ref = custom_set(root, [{"resource": "runtimes", "actions": ["read"]}], prefix="byroot")
    other = register(server, "managed")
    expect(root.post("/api/v1/permissions/assignments",
                     json={"identity_id": other.user["id"], "permission_set_ref": set_ref}), 201)
    assert other.get_data("/auth/me")["assigned_permission_set_refs"] == [set_ref]
    assert other.user["id"] in {i["id"] for i in root.items("/api/v1/identities", page_size=100)} or \
        root.get_data(f"/api/v1/identities/{other.user['id']}")["id"] == other.user["id"]
    local = f"sys_{uid(8)}"
    expect(root.post("/api/v1/keys", json={"local_ref": local, "value": "v"}), 201)
    assert root.get_data(f"/api/v1/keys/{local}")["value"] == "v"  # keys:decrypt


def test_new_identity_without_grants_is_refused_with_403(server):
    u = register(server, "nogrant")
    assert u.get_data("/auth/me")["effective_permissions"] == []
    assert_cannot_create(u, "grantless identity")
    expect_error(u.post("/api/v1/executions/execute", json={"action_ref": "core.noop"}), 403, "FORBIDDEN")


# ----------------------------------------------------------------------------------- constrained grants

def test_grant_constrained_to_a_pack_reveals_and_executes_only_that_pack(server, api):
    owner = tenant(server, api, "core.editor", prefix="owner")
    pa, pb = owner.create_pack(f"pa_{uid()}")["ref"], owner.create_pack(f"pb_{uid()}")["ref"]
    act_a = owner.create_action(f"{pa}.go", "echo from-a", reference_visibility="private")
    act_b = owner.create_action(f"{pb}.go", "echo from-b", reference_visibility="private")
    set_ref = custom_set(api, [{"resource": "actions", "actions": ["read", "execute"],
                                "constraints": {"pack_refs": [pa]}}], prefix="runa")
    holder = tenant(server, api, set_ref, prefix="holder")

    assert holder.get_data(f"/api/v1/packs/{pa}")["ref"] == pa
    assert holder.get_data(f"/api/v1/actions/{act_a['ref']}")["id"] == act_a["id"]
    refs = {p["ref"] for p in holder.items("/api/v1/packs")}
    assert pa in refs and pb not in refs, refs
    assert [a["ref"] for a in holder.items("/api/v1/actions", pack_ref=pa)] == [act_a["ref"]]
    run = holder.execute(act_a["ref"], {})
    assert owner.wait_execution(run["id"])["status"] == "completed"
    # Visible, but no create right in it: 403.
    expect_error(holder.post("/api/v1/actions", json={"ref": "extra", "pack_ref": pa, "label": "x",
                                                      "entrypoint": "true", "runtime_ref": "core.shell"}), 403)
    expect_error(holder.put(f"/api/v1/actions/{act_a['ref']}", json={"label": "x"}), 403)
    expect_error(holder.delete(f"/api/v1/actions/{act_a['ref']}"), 403)
    # The other pack stays invisible: 404 everywhere, absent from lists.
    expect_error(holder.get(f"/api/v1/packs/{pb}"), 404, "NOT_FOUND")
    expect_error(holder.get(f"/api/v1/actions/{act_b['ref']}"), 404, "NOT_FOUND")
    expect_error(holder.post("/api/v1/executions/execute", json={"action_ref": act_b["ref"]}), 404, "NOT_FOUND")
    body = expect(holder.get("/api/v1/actions", params={"pack_ref": pb}), 200)
    assert body["items"] == [] and body["pagination"]["total_items"] == 0, body
    # executable_with_current_access lists what the holder may run.
    runnable = {a["ref"] for a in holder.items("/api/v1/actions", executable_with_current_access="true")}
    assert act_a["ref"] in runnable and act_b["ref"] not in runnable, runnable


def test_roles_grant_the_bound_set(server, api):
    u = register(server, "roled")
    role = f"runner-{uid(6)}"
    set_ref = custom_set(api, [{"resource": "actions", "actions": ["read", "execute"]},
                               {"resource": "executions", "actions": ["read"]}], prefix="runner")
    expect(api.post(f"/api/v1/permissions/sets/{set_ref}/roles", json={"role": role}), 200)
    expect_error(u.post("/api/v1/executions/execute", json={"action_ref": "core.noop"}), 403)
    expect(api.post(f"/api/v1/identities/{u.user['id']}/roles", json={"role": role}), 200)
    run = u.wait_execution(u.execute("core.noop", {})["id"])
    assert run["status"] == "completed", run
    expect(api.delete(f"/api/v1/identities/{u.user['id']}/roles/{role}"), 200)
    expect_error(u.post("/api/v1/executions/execute", json={"action_ref": "core.noop"}), 403)
    # core.admin through a role does not reveal another tenant's pack either.
    owner = tenant(server, api, "core.editor", prefix="owner")
    p = owner.create_pack()["ref"]
    admin_role = f"admins-{uid(6)}"
    expect(api.post("/api/v1/permissions/sets/core.admin/roles", json={"role": admin_role}), 200)
    expect(api.post(f"/api/v1/identities/{u.user['id']}/roles", json={"role": admin_role}), 200)
    expect(u.post("/api/v1/permissions/sets", json={"ref": f"viaadmin_{uid()}", "grants": []}), 201)
    expect_error(u.get(f"/api/v1/packs/{p}"), 404, "NOT_FOUND")


def test_frozen_identity_tokens_are_refused_at_once(server, api):
    t = tenant(server, api, "core.editor", prefix="frozen")
    expect(t.get("/api/v1/packs"), 200)
    expect(api.put(f"/api/v1/identities/{t.user['id']}", json={"frozen": True}), 200)
    expect_error(t.get("/api/v1/packs"), 401, "UNAUTHORIZED")
    expect_error(t.post("/api/v1/executions/execute", json={"action_ref": "core.noop"}), 401)
    expect_error(server.client().post("/auth/login", json={"login": t.user["login"], "password": t.password}), 401)
    expect_error(server.client().post("/auth/refresh", json={"refresh_token": t.refresh_token}), 401)
    try:
        websocket.create_connection(server.ws_url + "/ws", header=[f"Authorization: Bearer {t.token}"],
                                    timeout=10).close()
        raise AssertionError("a frozen identity's token opened a notifier connection")
    except websocket.WebSocketBadStatusException as e:
        assert e.status_code == 401
    expect(api.put(f"/api/v1/identities/{t.user['id']}", json={"frozen": False}), 200)
    expect(t.get("/api/v1/packs"), 200)


# ----------------------------------------------------------------------------------- execution tokens

PROBE = """code() {{ {curl} -o /dev/null -w '%{{http_code}}' "$@"; echo; }}
echo "token=$([ -n "$ATTUNE_API_TOKEN" ] && echo yes || echo no)"
echo "own_exec=$(code "$ATTUNE_API_URL/api/v1/executions/$ATTUNE_EXEC_ID")"
echo "own_action=$(code "$ATTUNE_API_URL/api/v1/actions/$ATTUNE_ACTION")"
echo "own_pack=$(code "$ATTUNE_API_URL/api/v1/packs/$ATTUNE_PACK_REF")"
echo "other_exec=$(code "$ATTUNE_API_URL/api/v1/executions/$other_exec")"
echo "create_pack=$(code -X POST "$ATTUNE_API_URL/api/v1/packs" -d '{{"ref":"tok_'$ATTUNE_EXEC_ID'","label":"x","version":"1.0.0"}}')"
echo "create_action=$(code -X POST "$ATTUNE_API_URL/api/v1/actions" -d '{{"ref":"tok'$ATTUNE_EXEC_ID'","pack_ref":"'$ATTUNE_PACK_REF'","label":"x","entrypoint":"true"}}')"
echo "exec_core=$(code -X POST "$ATTUNE_API_URL/api/v1/executions/execute" -d '{{"action_ref":"core.noop"}}')"
echo "exec_sibling=$(code -X POST "$ATTUNE_API_URL/api/v1/executions/execute" -d '{{"action_ref":"'$sibling'"}}')"
""".format(curl=CURL)


def probe_results(ex: dict) -> dict:
    assert ex["status"] == "completed", ex
    return dict(line.split("=", 1) for line in ex["result"]["stdout"].split())


def test_execution_token_reads_its_own_execution_action_and_pack_only(server, api):
    """§16.2: the token's rights are the grants of the execution's permission sets plus reading its own
    action and pack — never those of the identity that started it (here an editor). The execution
    carries a set granting nothing relevant, so that it has a token in any case (§11.4)."""
    owner = tenant(server, api, "core.editor", prefix="tok")
    inert = custom_set(api, [{"resource": "runtimes", "actions": ["read"]}], prefix="inert")
    p = owner.create_pack()["ref"]
    sibling = owner.create_action(f"{p}.sibling", "echo sibling")
    probe = owner.create_action(f"{p}.probe", PROBE)
    other = owner.wait_execution(owner.execute(sibling["ref"], {})["id"])
    assign(api, owner, inert)
    ex = owner.wait_execution(owner.execute(probe["ref"], {"other_exec": other["id"], "sibling": sibling["ref"]},
                                            permission_set_refs=[inert])["id"])
    seen = probe_results(ex)
    want = {"token": "yes", "own_exec": "200", "own_action": "200", "own_pack": "200", "other_exec": "404",
            "create_pack": "403", "create_action": "403", "exec_core": "403"}
    wrong = {k: f"{seen.get(k)} (want {v})" for k, v in want.items() if seen.get(k) != v}
    assert not wrong, f"execution token: {wrong}; all: {seen}"
    assert seen["exec_sibling"] in ("403", "404"), seen
    expect_error(owner.get(f"/api/v1/packs/tok_{ex['id']}"), 404)


def test_execution_token_gains_the_rights_of_its_permission_sets(server, api):
    owner = tenant(server, api, "core.editor", prefix="tokset")
    p = owner.create_pack()["ref"]
    sibling = owner.create_action(f"{p}.sibling", "echo sibling")
    probe = owner.create_action(f"{p}.probe", PROBE)
    other = owner.wait_execution(owner.execute(sibling["ref"], {})["id"])
    runner = custom_set(api, [{"resource": "actions", "actions": ["read", "execute"], "constraints": {"pack_refs": [p]}},
                              {"resource": "executions", "actions": ["read"], "constraints": {"pack_refs": [p]}}],
                        prefix="tokrun")
    # A non-admin may request only sets it holds (§11.4).
    expect_error(owner.post("/api/v1/executions/execute", json={"action_ref": probe["ref"],
                                                                 "permission_set_refs": [runner]}), 403)
    expect_error(owner.post("/api/v1/executions/execute", json={"action_ref": probe["ref"],
                                                                 "permission_set_refs": [f"nope_{uid()}"]}), 400)
    assign(api, owner, runner)
    ex = owner.wait_execution(owner.execute(probe["ref"], {"other_exec": other["id"], "sibling": sibling["ref"]},
                                            permission_set_refs=[runner])["id"])
    seen = probe_results(ex)
    assert seen["other_exec"] == "200", seen  # executions:read on its pack
    assert seen["exec_sibling"] == "201", seen  # actions:execute on its pack
    assert seen["exec_core"] == "403", seen  # ... and nowhere else
    assert seen["create_pack"] == "403" and seen["create_action"] == "403", seen

    # Through a rule's permission_set_refs too.
    trig = owner.create_trigger(f"{p}.hook", reference_visibility="private")
    key = owner.enable_webhook(trig["ref"])
    rule = owner.create_rule(f"{p}.rule", trig["ref"], probe["ref"], permission_set_refs=[runner],
                             action_params={"other_exec": other["id"], "sibling": sibling["ref"]})
    owner.fire(key, {})
    (run,) = owner.wait_rule_executions(rule["ref"], 1, timeout=30)
    seen = probe_results(run)
    assert seen["other_exec"] == "200" and seen["exec_sibling"] == "201" and seen["exec_core"] == "403", seen


# ----------------------------------------------------------------------------------------- events:create

def test_post_events_needs_events_create(server, api):
    ed = tenant(server, api, "core.editor", prefix="evt")  # core.editor has no events:create
    p = ed.create_pack()["ref"]
    trig = ed.create_trigger(f"{p}.in", reference_visibility="private")
    expect_error(ed.post("/api/v1/events", json={"trigger_ref": trig["ref"], "payload": {"a": 1}}), 403, "FORBIDDEN")
    assert ed.items("/api/v1/events", trigger_ref=trig["ref"]) == []

    creator = custom_set(api, [{"resource": "events", "actions": ["create", "read"]}], prefix="evcreate")
    ed2 = tenant(server, api, "core.editor", creator, prefix="evt2")
    p2 = ed2.create_pack()["ref"]
    own = ed2.create_trigger(f"{p2}.in", reference_visibility="private")
    ev = expect(ed2.post("/api/v1/events", json={"trigger_ref": own["ref"], "payload": {"a": 2}}), 201)["data"]
    assert ev["trigger_ref"] == own["ref"] and ev["payload"] == {"a": 2}
    # The other tenant's private trigger is invisible: 404, and nothing is stored for it.
    expect_error(ed2.post("/api/v1/events", json={"trigger_ref": trig["ref"], "payload": {}}), 404, "NOT_FOUND")
    expect_error(ed2.post("/api/v1/events", json={"trigger": trig["id"], "payload": {}}), 404, "NOT_FOUND")
    assert ed.items("/api/v1/events", trigger_ref=trig["ref"]) == []
    expect_error(ed2.post("/api/v1/events", json={"trigger_ref": f"{p2}.missing"}), 404)


# --------------------------------------------------------------------------------------------- keys

def test_system_keys_need_key_grants(server, api):
    local = f"sysk_{uid(8)}"
    expect(api.post("/api/v1/keys", json={"local_ref": local, "value": "sealed"}), 201)
    nobody = register(server, "nokeys")
    status = nobody.get(f"/api/v1/keys/{local}").status_code
    assert status in (403, 404), f"a grantless identity read a system key: {status}"
    listing = nobody.get("/api/v1/keys", params={"page_size": 100})
    assert listing.status_code in (200, 403), listing.text
    if listing.status_code == 200:
        assert local not in {k["local_ref"] for k in listing.json()["items"]}
    expect_error(nobody.post("/api/v1/keys", json={"local_ref": f"n{uid(6)}", "value": 1}), 403)
    expect_error(nobody.put(f"/api/v1/keys/{local}", json={"value": "x"}), status)
    viewer = tenant(server, api, "core.viewer", prefix="keyview")
    got = viewer.get_data(f"/api/v1/keys/{local}")
    assert got["encrypted"] is True and got["value"] is None, got  # read, no decrypt
    expect_error(viewer.put(f"/api/v1/keys/{local}", json={"value": "x"}), 403)
    # A key grant constrained to pack keys hides system keys from GET and lists.
    packs_only = custom_set(api, [{"resource": "keys", "actions": ["read", "decrypt"],
                                   "constraints": {"owner_types": ["pack"]}}], prefix="pkeys")
    pk = tenant(server, api, packs_only, prefix="pkeys")
    expect_error(pk.get(f"/api/v1/keys/{local}"), 404)
    assert local not in {k["local_ref"] for k in pk.items("/api/v1/keys")}
    root = tenant(server, api, "core.admin", prefix="keyroot")
    assert root.get_data(f"/api/v1/keys/{local}")["value"] == "sealed"
    assert api.get_data(f"/api/v1/keys/{local}")["value"] == "sealed"
