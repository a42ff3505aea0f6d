"""T3.16 Rule trigger notifications (SCENARIOS.md) and notifier read-right filtering, API.md §10, §17:
every rule change publishes `rule_lifecycle_changed`; a webhook-fired rule publishes event_created,
enforcement_created and the execution's notifications; each is delivered only to subscribers who may
read the row — never to another tenant, even one subscribed to `all` or holding core.admin; and
`user:<id>` is refused for anyone but the caller.

Negative deliveries are proven with a barrier, not a sleep: the observer's own later row (its own rule
or execution) is published after the other tenant's, so once the observer has received its own
notification, any wrongly delivered earlier one would have arrived before it."""
from __future__ import annotations

from attune_e2e import expect
from tenants import Notifier, tenant

UNAUTHORIZED = {"type": "error", "message": "Unauthorized to subscribe to requested filter"}


def lifecycle(ws: Notifier, rule_id: int, change: str) -> dict:
    return ws.wait(lambda f: f["notification_type"] == "rule_lifecycle_changed" and f["entity_id"] == rule_id
                   and f["payload"].get("change") == change, desc=f"rule {rule_id} {change}")


def rule_barrier(t, ws: Notifier) -> dict:
    """`t` creates a rule of its own and waits for its `created` notification on `ws`."""
    p = t.create_pack()["ref"]
    act = t.create_action(f"{p}.noop", "true", reference_visibility="private")
    trig = t.create_trigger(f"{p}.hook", reference_visibility="private")
    rule = t.create_rule(f"{p}.barrier", trig["ref"], act["ref"])
    return lifecycle(ws, rule["id"], "created")


def execution_barrier(t, ws: Notifier) -> dict:
    run = t.wait_execution(t.execute("core.noop", {})["id"])
    return ws.wait(lambda f: f["entity_type"] == "execution" and f["entity_id"] == run["id"]
                   and f["payload"].get("status") == "completed", desc="own barrier execution completed")


def test_t3_16_rule_lifecycle_notifications(server, api):
    alice = tenant(server, api, "core.editor", prefix="alice")
    bob = tenant(server, api, "core.editor", prefix="bob")
    root = tenant(server, api, "core.admin", prefix="root")
    with Notifier(server, alice.token) as a_ws, Notifier(server, bob.token) as b_ws, \
            Notifier(server, root.token) as r_ws:
        a_ws.accept("entity_type:rule")
        for ws in (b_ws, r_ws):
            ws.accept("all")
            ws.accept("entity_type:rule")
            ws.accept("notification_type:rule_lifecycle_changed")
        p = alice.create_pack()["ref"]
        act = alice.create_action(f"{p}.act", "true", reference_visibility="private")
        act2 = alice.create_action(f"{p}.act2", "true", reference_visibility="private")
        trig = alice.create_trigger(f"{p}.hook", reference_visibility="private")
        rule = alice.create_rule(f"{p}.rule", trig["ref"], act["ref"], action_params={"x": 1})
        rid = rule["id"]

        f = lifecycle(a_ws, rid, "created")
        assert f["type"] == "notification" and f["entity_type"] == "rule", f
        want = {"id": rid, "ref": rule["ref"], "trigger_ref": trig["ref"], "action_ref": act["ref"],
                "enabled": True, "change": "created", "trigger_params": rule["trigger_params"]}
        assert {k: f["payload"].get(k, "<missing>") for k in want} == want, f
        expect(alice.put(f"/api/v1/rules/{rule['ref']}", json={"action_ref": act2["ref"]}), 200)
        f = lifecycle(a_ws, rid, "updated")
        assert f["payload"]["action_ref"] == act2["ref"] and f["payload"]["enabled"] is True, f
        expect(alice.post(f"/api/v1/rules/{rule['ref']}/disable"), 200)
        assert lifecycle(a_ws, rid, "disabled")["payload"]["enabled"] is False
        expect(alice.post(f"/api/v1/rules/{rule['ref']}/enable"), 200)
        assert lifecycle(a_ws, rid, "enabled")["payload"]["enabled"] is True
        expect(alice.delete(f"/api/v1/rules/{rule['ref']}"), 200)
        f = lifecycle(a_ws, rid, "deleted")
        assert f["payload"]["ref"] == rule["ref"] and f["payload"]["trigger_ref"] == trig["ref"], f
        # In order, one frame per change.
        changes = [x["payload"]["change"] for x in a_ws.about("rule", rid)]
        assert changes == ["created", "updated", "disabled", "enabled", "deleted"], changes

        rule_barrier(bob, b_ws)
        rule_barrier(root, r_ws)
        for ws, who in ((b_ws, "bob"), (r_ws, "root(core.admin)")):
            leaked = [x for x in ws.frames if x.get("entity_id") == rid
                      or x.get("payload", {}).get("ref") == rule["ref"]]
            assert leaked == [], f"{who} received alice's rule notifications: {leaked}"


def test_t3_16_webhook_fired_rule_notifications(server, api):
    alice = tenant(server, api, "core.editor", prefix="alice")
    bob = tenant(server, api, "core.editor", prefix="bob")
    with Notifier(server, alice.token) as a_ws, Notifier(server, bob.token) as b_ws, \
            Notifier(server, alice.token) as a_trig:
        a_ws.accept("all")
        b_ws.accept("all")
        flow = alice.webhook_flow("echo fired", action_fields={"reference_visibility": "private"})
        b_ws.accept(f"trigger_ref:{flow.trigger_ref}")  # well-formed: accepted, yet silent
        a_trig.accept(f"trigger_ref:{flow.trigger_ref}")
        event_id = alice.fire(flow.key, {"n": 1})["event_id"]
        (enf,) = alice.wait_enforcements(flow.rule_ref, 1)
        run = alice.wait_execution(alice.execution_for_enforcement(enf["id"])["id"])
        assert run["status"] == "completed", run

        ev = a_ws.wait(lambda f: f["notification_type"] == "event_created" and f["entity_id"] == event_id,
                       desc="event_created")
        assert ev["entity_type"] == "event", ev
        assert ev["payload"]["id"] == event_id and ev["payload"]["trigger_ref"] == flow.trigger_ref, ev
        assert ev["payload"]["trigger"] == flow.trigger["id"] and ev["payload"]["source_ref"] == "webhook", ev
        assert "payload" not in ev["payload"], "notification payloads carry no event payload"
        en = a_ws.wait(lambda f: f["notification_type"] == "enforcement_created" and f["entity_id"] == enf["id"],
                       desc="enforcement_created")
        assert en["entity_type"] == "enforcement", en
        assert en["payload"]["rule"] == flow.rule["id"] and en["payload"]["rule_ref"] == flow.rule_ref, en
        assert en["payload"]["event"] == event_id and en["payload"]["trigger_ref"] == flow.trigger_ref, en
        assert en["payload"]["status"] == "created", en
        a_ws.wait(lambda f: f["notification_type"] == "enforcement_status_changed" and f["entity_id"] == enf["id"]
                  and f["payload"]["status"] == "processed", desc="enforcement processed")
        ex = a_ws.wait(lambda f: f["notification_type"] == "execution_created" and f["entity_id"] == run["id"],
                       desc="execution_created")
        assert ex["payload"]["enforcement"] == enf["id"] and ex["payload"]["rule_ref"] == flow.rule_ref, ex
        assert ex["payload"]["trigger_ref"] == flow.trigger_ref and ex["payload"]["action_ref"] == flow.action_ref
        a_ws.wait(lambda f: f["entity_type"] == "execution" and f["entity_id"] == run["id"]
                  and f["payload"]["status"] == "completed", desc="execution completed")
        # The trigger_ref filter gets the event and the enforcement (their payloads name the trigger).
        a_trig.wait(lambda f: f["notification_type"] == "event_created" and f["entity_id"] == event_id)
        a_trig.wait(lambda f: f["notification_type"] == "enforcement_created" and f["entity_id"] == enf["id"])

        execution_barrier(bob, b_ws)
        leaked = [f for f in b_ws.frames
                  if (f["entity_type"], f["entity_id"]) in {("event", event_id), ("enforcement", enf["id"]),
                                                            ("execution", run["id"])}
                  or f["payload"].get("trigger_ref") == flow.trigger_ref]
        assert leaked == [], f"bob received alice's rule notifications: {leaked}"


def test_notifier_delivers_only_rows_the_subscriber_may_read(server, api):
    """Every well-formed filter is accepted for anyone (§17.3), including ones naming another tenant's
    rows, but only readable rows are delivered: a core.admin holder subscribed to `all`,
    `entity_type:execution`, `entity:execution:<id>` and the status channel hears nothing of another
    tenant's run — not even of its run of the shared `core.echo`."""
    alice = tenant(server, api, "core.editor", prefix="alice")
    root = tenant(server, api, "core.admin", prefix="root")
    p = alice.create_pack()["ref"]
    act = alice.create_action(f"{p}.slow", "cat > /dev/null; sleep 1; echo done", reference_visibility="private")
    with Notifier(server, root.token) as r_ws, Notifier(server, api.token) as boot_ws, \
            Notifier(server, alice.token) as a_ws:
        for f in ("all", "entity_type:execution", "notification_type:execution_status_changed",
                  "notification_type:execution_created", "entity_type:event", "entity_type:enforcement"):
            r_ws.accept(f)
            boot_ws.accept(f)
        a_ws.accept("entity_type:execution")
        run = alice.execute(act["ref"], {})
        r_ws.accept(f"entity:execution:{run['id']}")
        boot_ws.accept(f"entity:execution:{run['id']}")
        shared = alice.wait_execution(alice.execute("core.echo", {"message": "mine"})["id"])
        run = alice.wait_execution(run["id"])
        assert run["status"] == "completed" and shared["status"] == "completed"
        for rid in (run["id"], shared["id"]):
            a_ws.wait(lambda f, rid=rid: f["entity_id"] == rid and f["payload"]["status"] == "completed",
                      desc=f"alice's own execution {rid} completed")
        execution_barrier(root, r_ws)
        execution_barrier(api, boot_ws)
        for ws, who in ((r_ws, "a core.admin holder"), (boot_ws, "the bootstrap admin")):
            leaked = [f for f in ws.frames if f["entity_id"] in (run["id"], shared["id"])
                      or f["payload"].get("action_ref") == act["ref"]]
            assert leaked == [], f"{who} received alice's execution notifications: {leaked}"


def test_user_filter_only_for_the_caller(server, api):
    alice = tenant(server, api, "core.editor", prefix="alice")
    bob = tenant(server, api, "core.viewer", prefix="bob")
    with Notifier(server, alice.token) as a_ws, Notifier(server, api.token) as boot_ws:
        a_ws.accept(f"user:{alice.user['id']}")
        err = a_ws.subscribe(f"user:{bob.user['id']}")
        assert err == UNAUTHORIZED, err
        err = boot_ws.subscribe(f"user:{alice.user['id']}")
        assert err == UNAUTHORIZED, f"not even for an admin: {err}"
        me = api.get_data("/auth/me")["id"]
        boot_ws.accept(f"user:{me}")
        # The connection stays open and usable.
        a_ws.accept("all")
        err = a_ws.subscribe("user:someone")
        assert err is not None and err["message"].startswith("Invalid filter"), a_ws.errors
