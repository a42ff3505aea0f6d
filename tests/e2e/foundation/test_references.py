"""Cross-pack references (API.md §10, §16.5): an action's or trigger's `reference_visibility`
(public | restricted + reference_allowed_pack_refs | private) decides which other packs' rules may use
it; tightening it while another pack refers to it is refused; public (and, for an allowed pack,
restricted) objects are discoverable by metadata only — GET, execute and derived records stay the
owner's."""
from __future__ import annotations

import re

from attune_e2e import expect, expect_error, uid
from tenants import tenant


def two_tenants(server, api):
    """alice's pack A and bob's pack B (bob's exists first, so alice can allow it)."""
    alice = tenant(server, api, "core.editor", prefix="alice")
    bob = tenant(server, api, "core.editor", prefix="bob")
    pb = bob.create_pack(f"refb_{uid()}")["ref"]
    pa = alice.create_pack(f"refa_{uid()}")["ref"]
    bob_trigger = bob.create_trigger(f"{pb}.hook", reference_visibility="private")
    bob_action = bob.create_action(f"{pb}.own", "true", reference_visibility="private")
    return alice, bob, pa, pb, bob_trigger, bob_action


def rule_body(pb: str, trigger_ref: str, action_ref: str) -> dict:
    return {"ref": f"r{uid(8)}", "pack_ref": pb, "label": "cross", "trigger_ref": trigger_ref,
            "action_ref": action_ref}


def test_rules_may_reference_only_actions_and_triggers_their_pack_may_use(server, api):
    alice, bob, pa, pb, bob_trigger, bob_action = two_tenants(server, api)
    word = uid(8)
    private = alice.create_action(f"{pa}.priv_{word}", "echo private", reference_visibility="private")
    denied = alice.create_action(f"{pa}.restr_{word}", "echo restricted", reference_visibility="restricted",
                                 reference_allowed_pack_refs=[f"other_{uid()}"])
    allowed = alice.create_action(f"{pa}.allow_{word}", "echo allowed", reference_visibility="restricted",
                                  reference_allowed_pack_refs=[pb])
    public = alice.create_action(f"{pa}.pub_{word}", "echo public", reference_visibility="public")
    assert allowed["reference_allowed_pack_refs"] == [pb]

    r = bob.post("/api/v1/rules", json=rule_body(pb, bob_trigger["ref"], private["ref"]))
    assert r.status_code in (400, 404), f"a rule referenced another tenant's private action: {r.status_code} {r.text}"
    if r.status_code == 400:
        expect_error(r, 400, "BAD_REQUEST", message=f"Rule cannot reference action '{private['ref']}'")
    expect_error(bob.post("/api/v1/rules", json=rule_body(pb, bob_trigger["ref"], denied["ref"])), 400,
                 "BAD_REQUEST", message=f"Rule cannot reference action '{denied['ref']}'")
    ok = expect(bob.post("/api/v1/rules", json=rule_body(pb, bob_trigger["ref"], allowed["ref"])), 201)["data"]
    assert ok["action_ref"] == allowed["ref"] and ok["pack_ref"] == pb
    ok = expect(bob.post("/api/v1/rules", json=rule_body(pb, bob_trigger["ref"], public["ref"])), 201)["data"]
    assert ok["action_ref"] == public["ref"]
    assert {x["ref"] for x in bob.items("/api/v1/rules", pack_ref=pb)} >= {ok["ref"]}

    # Triggers the same way.
    t_private = alice.create_trigger(f"{pa}.tpriv_{word}", reference_visibility="private")
    t_denied = alice.create_trigger(f"{pa}.trestr_{word}", reference_visibility="restricted",
                                    reference_allowed_pack_refs=[f"other_{uid()}"])
    t_public = alice.create_trigger(f"{pa}.tpub_{word}", reference_visibility="public")
    r = bob.post("/api/v1/rules", json=rule_body(pb, t_private["ref"], bob_action["ref"]))
    assert r.status_code in (400, 404), f"a rule subscribed to another tenant's private trigger: {r.status_code} {r.text}"
    expect_error(bob.post("/api/v1/rules", json=rule_body(pb, t_denied["ref"], bob_action["ref"])), 400,
                 "BAD_REQUEST", message=f"Rule cannot subscribe to trigger '{t_denied['ref']}'")
    expect(bob.post("/api/v1/rules", json=rule_body(pb, t_public["ref"], bob_action["ref"])), 201)

    # On update: switching bob's rule to a disallowed action or trigger.
    err = expect_error(bob.put(f"/api/v1/rules/{ok['ref']}", json={"action_ref": denied["ref"]}), 400)
    assert re.search(r"cannot change action", err["error"], re.I), err
    err = expect_error(bob.put(f"/api/v1/rules/{ok['ref']}", json={"trigger_ref": t_denied["ref"]}), 400)
    assert re.search(r"cannot change trigger", err["error"], re.I), err
    assert bob.get_data(f"/api/v1/rules/{ok['ref']}")["action_ref"] == public["ref"]


def test_tightening_visibility_while_referenced_is_refused(server, api):
    alice, bob, pa, pb, bob_trigger, _ = two_tenants(server, api)
    public = alice.create_action(f"{pa}.shared", "echo shared", reference_visibility="public")
    rule = expect(bob.post("/api/v1/rules", json=rule_body(pb, bob_trigger["ref"], public["ref"])), 201)["data"]
    for body in ({"reference_visibility": "private"},
                 {"reference_visibility": "restricted", "reference_allowed_pack_refs": []},
                 {"reference_visibility": "restricted", "reference_allowed_pack_refs": [f"x_{uid()}"]}):
        err = expect_error(alice.put(f"/api/v1/actions/{public['ref']}", json=body), 400, "BAD_REQUEST")
        assert re.search(r"cannot change action", err["error"], re.I), err
        assert rule["ref"] in err["error"] or pb in err["error"], f"the referrer is not named: {err}"
        assert alice.get_data(f"/api/v1/actions/{public['ref']}")["reference_visibility"] == "public"
    # Still allowed for the referring pack: fine.
    got = expect(alice.put(f"/api/v1/actions/{public['ref']}", json={
        "reference_visibility": "restricted", "reference_allowed_pack_refs": [pb]}), 200)["data"]
    assert got["reference_visibility"] == "restricted" and got["reference_allowed_pack_refs"] == [pb]

    # Triggers the same way.
    trig = alice.create_trigger(f"{pa}.shared_hook", reference_visibility="public")
    act = bob.create_action(f"{pb}.on_shared", "true", reference_visibility="private")
    trule = expect(bob.post("/api/v1/rules", json=rule_body(pb, trig["ref"], act["ref"])), 201)["data"]
    err = expect_error(alice.put(f"/api/v1/triggers/{trig['ref']}", json={"reference_visibility": "private"}), 400)
    assert re.search(r"cannot change trigger", err["error"], re.I), err

    # Once the referrers are gone, the owner may tighten.
    expect(bob.delete(f"/api/v1/rules/{rule['ref']}"), 200)
    expect(bob.delete(f"/api/v1/rules/{trule['ref']}"), 200)
    expect(alice.put(f"/api/v1/actions/{public['ref']}", json={"reference_visibility": "private"}), 200)
    expect(alice.put(f"/api/v1/triggers/{trig['ref']}", json={"reference_visibility": "private"}), 200)


def test_discovery_shows_metadata_only(server, api):
    alice, bob, pa, pb, _, _ = two_tenants(server, api)
    word = uid(8)
    private = alice.create_action(f"{pa}.priv_{word}", "echo p", reference_visibility="private")
    denied = alice.create_action(f"{pa}.restr_{word}", "echo r", reference_visibility="restricted",
                                 reference_allowed_pack_refs=[f"other_{uid()}"])
    allowed = alice.create_action(f"{pa}.allow_{word}", "echo a", reference_visibility="restricted",
                                  reference_allowed_pack_refs=[pb])
    public = alice.create_action(f"{pa}.pub_{word}", "echo pub", reference_visibility="public")

    found = {a["ref"] for a in bob.items("/api/v1/actions/search", q=word)}
    assert found == {public["ref"]}, found
    found = {a["ref"] for a in bob.items("/api/v1/actions/search", q=word, referencing_pack_ref=pb)}
    assert found == {public["ref"], allowed["ref"]}, found
    assert {a["ref"] for a in alice.items("/api/v1/actions/search", q=word)} == \
        {private["ref"], denied["ref"], allowed["ref"], public["ref"]}, "the owner finds all of its own"
    # Metadata only: the objects themselves stay alice's.
    for a in (private, denied, allowed, public):
        expect_error(bob.get(f"/api/v1/actions/{a['ref']}"), 404, "NOT_FOUND")
        expect_error(bob.post("/api/v1/executions/execute", json={"action_ref": a["ref"]}), 404)
    assert {a["ref"] for a in bob.items("/api/v1/actions", q=word)} == set()
    assert bob.items("/api/v1/actions", pack_ref=pa) == []

    # Public triggers are listed and readable by anyone; their events are not.
    t_pub = alice.create_trigger(f"{pa}.tpub_{word}", reference_visibility="public")
    t_priv = alice.create_trigger(f"{pa}.tpriv_{word}", reference_visibility="private")
    key = alice.enable_webhook(t_pub["ref"])
    assert bob.get_data(f"/api/v1/triggers/{t_pub['ref']}")["ref"] == t_pub["ref"]
    expect_error(bob.get(f"/api/v1/triggers/{t_priv['ref']}"), 404, "NOT_FOUND")
    listed = {t["ref"] for t in bob.items("/api/v1/triggers", page_size=100)}
    assert t_pub["ref"] in listed and t_priv["ref"] not in listed
    event_id = alice.fire(key, {"secret": "alice-only"})["event_id"]
    expect_error(bob.get(f"/api/v1/events/{event_id}"), 404, "NOT_FOUND")
    body = expect(bob.get("/api/v1/events", params={"trigger_ref": t_pub["ref"]}), 200)
    assert body["items"] == [] and body["pagination"]["total_items"] == 0, body
    # Seeing a public trigger grants no changes to it.
    r = bob.put(f"/api/v1/triggers/{t_pub['ref']}", json={"label": "bob's now"})
    assert r.status_code in (403, 404), f"bob changed alice's public trigger: {r.status_code} {r.text}"
    r = bob.post(f"/api/v1/triggers/{t_pub['ref']}/webhooks/regenerate")
    assert r.status_code in (403, 404), f"bob regenerated alice's webhook: {r.status_code} {r.text}"


def test_public_trigger_metadata_hides_the_webhook_key(server, api):
    """Not spelled out in API.md: the webhook key lets anyone fire the trigger without a token, so the
    metadata another tenant may discover (§16.5) should not carry it (null or absent)."""
    alice, bob, pa, _, _, _ = two_tenants(server, api)
    t_pub = alice.create_trigger(f"{pa}.hooked", reference_visibility="public")
    key = alice.enable_webhook(t_pub["ref"])
    seen = bob.get_data(f"/api/v1/triggers/{t_pub['ref']}")
    assert seen.get("webhook_key") in (None, ""), f"another tenant reads the webhook key: {seen}"
    listed = [t for t in bob.items("/api/v1/triggers", page_size=100) if t["ref"] == t_pub["ref"]]
    assert listed and key not in str(listed), listed


def test_search_filters_packs_and_executable_with_current_access(server, api):
    alice, bob, pa, pb, _, _ = two_tenants(server, api)
    word = uid(8)
    mine = bob.create_action(f"{pb}.mine_{word}", "true", reference_visibility="private")
    theirs = alice.create_action(f"{pa}.pub_{word}", "true", reference_visibility="public")
    # `packs` narrows the search to the named packs (comma-separated).
    assert {a["ref"] for a in bob.items("/api/v1/actions/search", q=word, packs=pa)} == {theirs["ref"]}
    assert {a["ref"] for a in bob.items("/api/v1/actions/search", q=word, packs=f"{pa},{pb}")} == \
        {theirs["ref"], mine["ref"]}
    # Discoverable is not executable: only bob's own action passes the filter.
    runnable = {a["ref"] for a in bob.items("/api/v1/actions/search", q=word,
                                             executable_with_current_access="true")}
    assert runnable == {mine["ref"]}, runnable
    not_runnable = {a["ref"] for a in bob.items("/api/v1/actions/search", q=word,
                                                 executable_with_current_access="false")}
    assert not_runnable == {theirs["ref"]}, not_runnable
    expect_error(bob.get("/api/v1/actions", params={"executable_with_current_access": "maybe"}), 400)
    # Triggers take the same filters.
    t = alice.create_trigger(f"{pa}.t_{word}", reference_visibility="public", label=f"Hook {word}")
    assert {x["ref"] for x in bob.items("/api/v1/triggers", q=word, packs=pa)} == {t["ref"]}
    assert bob.items("/api/v1/triggers", q=word, packs=pb) == []
    assert {x["ref"] for x in bob.items("/api/v1/triggers", q=word, referencing_pack_ref=pb)} == {t["ref"]}


def test_workflows_may_run_only_actions_their_pack_may_reference(server, api):
    """§16.5 holds for workflows as for rules: a task may run another pack's action only when it is
    public or restricted naming the workflow's pack; another tenant's private action is unknown; and
    tightening an action while a workflow of another pack runs it is refused."""
    alice, bob, pa, pb, _, _ = two_tenants(server, api)
    word = uid(8)
    private = alice.create_action(f"{pa}.wpriv_{word}", "true", reference_visibility="private")
    denied = alice.create_action(f"{pa}.wrestr_{word}", "true", reference_visibility="restricted",
                                 reference_allowed_pack_refs=[f"other_{uid()}"])
    public = alice.create_action(f"{pa}.wpub_{word}", "true", reference_visibility="public")

    def workflow(action_ref: str):
        return bob.post("/api/v1/workflows", json={
            "ref": f"{pb}.wf_{uid(8)}", "pack_ref": pb, "label": "x", "version": "1",
            "definition": {"version": "1", "tasks": [{"name": "t", "action": action_ref}]}})

    expect_error(workflow(private["ref"]), 400, "BAD_REQUEST",
                 message_contains=f"task 't': action: unknown action '{private['ref']}'")
    expect_error(workflow(denied["ref"]), 400, "BAD_REQUEST",
                 message_contains=f"pack '{pb}' may not reference action '{denied['ref']}'")
    wf = expect(workflow(public["ref"]), 201)["data"]
    done = bob.wait_execution(bob.execute(wf["ref"], {})["id"], timeout=30)
    assert done["status"] == "completed", done
    expect_error(alice.put(f"/api/v1/actions/{public['ref']}", json={"reference_visibility": "private"}),
                 400, "BAD_REQUEST",
                 message=f"Cannot change action '{public['ref']}' visibility: referenced by '{wf['ref']}'")
