"""T1.7 Multi-tenant isolation and T3.11 System vs user packs (SCENARIOS.md), API.md §16.1, §16.3,
§17.3: `core` is visible (and executable, with a grant) for every identity; a tenant's packs and
everything in or derived from them (actions, triggers, sensors, rules, keys, events, enforcements,
executions) are invisible to every other tenant — 404 on every route, absent from lists and totals
and from notifier deliveries — even to an identity holding `core.admin`.

Public triggers and actions are discoverable by design (§16.5: metadata of `public` objects of every
pack in GET /triggers, /triggers/{ref} and /actions/search), so the objects of the isolation sweep are
created with `reference_visibility: "private"`; the public case is covered in test_references.py.
"""
from __future__ import annotations

from types import SimpleNamespace

from attune_e2e import expect, expect_error, uid
from packs_util import upload_pack
from tenants import Notifier, assert_hidden_from_list, register, tenant, total

PRIVATE = {"reference_visibility": "private"}


# ----------------------------------------------------------------------------------- a tenant's world

def build_world(t) -> SimpleNamespace:
    """One of everything, owned by tenant `t` (an editor): pack, private action, private trigger with
    a webhook, rule, sensor (on a second trigger without rules, so it never runs), pack key and
    identity key, an execution of its action, and a webhook event → enforcement → execution."""
    pack = t.create_pack(f"ten_{uid()}")
    p = pack["ref"]
    assert pack["owner_identity"] == t.user["id"], pack
    action = t.create_action(f"{p}.act", 'echo "tenant action $message"', **PRIVATE)
    trigger = t.create_trigger(f"{p}.hook", **PRIVATE)
    key = t.enable_webhook(trigger["ref"])
    rule = t.create_rule(f"{p}.rule", trigger["ref"], action["ref"],
                         action_params={"message": "{{ event.payload.m }}"})
    quiet = t.create_trigger(f"{p}.quiet", **PRIVATE)
    sensor = expect(t.post("/api/v1/sensors", json={
        "ref": "watch", "pack_ref": p, "label": "Watch", "runner_type": "shell",
        "entry_point": "sleep 30", "trigger_types": [quiet["ref"]]}), 201)["data"]
    # Plaintext keys: an editor has no keys:decrypt, and the owner reads them back below.
    pack_key = expect(t.post("/api/v1/keys", json={"local_ref": "cfg", "value": "pack-secret", "encrypted": False,
                                                   "owner_type": "pack", "owner_pack_ref": p}), 201)["data"]
    ident_key = expect(t.post("/api/v1/keys", json={"local_ref": f"k{uid(6)}", "value": "mine", "encrypted": False,
                                                    "owner_type": "identity"}), 201)["data"]
    run = t.wait_execution(t.execute(action["ref"], {"message": "direct"})["id"])
    assert run["status"] == "completed", run
    event_id = t.fire(key, {"m": "hooked"})["event_id"]
    (enf,) = t.wait_enforcements(rule["ref"], 1)
    fired = t.wait_execution(t.execution_for_enforcement(enf["id"])["id"])
    assert fired["status"] == "completed", fired
    return SimpleNamespace(t=t, pack=pack, p=p, action=action, trigger=trigger, quiet=quiet, rule=rule,
                           sensor=sensor, pack_key=pack_key, ident_key=ident_key, run=run,
                           event_id=event_id, enf=enf, fired=fired, webhook_key=key)


def assert_world_invisible(observer, w, who: str) -> None:
    """Every GET of `w`'s objects answers 404 to `observer`, and no list or total shows them."""
    reads = [
        f"/api/v1/packs/{w.p}", f"/api/v1/packs/{w.pack['id']}", f"/api/v1/packs/{w.p}/policies",
        f"/api/v1/actions/{w.action['ref']}", f"/api/v1/actions/{w.action['id']}",
        f"/api/v1/actions/{w.action['ref']}/queue-stats", f"/api/v1/actions/{w.action['ref']}/policies",
        f"/api/v1/triggers/{w.trigger['ref']}", f"/api/v1/triggers/{w.trigger['id']}",
        f"/api/v1/triggers/{w.quiet['ref']}",
        f"/api/v1/sensors/{w.sensor['ref']}", f"/api/v1/sensors/{w.sensor['ref']}/logs/stdout",
        f"/api/v1/rules/{w.rule['ref']}", f"/api/v1/rules/{w.rule['id']}",
        f"/api/v1/keys/{w.pack_key['ref']}", f"/api/v1/keys/{w.ident_key['ref']}",
        f"/api/v1/executions/{w.run['id']}", f"/api/v1/executions/{w.fired['id']}",
        f"/api/v1/executions/{w.run['id']}/inquiries",
        f"/api/v1/events/{w.event_id}", f"/api/v1/enforcements/{w.enf['id']}",
        f"/api/v1/enforcements/{w.enf['id']}/executions",
    ]
    for path in reads:
        r = observer.get(path)
        assert r.status_code == 404, f"{who}: expected 404 for another tenant's {path}: {r.status_code} {r.text[:300]}"
        expect_error(r, 404, "NOT_FOUND")

    # Lists filtered on the other tenant's objects: empty, total 0.
    filtered = [
        ("/api/v1/actions", {"pack_ref": w.p}), ("/api/v1/actions", {"q": w.action["ref"]}),
        ("/api/v1/triggers", {"pack_ref": w.p}), ("/api/v1/sensors", {"pack_ref": w.p}),
        ("/api/v1/rules", {"pack_ref": w.p}), ("/api/v1/rules", {"trigger_ref": w.trigger["ref"]}),
        ("/api/v1/rules", {"action_ref": w.action["ref"]}),
        ("/api/v1/events", {"trigger_ref": w.trigger["ref"]}), ("/api/v1/events", {"trigger": w.trigger["id"]}),
        ("/api/v1/enforcements", {"rule_ref": w.rule["ref"]}), ("/api/v1/enforcements", {"event": w.event_id}),
        ("/api/v1/enforcements", {"trigger_ref": w.trigger["ref"]}),
        ("/api/v1/executions", {"action_ref": w.action["ref"]}), ("/api/v1/executions", {"rule_ref": w.rule["ref"]}),
        ("/api/v1/executions", {"enforcement": w.enf["id"]}),
        ("/api/v1/permissions/sets", {"pack_ref": w.p}),
    ]
    for path, params in filtered:
        body = expect(observer.get(path, params=params), 200)
        assert body["items"] == [] and body["pagination"]["total_items"] == 0, \
            f"{who}: {path} {params} shows another tenant's rows: {body['pagination']} {body['items'][:3]}"

    # Unfiltered lists (newest first: the other tenant's fresh rows would lead page 1).
    assert_hidden_from_list(observer, "/api/v1/packs", {w.p}, key="ref")
    assert_hidden_from_list(observer, "/api/v1/actions", {w.action["id"]})
    assert_hidden_from_list(observer, "/api/v1/triggers", {w.trigger["id"], w.quiet["id"]})
    assert_hidden_from_list(observer, "/api/v1/sensors", {w.sensor["id"]})
    assert_hidden_from_list(observer, "/api/v1/rules", {w.rule["id"]})
    assert_hidden_from_list(observer, "/api/v1/keys", {w.pack_key["ref"], w.ident_key["ref"]}, key="ref")
    assert_hidden_from_list(observer, "/api/v1/keys", {w.ident_key["ref"]}, key="ref", owner_type="identity")
    assert_hidden_from_list(observer, "/api/v1/keys", {w.pack_key["ref"]}, key="ref", owner_type="pack")
    assert_hidden_from_list(observer, "/api/v1/events", {w.event_id})
    assert_hidden_from_list(observer, "/api/v1/enforcements", {w.enf["id"]})
    assert_hidden_from_list(observer, "/api/v1/executions", {w.run["id"], w.fired["id"]})
    assert_hidden_from_list(observer, "/api/v1/executions/status/completed", {w.run["id"], w.fired["id"]})

    # Changes: 404 as well (checked last: a wrongly accepted one changes the other tenant's world).
    writes = [
        ("PUT", f"/api/v1/packs/{w.p}", {"label": "taken"}),
        ("PUT", f"/api/v1/actions/{w.action['ref']}", {"label": "taken"}),
        ("PUT", f"/api/v1/triggers/{w.trigger['ref']}", {"label": "taken"}),
        ("PUT", f"/api/v1/rules/{w.rule['ref']}", {"label": "taken"}),
        ("PUT", f"/api/v1/sensors/{w.sensor['ref']}", {"label": "taken"}),
        ("PUT", f"/api/v1/keys/{w.pack_key['ref']}", {"value": "taken"}),
        ("PUT", f"/api/v1/keys/{w.ident_key['ref']}", {"value": "taken"}),
        ("POST", f"/api/v1/rules/{w.rule['ref']}/disable", None),
        ("POST", f"/api/v1/triggers/{w.trigger['ref']}/webhooks/regenerate", None),
        ("POST", f"/api/v1/executions/{w.run['id']}/cancel", None),
        ("POST", "/api/v1/executions/execute", {"action_ref": w.action["ref"]}),
        ("POST", "/api/v1/actions", {"ref": "intruder", "pack_ref": w.p, "label": "x", "entrypoint": "true",
                                     "runtime_ref": "core.shell"}),
        ("POST", "/api/v1/keys", {"local_ref": "intruder", "value": 1, "owner_type": "pack",
                                  "owner_pack_ref": w.p}),
        ("DELETE", f"/api/v1/keys/{w.ident_key['ref']}", None),
        ("DELETE", f"/api/v1/sensors/{w.sensor['ref']}", None),
        ("DELETE", f"/api/v1/rules/{w.rule['ref']}", None),
        ("DELETE", f"/api/v1/actions/{w.action['ref']}", None),
        ("DELETE", f"/api/v1/packs/{w.p}", None),
    ]
    for method, path, body in writes:
        r = observer.request(method, path, json=body) if body is not None else observer.request(method, path)
        assert r.status_code == 404, \
            f"{who}: expected 404 for {method} {path} on another tenant's object: {r.status_code} {r.text[:300]}"


def assert_world_intact(w) -> None:
    """The owner still sees everything unchanged (no observer's write went through)."""
    t = w.t
    assert t.get_data(f"/api/v1/packs/{w.p}")["label"] != "taken"
    assert t.get_data(f"/api/v1/actions/{w.action['ref']}")["label"] != "taken"
    assert t.get_data(f"/api/v1/rules/{w.rule['ref']}")["enabled"] is True
    assert t.get_data(f"/api/v1/keys/{w.ident_key['ref']}")["value"] == "mine"
    assert t.get_data(f"/api/v1/keys/{w.pack_key['ref']}")["value"] == "pack-secret"
    for path in (f"/api/v1/executions/{w.run['id']}", f"/api/v1/events/{w.event_id}",
                 f"/api/v1/enforcements/{w.enf['id']}", f"/api/v1/sensors/{w.sensor['ref']}",
                 f"/api/v1/triggers/{w.trigger['ref']}"):
        expect(t.get(path), 200)
    assert {e["id"] for e in t.items("/api/v1/executions", action_ref=w.action["ref"])} == {w.run["id"], w.fired["id"]}
    assert total(t, "/api/v1/executions", action_ref=w.action["ref"]) == 2
    assert total(t, "/api/v1/events", trigger_ref=w.trigger["ref"]) == 1
    assert total(t, "/api/v1/enforcements", rule_ref=w.rule["ref"]) == 1


# ----------------------------------------------------------------------------------------------- T1.7

def test_t1_07_new_identity_sees_core_only(server, api):
    """A self-registered identity with no grants lists packs (only `core`), reads the core catalogue,
    and can neither create nor execute anything (403)."""
    api.create_pack()  # somebody else's pack exists
    u = register(server, "fresh")
    body = expect(u.get("/api/v1/packs", params={"page_size": 100}), 200)
    assert [p["ref"] for p in body["items"]] == ["core"], [p["ref"] for p in body["items"]]
    assert body["pagination"]["total_items"] == 1, body["pagination"]
    assert u.get_data("/api/v1/packs/core")["ref"] == "core"
    core_actions = u.items("/api/v1/actions", pack_ref="core")
    assert {"core.echo", "core.noop"} <= {a["ref"] for a in core_actions}, core_actions
    assert u.get_data("/api/v1/actions/core.echo")["ref"] == "core.echo"
    assert "core.intervaltimer" in {t["ref"] for t in u.items("/api/v1/triggers", pack_ref="core")}
    assert u.get_data("/api/v1/triggers/core.intervaltimer")["ref"] == "core.intervaltimer"
    assert all(a["pack_ref"] == "core" for a in u.items("/api/v1/actions")), "only core's actions"

    expect_error(u.post("/api/v1/packs", json={"ref": f"mine_{uid()}", "label": "x", "version": "1.0.0"}),
                 403, "FORBIDDEN")
    expect_error(u.post("/api/v1/executions/execute", json={"action_ref": "core.echo"}), 403, "FORBIDDEN")
    expect_error(u.post("/api/v1/actions", json={"ref": f"core.x{uid(6)}", "pack_ref": "core", "label": "x",
                                                 "entrypoint": "true"}), 403, "FORBIDDEN")
    expect_error(u.post("/api/v1/keys", json={"local_ref": f"k{uid(6)}", "value": 1}), 403, "FORBIDDEN")
    expect_error(u.post("/api/v1/rules", json={"ref": f"core.r{uid(6)}", "pack_ref": "core", "label": "x",
                                               "trigger_ref": "core.intervaltimer", "action_ref": "core.noop"}),
                 403, "FORBIDDEN")


def test_t1_07_tenant_isolation_sweep(server, api):
    """Two editor tenants each build one of everything; neither — nor a third identity holding
    core.admin — sees any of the other's objects on any route, list, total or notifier subscription."""
    alice = tenant(server, api, "core.editor", prefix="alice")
    bob = tenant(server, api, "core.editor", prefix="bob")
    root = tenant(server, api, "core.admin", prefix="root")

    with Notifier(server, alice.token) as a_ws, Notifier(server, bob.token) as b_ws, \
            Notifier(server, root.token) as r_ws:
        for ws in (a_ws, b_ws, r_ws):
            ws.accept("all")
        b_ws.accept("entity_type:execution")
        a = build_world(alice)
        b = build_world(bob)
        # Each tenant hears about its own rows (positive control) ...
        a_ws.wait(lambda f: f["entity_type"] == "execution" and f["entity_id"] == a.fired["id"]
                  and f["payload"]["status"] == "completed", desc="alice's own execution completed")
        b_ws.wait(lambda f: f["entity_type"] == "execution" and f["entity_id"] == b.fired["id"]
                  and f["payload"]["status"] == "completed", desc="bob's own execution completed")
        # ... and the core.admin holder's own run is its barrier: notifications are published in order,
        # so once its completion arrived, any delivery of the tenants' earlier rows would have too.
        mine = root.wait_execution(root.execute("core.noop", {})["id"])
        r_ws.wait(lambda f: f["entity_type"] == "execution" and f["entity_id"] == mine["id"]
                  and f["payload"]["status"] == "completed", desc="root's own execution completed")
        bob_mark = bob.wait_execution(bob.execute("core.noop", {})["id"])
        b_ws.wait(lambda f: f["entity_type"] == "execution" and f["entity_id"] == bob_mark["id"]
                  and f["payload"]["status"] == "completed", desc="bob's barrier execution completed")
        alice_mark = alice.wait_execution(alice.execute("core.noop", {})["id"])
        a_ws.wait(lambda f: f["entity_type"] == "execution" and f["entity_id"] == alice_mark["id"]
                  and f["payload"]["status"] == "completed", desc="alice's barrier execution completed")

        def foreign(frames, w, extra_exec=()):
            ids = {("execution", w.run["id"]), ("execution", w.fired["id"]), ("event", w.event_id),
                   ("enforcement", w.enf["id"]), ("rule", w.rule["id"])}
            ids |= {("execution", i) for i in extra_exec}
            return [f for f in frames if (f.get("entity_type"), f.get("entity_id")) in ids
                    or f.get("payload", {}).get("rule_ref") == w.rule["ref"]
                    or f.get("payload", {}).get("trigger_ref") == w.trigger["ref"]]

        assert foreign(b_ws.frames, a, [alice_mark["id"]]) == [], "bob received alice's notifications"
        assert foreign(a_ws.frames, b, [bob_mark["id"]]) == [], "alice received bob's notifications"
        assert foreign(r_ws.frames, a, [alice_mark["id"]]) == [] and foreign(r_ws.frames, b, [bob_mark["id"]]) == [], \
            "a core.admin holder received the tenants' notifications"

    for observer, w, who in ((bob, a, "bob"), (alice, b, "alice"), (root, a, "root(core.admin)"),
                             (root, b, "root(core.admin)")):
        assert_world_invisible(observer, w, who)
    assert_world_intact(a)
    assert_world_intact(b)


# ----------------------------------------------------------------------------------------------- T3.11

def test_t3_11_core_is_visible_and_executable_for_every_tenant(server, api):
    """Every tenant sees and runs `core` actions; each run is its runner's alone: another tenant and a
    core.admin holder get 404 and do not count it."""
    alice = tenant(server, api, "core.executor", prefix="alice")
    bob = tenant(server, api, "core.executor", prefix="bob")
    root = tenant(server, api, "core.admin", prefix="root")
    for t in (alice, bob, root):
        assert t.get_data("/api/v1/packs/core")["ref"] == "core"
        assert t.get_data("/api/v1/actions/core.echo")["pack_ref"] == "core"
    word = f"w{uid()}"
    a_run = alice.wait_execution(alice.execute("core.echo", {"message": word})["id"])
    assert a_run["status"] == "completed" and word in a_run["result"]["stdout"], a_run
    b_run = bob.wait_execution(bob.execute("core.echo", {"message": word})["id"])
    assert b_run["status"] == "completed", b_run

    assert alice.get_data(f"/api/v1/executions/{a_run['id']}")["id"] == a_run["id"]
    for other, who in ((bob, "bob"), (root, "root")):
        expect_error(other.get(f"/api/v1/executions/{a_run['id']}"), 404, "NOT_FOUND")
        expect_error(other.post(f"/api/v1/executions/{a_run['id']}/cancel"), 404)
        assert_hidden_from_list(other, "/api/v1/executions", {a_run["id"]})
        assert_hidden_from_list(other, "/api/v1/executions", {a_run["id"]}, action_ref="core.echo")
    # Each sees exactly its own core.echo runs.
    assert {e["id"] for e in alice.items("/api/v1/executions", action_ref="core.echo")} == {a_run["id"]}
    assert total(alice, "/api/v1/executions", action_ref="core.echo") == 1
    assert {e["id"] for e in bob.items("/api/v1/executions", action_ref="core.echo")} == {b_run["id"]}
    assert total(root, "/api/v1/executions", action_ref="core.echo") == 0
    # The bootstrap admin's own view does not include them either (they are not its runs).
    assert {a_run["id"], b_run["id"]}.isdisjoint({e["id"] for e in api.items("/api/v1/executions",
                                                                              action_ref="core.echo")})


def test_t3_11_user_packs_are_isolated(server, api):
    """A tenant's packs — created or uploaded — are its own: another tenant and a core.admin holder get
    404 on every route, cannot put anything into them, and do not list or count them; `core` cannot
    be deleted by a tenant."""
    alice = tenant(server, api, "core.editor", prefix="alice")
    bob = tenant(server, api, "core.editor", prefix="bob")
    root = tenant(server, api, "core.admin", prefix="root")
    made = alice.create_pack(f"made_{uid()}")
    up_ref = f"upl_{uid()}"
    uploaded = upload_pack(alice, {
        "pack.yaml": f"ref: {up_ref}\nlabel: Uploaded\nversion: 1.0.0\n",
        "actions/hello.yaml": "name: hello\nrunner_type: shell\nentry_point: hello.sh\nreference_visibility: private\n",
        "actions/hello.sh": ("#!/bin/sh\necho hello\n", 0o755),
    })
    assert uploaded["pack"]["ref"] == up_ref
    for pack in (made, uploaded["pack"]):
        assert pack["owner_identity"] == alice.user["id"], pack
        assert alice.get_data(f"/api/v1/packs/{pack['ref']}")["id"] == pack["id"]
    assert alice.get_data(f"/api/v1/actions/{up_ref}.hello")["pack_ref"] == up_ref

    for other, who in ((bob, "bob"), (root, "root")):
        for pack in (made, uploaded["pack"]):
            for path in (f"/api/v1/packs/{pack['ref']}", f"/api/v1/packs/{pack['id']}"):
                expect_error(other.get(path), 404, "NOT_FOUND")
            expect_error(other.put(f"/api/v1/packs/{pack['ref']}", json={"label": "mine now"}), 404)
            assert_hidden_from_list(other, "/api/v1/packs", {pack["ref"]}, key="ref")
            expect_error(other.post("/api/v1/triggers", json={"ref": "t", "pack_ref": pack["ref"], "label": "t"}), 404)
        expect_error(other.get(f"/api/v1/actions/{up_ref}.hello"), 404)
        expect_error(other.post("/api/v1/executions/execute", json={"action_ref": f"{up_ref}.hello"}), 404)
        body = expect(other.get("/api/v1/actions", params={"pack_ref": up_ref}), 200)
        assert body["items"] == [] and body["pagination"]["total_items"] == 0, body
        expect_error(other.delete(f"/api/v1/packs/{made['ref']}"), 404)
    # Each sees core and its own packs, nothing of the other.
    assert {"core", made["ref"], up_ref} <= {p["ref"] for p in alice.items("/api/v1/packs")}
    bob_pack = bob.create_pack()
    assert bob_pack["ref"] in {p["ref"] for p in bob.items("/api/v1/packs")}
    assert_hidden_from_list(alice, "/api/v1/packs", {bob_pack["ref"]}, key="ref")
    # `core` is shared, not owned: no tenant deletes it.
    r = alice.delete("/api/v1/packs/core")
    assert r.status_code in (400, 403), f"a tenant deleted core: {r.status_code} {r.text}"
    assert alice.get_data("/api/v1/packs/core")["ref"] == "core"
    # The owner deletes its own pack.
    expect(alice.delete(f"/api/v1/packs/{made['ref']}"), 200)
    expect_error(alice.get(f"/api/v1/packs/{made['ref']}"), 404)


def test_t1_07_keystore_templates_do_not_cross_tenants(server, api):
    """A rule's parameter templates resolve keys with its own pack's rights: naming another tenant's
    pack or identity key in `{{ keystore.… }}` yields nothing of it (the execution may render a null/
    default or fail, but the value appears nowhere in the enforcement, execution or its output)."""
    alice = tenant(server, api, "core.editor", prefix="alice")
    bob = tenant(server, api, "core.editor", prefix="bob")
    pa = alice.create_pack()["ref"]
    pack_secret, ident_secret = f"apk-{uid()}", f"aik-{uid()}"
    expect(alice.post("/api/v1/keys", json={"local_ref": "cfg", "value": pack_secret, "encrypted": False,
                                            "owner_type": "pack", "owner_pack_ref": pa}), 201)
    expect(alice.post("/api/v1/keys", json={"local_ref": "tok", "value": ident_secret, "encrypted": False,
                                            "owner_type": "identity"}), 201)
    login = alice.user["login"]
    flow = bob.webhook_flow('echo "a=$a b=$b"', action_params={
        "a": "{{ keystore.pack." + pa + ".cfg | default('none') }}",
        "b": "{{ keystore.identity." + login + ".tok | default('none') }}"},
        action_fields={"reference_visibility": "private"})
    bob.fire(flow.key, {})
    (enf,) = bob.wait_enforcements(flow.rule_ref, 1)
    runs = bob.items("/api/v1/executions", enforcement=enf["id"])
    texts = [bob.get(f"/api/v1/enforcements/{enf['id']}").text]
    for run in runs:
        done = bob.wait_execution(run["id"])
        texts.append(bob.get(f"/api/v1/executions/{done['id']}").text)
    for text in texts:
        assert pack_secret not in text, f"bob's rule read alice's pack key: {text[:500]}"
        assert ident_secret not in text, f"bob's rule read alice's identity key: {text[:500]}"
    # The same templates in alice's own rule do resolve (positive control).
    own = alice.webhook_flow('echo "a=$a"', pack_ref=pa, action_params={
        "a": "{{ keystore.pack." + pa + ".cfg | default('none') }}"})
    alice.fire(own.key, {})
    (run,) = alice.wait_rule_executions(own.rule_ref, 1)
    assert run["config"]["a"] == pack_secret, run
