"""Inquiries (API.md §13, §16, §17.4; SCENARIOS.md T2.6, T2.7, T3.15 where they apply without workflows).

An action asks with its execution token (curl with $ATTUNE_API_TOKEN), waits by reading its own inquiry
with the same token, and resumes with the answer once a client responds. Timeouts are exact (within a
second of timeout_at) and durable: a deadline that passed while the server was down fires at start.
Workflows' `wait_for` comes with the workflow engine and is not tested here."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from attune_e2e import expect, expect_error, parse_ts, uid, wait_for
from tenants import Notifier, assert_hidden_from_list, custom_set, register, assign, tenant

CURL = 'curl -sS -H "Authorization: Bearer $ATTUNE_API_TOKEN" -H "Content-Type: application/json"'

# Parameters: `inquiry` (the POST body as JSON text), `other` (a different body, for the 409 probe),
# `marker` (a file it creates once its probes are done, so that the test answers only then).
# Prints the create answer and its status, the identical repeat's status and id, the different one's
# status, then polls its own inquiry until it is no longer pending and prints the final row.
ASKER = """
out=$({curl} -w '\\n%{{http_code}}' -X POST "$ATTUNE_API_URL/api/v1/inquiries" -d "$inquiry")
echo "created_code=$(printf '%s' "$out" | tail -n 1)"
id=$(printf '%s' "$out" | sed '$d' | python3 -c 'import sys, json; print(json.load(sys.stdin)["data"]["inquiry"]["id"])')
echo "id=$id"
echo "repeat=$({curl} -o /dev/null -w '%{{http_code}}' -X POST "$ATTUNE_API_URL/api/v1/inquiries" -d "$inquiry")"
if [ -n "$other" ]; then
  echo "other=$({curl} -o /dev/null -w '%{{http_code}}' -X POST "$ATTUNE_API_URL/api/v1/inquiries" -d "$other")"
fi
echo "listed=$({curl} -o /dev/null -w '%{{http_code}}' "$ATTUNE_API_URL/api/v1/executions/$ATTUNE_EXEC_ID/inquiries")"
[ -z "$marker" ] || : > "$marker"
i=0
while [ $i -lt 300 ]; do
  row=$({curl} "$ATTUNE_API_URL/api/v1/inquiries/$id")
  case "$row" in *'"status":"pending"'*) ;; *) break ;; esac
  sleep 0.1
  i=$((i+1))
done
echo "final=$row"
""".format(curl=CURL)


def lines_of(ex: dict) -> dict:
    out = {}
    for line in ex["result"]["stdout"].splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


@pytest.fixture
def rig(server, api):
    """A pack with the asking action, and a permission set granting nothing relevant so that its
    executions get a token (§11.4)."""
    pack = api.create_pack()["ref"]
    asker = api.create_action(f"{pack}.asker", ASKER, timeout_seconds=60)
    quick = api.create_action(f"{pack}.quick", "echo done")
    inert = custom_set(api, [{"resource": "runtimes", "actions": ["read"]}], prefix="inert")
    return {"pack": pack, "asker": asker["ref"], "quick": quick["ref"], "inert": inert}


def ask(api, rig, body: dict, other: dict | None = None, marker: str = "") -> dict:
    """Starts the asking action; returns the execution (running, its inquiry created)."""
    params = {"inquiry": json.dumps(body), "other": json.dumps(other) if other else "", "marker": marker}
    ex = api.execute(rig["asker"], params, permission_set_refs=[rig["inert"]])
    return ex


def inquiry_of(api, exec_id: int) -> dict:
    rows = wait_for(lambda: api.items(f"/api/v1/executions/{exec_id}/inquiries"), desc="inquiry of execution")
    assert len(rows) == 1, rows
    return rows[0]


def finished_run(api, rig) -> dict:
    return api.wait_execution(api.execute(rig["quick"], {})["id"])


def create(api, execution: int, **body) -> dict:
    body.setdefault("prompt", "Proceed?")
    return expect(api.post("/api/v1/inquiries", json={"execution": execution, **body}), 201)["data"]["inquiry"]


APPROVAL = {"purpose": "approval", "prompt": "Deploy to prod?",
            "response_options": [{"ref": "yes", "label": "Approve", "style": "primary", "response": {"approved": True}},
                                 {"ref": "no", "label": "Reject", "style": "danger", "response": {"approved": False}}],
            "response_schema": {"approved": {"type": "boolean", "required": True},
                                "reason": {"type": "string"},
                                "replicas": {"type": "integer", "minimum": 1, "maximum": 5}}}


# ----------------------------------------------------------------------------------------------- T2.6

def test_t2_6_action_asks_client_responds_execution_resumes(api, rig, tmp_path):
    other = dict(APPROVAL, prompt="Something else?")
    marker = tmp_path / "probed"
    ex = ask(api, rig, APPROVAL, other, marker=str(marker))
    q = inquiry_of(api, ex["id"])
    wait_for(marker.exists, desc="the action's repeat probes")
    assert q["status"] == "pending" and q["response"] is None and q["timeout_at"] is None
    assert q["execution"] == ex["id"] and q["created_by_execution"] == ex["id"]
    assert q["workflow_execution"] is None and q["workflow_task_name"] is None
    assert q["purpose"] == "approval" and q["prompt"] == "Deploy to prod?"
    assert q["response_options"] == APPROVAL["response_options"]
    for hidden in ("scope", "root", "rev"):
        assert hidden not in q

    # Schema violations name the field and leave it pending (400).
    for bad, field in (({"reason": "x"}, "approved"), ({"approved": "yes"}, "approved"),
                       ({"approved": True, "replicas": 9}, "replicas"), ({"approved": True, "reason": 3}, "reason")):
        r = api.post(f"/api/v1/inquiries/{q['id']}/respond", json={"response": bad})
        body = expect_error(r, 400, "BAD_REQUEST")
        assert field in body["error"], body
    assert api.get_data(f"/api/v1/inquiries/{q['id']}")["status"] == "pending"

    # A multi-field form answer, stored exactly as sent.
    answer = {"approved": True, "reason": "LGTM", "replicas": 3, "extra": {"k": [1]}}
    before = datetime.now(timezone.utc)
    done = expect(api.post(f"/api/v1/inquiries/{q['id']}/respond", json={"response": answer}), 200)["data"]
    assert done["status"] == "responded" and done["response"] == answer
    assert parse_ts(done["responded_at"]) >= before.replace(microsecond=before.microsecond // 1000 * 1000)
    assert api.get_data(f"/api/v1/inquiries/{q['id']}") == done  # read-your-writes

    # Not pending any more: 409 with the exact message.
    expect_error(api.post(f"/api/v1/inquiries/{q['id']}/respond", json={"response": {"approved": False}}),
                 409, "CONFLICT", message=f"Inquiry {q['id']} is already responded")

    # The waiting execution resumes with the answer.
    ex = api.wait_execution(ex["id"], timeout=40)
    assert ex["status"] == "completed", ex
    seen = lines_of(ex)
    assert seen["created_code"] == "201", seen
    assert seen["repeat"] == "200", seen   # identical repeat from the same execution
    assert seen["other"] == "409", seen    # a different one while it is pending
    assert seen["listed"] == "200", seen   # the token reads its own execution's inquiries
    final = json.loads(seen["final"])["data"]
    assert final["status"] == "responded" and final["response"] == answer
    assert len(api.items(f"/api/v1/executions/{ex['id']}/inquiries")) == 1


def test_t2_6_rejection_path(api, rig):
    ex = ask(api, rig, dict(APPROVAL, prompt=f"Reject me {uid()}"))
    q = inquiry_of(api, ex["id"])
    done = expect(api.post(f"/api/v1/inquiries/{q['id']}/respond",
                           json={"response": {"approved": False, "reason": "not today"}}), 200)["data"]
    assert done["status"] == "responded"
    ex = api.wait_execution(ex["id"], timeout=40)
    final = json.loads(lines_of(ex)["final"])["data"]
    assert final["response"] == {"approved": False, "reason": "not today"}


def test_t2_6_listing_filters_put_cancel_delete(api, rig):
    runs = [finished_run(api, rig) for _ in range(2)]
    a = create(api, runs[0]["id"], purpose="one", assigned_to="alice_x")
    b = create(api, runs[0]["id"], purpose="two", timeout_seconds=600)
    c = create(api, runs[1]["id"], purpose="three")
    assert a["created_by_execution"] is None  # an access token has no creating execution
    expect(api.post(f"/api/v1/inquiries/{c['id']}/respond", json={"response": {"ok": 1}}), 200)

    def ids(path, **params):
        return [r["id"] for r in api.items(path, page_size=100, **params)]

    assert set(ids("/api/v1/inquiries", execution=runs[0]["id"])) == {a["id"], b["id"]}
    assert ids(f"/api/v1/executions/{runs[1]['id']}/inquiries") == [c["id"]]
    assert ids("/api/v1/inquiries", assigned_to="alice_x") == [a["id"]]
    assert c["id"] in ids("/api/v1/inquiries/status/responded")
    assert c["id"] not in ids("/api/v1/inquiries/status/pending")
    assert ids("/api/v1/inquiries", execution=runs[0]["id"], status="pending") == [b["id"], a["id"]]  # newest first
    assert ids("/api/v1/inquiries", execution=runs[0]["id"], order="asc") == [a["id"], b["id"]]
    page = api.list("/api/v1/inquiries", execution=runs[0]["id"], limit=1, offset=1)
    assert [r["id"] for r in page["items"]] == [a["id"]] and page["pagination"]["total_items"] == 2
    expect_error(api.get("/api/v1/inquiries", params={"status": "done"}), 400, "BAD_REQUEST")
    expect_error(api.get("/api/v1/inquiries", params={"execution": "x"}), 400, "BAD_REQUEST")

    # PUT: prompt, assignment, deadline; then cancel; a cancelled one refuses answers and changes.
    new_deadline = "2099-01-01T00:00:00.000Z"
    put = expect(api.put(f"/api/v1/inquiries/{b['id']}",
                         json={"prompt": "Changed?", "assigned_to": "bob_x", "timeout_at": new_deadline}), 200)["data"]
    assert put["prompt"] == "Changed?" and put["assigned_to"] == "bob_x" and put["timeout_at"] == new_deadline
    expect_error(api.put(f"/api/v1/inquiries/{b['id']}", json={"status": "responded"}), 400, "BAD_REQUEST")
    cancelled = expect(api.put(f"/api/v1/inquiries/{b['id']}", json={"status": "cancelled"}), 200)["data"]
    assert cancelled["status"] == "cancelled"
    expect_error(api.post(f"/api/v1/inquiries/{b['id']}/respond", json={"response": {}}), 409, "CONFLICT",
                 message=f"Inquiry {b['id']} is already cancelled")
    assert b["id"] in ids("/api/v1/inquiries/status/cancelled")

    body = expect(api.delete(f"/api/v1/inquiries/{a['id']}"), 200)
    assert body["success"] is True
    expect_error(api.get(f"/api/v1/inquiries/{a['id']}"), 404, "NOT_FOUND")
    assert a["id"] not in ids("/api/v1/inquiries", execution=runs[0]["id"])
    expect_error(api.get("/api/v1/inquiries/999999999"), 404, "NOT_FOUND")
    expect_error(api.post("/api/v1/inquiries", json={"prompt": "x", "execution": 999999999}), 404, "NOT_FOUND")
    r = expect(api.post("/api/v1/inquiries", json={"execution": runs[0]["id"]}), 422)
    assert "prompt" in r["details"]["fields"], r
    r = expect(api.post("/api/v1/inquiries", json={"prompt": "no execution"}), 422)
    assert "execution" in r["details"]["fields"], r


def test_t2_6_assigned_to_rights_and_visibility(server, api, rig):
    run = finished_run(api, rig)
    p = rig["pack"]
    scoped = custom_set(api, [{"resource": "inquiries", "actions": ["read", "respond"], "constraints": {"pack_refs": [p]}},
                              {"resource": "executions", "actions": ["read"], "constraints": {"pack_refs": [p]}}],
                        prefix="inq")
    alice, bob = register(server, "alice"), register(server, "bob")
    assign(api, alice, scoped)
    assign(api, bob, scoped)
    viewer_only = tenant(server, api, "core.viewer", prefix="noview")   # cannot see the pack at all
    q = create(api, run["id"], assigned_to=alice.user["login"],
               response_schema={"approved": {"type": "boolean", "required": True}})

    # Invisible → 404 everywhere, absent from lists and totals.
    expect_error(viewer_only.get(f"/api/v1/inquiries/{q['id']}"), 404, "NOT_FOUND")
    expect_error(viewer_only.post(f"/api/v1/inquiries/{q['id']}/respond", json={"response": {"approved": True}}),
                 404, "NOT_FOUND")
    expect_error(viewer_only.get(f"/api/v1/executions/{run['id']}/inquiries"), 404, "NOT_FOUND")
    assert_hidden_from_list(viewer_only, "/api/v1/inquiries", {q["id"]})
    body = expect(viewer_only.get("/api/v1/inquiries", params={"execution": run["id"]}), 200)
    assert body["items"] == [] and body["pagination"]["total_items"] == 0

    # Visible to bob, but assigned to alice: 403; bob may not PUT either (no update right).
    assert bob.get_data(f"/api/v1/inquiries/{q['id']}")["id"] == q["id"]
    expect_error(bob.post(f"/api/v1/inquiries/{q['id']}/respond", json={"response": {"approved": True}}),
                 403, "FORBIDDEN")
    expect_error(bob.put(f"/api/v1/inquiries/{q['id']}", json={"prompt": "x"}), 403, "FORBIDDEN")
    expect_error(bob.post("/api/v1/inquiries", json={"prompt": "x", "execution": run["id"]}), 403, "FORBIDDEN")
    done = expect(alice.post(f"/api/v1/inquiries/{q['id']}/respond", json={"response": {"approved": True}}), 200)
    assert done["data"]["status"] == "responded"

    # Unconstrained inquiries:respond (core.admin) answers whoever it is assigned to.
    q2 = create(api, run["id"], assigned_to="somebody_else")
    expect(api.post(f"/api/v1/inquiries/{q2['id']}/respond", json={"response": {}}), 200)


# ----------------------------------------------------------------------------------------------- T2.7

def wait_status(api, qid: int, status: str, timeout: float = 20) -> dict:
    return wait_for(lambda: (lambda q: q if q["status"] == status else None)(api.get_data(f"/api/v1/inquiries/{qid}")),
                    timeout=timeout, interval=0.05, desc=f"inquiry {qid} {status}")


def test_t2_7_several_timeouts_are_exact_and_a_response_prevents_one(api, rig):
    run = finished_run(api, rig)
    qs = [create(api, run["id"], purpose=f"t{i}", timeout_seconds=2 + (i % 2)) for i in range(4)]
    answered = create(api, run["id"], purpose="answered", timeout_seconds=2)
    expect(api.post(f"/api/v1/inquiries/{answered['id']}/respond", json={"response": {"ok": True}}), 200)
    for q in qs:
        created, due = parse_ts(q["created"]), parse_ts(q["timeout_at"])
        assert (due - created).total_seconds() == q["timeout_seconds"]
    for q in qs:
        done = wait_status(api, q["id"], "timeout", timeout=15)
        seen_at = datetime.now(timezone.utc)
        due = parse_ts(q["timeout_at"])
        lag = (parse_ts(done["updated"]) - due).total_seconds()
        assert 0 <= lag < 1.0, f"timed out {lag:.3f}s after timeout_at: {done}"
        assert done["response"] is None and done["responded_at"] is None
        assert (seen_at - due).total_seconds() < 5
        expect_error(api.post(f"/api/v1/inquiries/{q['id']}/respond", json={"response": {}}), 409, "CONFLICT",
                     message=f"Inquiry {q['id']} is already timeout")
    time.sleep(0.5)
    still = api.get_data(f"/api/v1/inquiries/{answered['id']}")
    assert still["status"] == "responded" and still["response"] == {"ok": True}
    ids = {r["id"] for r in api.items("/api/v1/inquiries/status/timeout", page_size=100)}
    assert {q["id"] for q in qs} <= ids


def test_t2_7_moved_deadline_fires_at_the_new_time(api, rig):
    run = finished_run(api, rig)
    q = create(api, run["id"], timeout_seconds=600)
    soon = datetime.fromtimestamp(time.time() + 1.5, timezone.utc)
    soon_s = soon.strftime("%Y-%m-%dT%H:%M:%S.") + f"{soon.microsecond // 1000:03d}Z"
    expect(api.put(f"/api/v1/inquiries/{q['id']}", json={"timeout_at": soon_s}), 200)
    done = wait_status(api, q["id"], "timeout", timeout=10)
    lag = (parse_ts(done["updated"]) - parse_ts(soon_s)).total_seconds()
    assert 0 <= lag < 1.0, done


@pytest.mark.restart
def test_t2_7_timeouts_survive_a_restart(server_factory):
    srv = server_factory.start_new("inquiry-restart")
    api = srv.admin_client()
    pack = api.create_pack()["ref"]
    quick = api.create_action(f"{pack}.quick", "echo done")
    run = api.wait_execution(api.execute(quick["ref"], {})["id"])
    passed = create(api, run["id"], purpose="passes while down", timeout_seconds=2)
    later = create(api, run["id"], purpose="after restart", timeout_seconds=9)
    answered = create(api, run["id"], purpose="answered", timeout_seconds=2)
    expect(api.post(f"/api/v1/inquiries/{answered['id']}/respond", json={"response": {"ok": 1}}), 200)
    token = api.token

    assert srv.stop(grace=10) == 0, srv.log_tail()
    time.sleep(max(0.0, (parse_ts(passed["timeout_at"]) - datetime.now(timezone.utc)).total_seconds() + 0.5))
    srv.start()
    started = datetime.now(timezone.utc)
    api = srv.client(token)

    # The deadline that passed while the server was down fires at start.
    done = wait_status(api, passed["id"], "timeout", timeout=10)
    assert (parse_ts(done["updated"]) - started).total_seconds() < 3, (done, started)
    # The one still ahead fires at its time (within a second).
    done = wait_status(api, later["id"], "timeout", timeout=20)
    lag = (parse_ts(done["updated"]) - parse_ts(later["timeout_at"])).total_seconds()
    assert 0 <= lag < 1.0, done
    assert api.get_data(f"/api/v1/inquiries/{answered['id']}")["status"] == "responded"


# ---------------------------------------------------------------------------------------------- T3.15

PAYLOAD_KEYS = {"id", "execution", "created_by_execution", "workflow_execution", "workflow_task_name", "status",
                "timeout_at", "responded_at", "created", "updated"}


def test_t3_15_inquiry_notifications_with_the_creating_execution(server, api, rig):
    outsider = tenant(server, api, "core.viewer", prefix="outsider")
    with Notifier(server, api.token) as ws, Notifier(server, outsider.token) as other:
        ws.accept("entity_type:inquiry")
        other.accept("all")
        ex = ask(api, rig, dict(APPROVAL, prompt=f"Notify {uid()}"))
        q = inquiry_of(api, ex["id"])
        created = ws.wait(lambda f: f["notification_type"] == "inquiry_created" and f["entity_id"] == q["id"],
                          desc="inquiry_created")
        assert created["entity_type"] == "inquiry"
        assert set(created["payload"]) == PAYLOAD_KEYS, created
        assert created["payload"]["created_by_execution"] == ex["id"]
        assert created["payload"]["execution"] == ex["id"] and created["payload"]["status"] == "pending"
        expect(api.post(f"/api/v1/inquiries/{q['id']}/respond", json={"response": {"approved": True}}), 200)
        responded = ws.wait(lambda f: f["notification_type"] == "inquiry_responded" and f["entity_id"] == q["id"],
                            desc="inquiry_responded")
        assert responded["payload"]["status"] == "responded" and responded["payload"]["responded_at"]
        assert "response" not in responded["payload"]

        run = finished_run(api, rig)
        t = create(api, run["id"], timeout_seconds=1)
        timed = ws.wait(lambda f: f["notification_type"] == "inquiry_timeout" and f["entity_id"] == t["id"],
                        timeout=10, desc="inquiry_timeout")
        assert timed["payload"]["status"] == "timeout" and timed["payload"]["timeout_at"] == t["timeout_at"]
        api.wait_execution(ex["id"], timeout=40)

        other.barrier()
        leaked = [f for f in other.frames if f.get("entity_type") == "inquiry"]
        assert not leaked, f"an identity that cannot see the pack got inquiry frames: {leaked}"
