"""Durability: stop/restart on the same data dir, and kill -9 during a burst of webhooks (DESIGN.md §4)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from attune_e2e import NON_TERMINAL, TERMINAL, expect, wait_for

pytestmark = pytest.mark.restart


def _snapshot(api, flow, extra_exec_ids):
    snap = {
        "pack": api.get_data(f"/api/v1/packs/{flow.pack_ref}"),
        "action": api.get_data(f"/api/v1/actions/{flow.action_ref}"),
        "trigger": api.get_data(f"/api/v1/triggers/{flow.trigger_ref}"),
        "rule": api.get_data(f"/api/v1/rules/{flow.rule_ref}"),
        "event_rows": api.items("/api/v1/events", trigger_ref=flow.trigger_ref),
        "enforcement_rows": api.items("/api/v1/enforcements", rule_ref=flow.rule_ref),
        "execution_rows": api.items("/api/v1/executions", pack_ref=flow.pack_ref),
    }
    snap["events"] = {e["id"]: api.get_data(f"/api/v1/events/{e['id']}") for e in snap["event_rows"]}
    snap["enforcements"] = {e["id"]: api.get_data(f"/api/v1/enforcements/{e['id']}")
                            for e in snap["enforcement_rows"]}
    exec_ids = [e["id"] for e in snap["execution_rows"]] + list(extra_exec_ids)
    snap["executions"] = {i: api.get_data(f"/api/v1/executions/{i}") for i in exec_ids}
    snap["stats"] = api.get_data("/api/v1/executions/stats", pack_ref=flow.pack_ref)
    return snap


def test_sigterm_restart_keeps_everything(server_factory):
    srv = server_factory.start_new("restart")
    api = srv.admin_client()
    flow = api.webhook_flow('echo "$message"', action_params={"message": "persisted"})
    fail_action = api.create_action(f"{flow.pack_ref}.fails", "echo nope; exit 6")

    for i in range(3):
        api.fire(flow.key, {"i": i, "nested": {"k": [i]}})
    execs = api.wait_rule_executions(flow.rule_ref, 3)
    assert all(e["status"] == "completed" for e in execs), execs
    manual = api.wait_execution(api.execute(flow.action_ref, {"message": "manual"})["id"])
    failed = api.wait_execution(api.execute(fail_action["ref"], {})["id"])
    assert manual["status"] == "completed" and failed["status"] == "failed"
    disabled_rule = api.create_rule(f"{flow.pack_ref}.off", flow.trigger_ref, fail_action["ref"], enabled=False)
    wait_for(lambda: all(e["status"] == "processed"
                         for e in api.items("/api/v1/enforcements", rule_ref=flow.rule_ref)),
             desc="enforcements processed")

    before = _snapshot(api, flow, [])
    assert len(before["events"]) == 3 and len(before["enforcements"]) == 3 and len(before["executions"]) == 5
    old_token = api.token

    rc = srv.stop(grace=10)
    assert not srv.last_stop_needed_kill, f"no exit within 10 s of SIGTERM\n{srv.log_tail()}"
    assert rc == 0, f"exit code {rc} after SIGTERM\n{srv.log_tail()}"
    srv.start()

    # The same data dir, the same JWT secret: an old access token keeps working.
    api = srv.client(old_token)
    after = _snapshot(api, flow, [])
    for key in ("pack", "action", "trigger", "rule"):
        assert after[key] == before[key], f"{key} changed across restart"
    assert after["events"] == before["events"]
    assert after["enforcements"] == before["enforcements"]
    assert after["executions"] == before["executions"]
    assert [e["id"] for e in after["execution_rows"]] == [e["id"] for e in before["execution_rows"]]
    assert after["stats"] == before["stats"]
    assert api.get_data(f"/api/v1/rules/{disabled_rule['ref']}")["enabled"] is False

    # The bootstrap admin's password is unchanged and login still works.
    fresh = srv.admin_client()
    assert fresh.user["login"] == srv.admin_login

    # The webhook key still works and a new execution completes.
    event_id = api.fire(flow.key, {"after": "restart"})["event_id"]
    assert event_id not in before["events"]
    execs = api.wait_rule_executions(flow.rule_ref, 4)
    assert len(execs) == 4
    new = [e for e in execs if e["id"] not in before["executions"]]
    assert len(new) == 1 and new[0]["status"] == "completed"
    assert new[0]["result"]["stdout"].strip() == "persisted"
    # Nothing from the disabled rule ran.
    assert api.items("/api/v1/executions", rule_ref=disabled_rule["ref"]) == []
    assert api.get_data("/api/v1/executions/stats", pack_ref=flow.pack_ref)["total"] == 6


def test_kill9_during_webhook_burst(server_factory):
    srv = server_factory.start_new("crash")
    api = srv.admin_client()
    flow = api.webhook_flow("sleep 0.2; echo done", action_params={"message": "x"})
    url = f"{srv.api_url}/api/v1/webhooks/{flow.key}"

    n, kill_after = 20, 10
    results: dict = {}
    lock = threading.Lock()
    enough = threading.Event()

    def fire(i):
        try:
            r = requests.post(url, json={"payload": {"i": i}}, timeout=10)
            out = (r.status_code, r.json()["data"]["event_id"] if r.status_code == 200 else r.text)
        except Exception as e:  # connection refused/reset once the server is gone
            out = (None, repr(e))
        with lock:
            results[i] = out
            if sum(1 for s, _ in results.values() if s == 200) >= kill_after:
                enough.set()

    with ThreadPoolExecutor(max_workers=4) as pool:
        for i in range(n):
            pool.submit(fire, i)
        enough.wait(30)
        rc = srv.kill9()
    assert rc == -9, f"expected death by SIGKILL, got {rc}"

    ok = {i: ev for i, (status, ev) in results.items() if status == 200}
    assert len(ok) >= kill_after, results
    bad_status = {i: r for i, r in results.items() if r[0] not in (200, None)}
    assert not bad_status, f"webhooks answered with unexpected statuses: {bad_status}"

    srv.start()
    api = srv.admin_client()

    # Every acknowledged webhook kept its event.
    for i, event_id in ok.items():
        ev = expect(api.get(f"/api/v1/events/{event_id}"), 200)["data"]
        assert ev["payload"] == {"i": i}

    # After a short while nothing is left in flight.
    def settled():
        rows = api.items("/api/v1/executions", rule_ref=flow.rule_ref)
        return rows if all(r["status"] in TERMINAL for r in rows) else None
    try:
        wait_for(settled, timeout=30, desc="all executions terminal after restart")
    except AssertionError:
        stuck = [(r["id"], r["status"]) for r in api.items("/api/v1/executions", rule_ref=flow.rule_ref)
                 if r["status"] in NON_TERMINAL]
        raise AssertionError(f"executions stuck after restart: {stuck}\n{srv.log_tail()}")

    events = api.items("/api/v1/events", trigger_ref=flow.trigger_ref)
    event_ids = {e["id"] for e in events}
    assert set(ok.values()) <= event_ids, "an acknowledged webhook lost its event"
    payloads = [api.get_data(f"/api/v1/events/{e}")["payload"]["i"] for e in event_ids]
    assert len(payloads) == len(set(payloads)), f"a webhook produced two events: {sorted(payloads)}"

    enforcements = api.items("/api/v1/enforcements", rule_ref=flow.rule_ref)
    executions = api.items("/api/v1/executions", rule_ref=flow.rule_ref)
    for event_id in event_ids:
        enfs = api.items("/api/v1/enforcements", event=event_id)
        assert len(enfs) == 1, f"event {event_id} has {len(enfs)} enforcements"
        exs = api.items("/api/v1/executions", enforcement=enfs[0]["id"])
        assert len(exs) == 1, f"enforcement {enfs[0]['id']} has {len(exs)} executions"
    assert len(enforcements) == len(event_ids), (len(enforcements), len(event_ids))
    assert len(executions) == len(event_ids), (len(executions), len(event_ids))
    statuses = {e["status"] for e in executions}
    print(f"kill -9 burst: {len(ok)} acknowledged of {n}, {len(event_ids)} events, "
          f"statuses {sorted((s, sum(1 for e in executions if e['status'] == s)) for s in statuses)}")
    assert statuses <= {"completed", "abandoned"}, f"unexpected statuses {statuses}"
    for e in executions:
        if e["status"] == "completed":
            assert e["result"]["stdout"].strip() == "done"

    # And the platform still works.
    api.fire(flow.key, {"i": "after"})
    wait_for(lambda: len(api.items("/api/v1/executions", rule_ref=flow.rule_ref, status="completed")) >
             sum(1 for e in executions if e["status"] == "completed"), timeout=20, desc="post-restart execution")
