"""T3.9 — multi-step approval workflow: several inquiries in sequence within one workflow (API.md §12.4, §13).

A workflow task runs an action that asks (POST /inquiries with its execution token) and prints the new
inquiry's id; the next task has `wait_for: {inquiry: "{{ task.<asker>.result.inquiry_id }}"}`: no child row
exists for it while the inquiry is pending, it runs once a person answers (seeing `inquiry.<task>.response`),
and takes its `timed_out()` transitions (never running) when the inquiry times out."""
from __future__ import annotations

import json
import time

import pytest

from attune_e2e import expect, uid, wait_for
from tenants import custom_set
from wf_util import children, create_workflow, output, tasks_of

CURL = 'curl -sS -H "Authorization: Bearer $ATTUNE_API_TOKEN" -H "Content-Type: application/json"'
# Parameter `inquiry`: the POST body as JSON text. Prints {"inquiry_id": N} (parsed into the result).
ASKER = (f'{CURL} -X POST "$ATTUNE_API_URL/api/v1/inquiries" -d "$inquiry" | '
         "python3 -c 'import sys, json; print(json.dumps({\"inquiry_id\": json.load(sys.stdin)[\"data\"][\"inquiry\"][\"id\"]}))'")
SCHEMA = {"approved": {"type": "boolean", "required": True}, "by": {"type": "string"}}


def asking(name: str, asker: str, prompt: str, then: str, timeout_seconds: int | None = None) -> dict:
    body = {"purpose": "approval", "prompt": prompt, "response_schema": SCHEMA}
    if timeout_seconds:
        body["timeout_seconds"] = timeout_seconds
    return {"name": name, "action": asker, "input": {"inquiry": json.dumps(body)}, "next": [{"do": [then]}]}


def waiting(name: str, asker_task: str, echo: str, approved: list, rejected: list | None = None,
            timed_out: list | None = None) -> dict:
    nxt = [{"when": f"{{{{ succeeded() and inquiry.{name}.response.approved }}}}",
            "publish": [{f"{name}_by": f"{{{{ inquiry.{name}.response.by }}}}"}], "do": approved}]
    if rejected is not None:
        nxt.append({"when": f"{{{{ succeeded() and not inquiry.{name}.response.approved }}}}", "do": rejected})
    if timed_out is not None:
        nxt.append({"when": "{{ timed_out() }}", "do": timed_out})
    return {"name": name, "action": echo, "wait_for": {"inquiry": f"{{{{ task.{asker_task}.result.inquiry_id }}}}"},
            "input": {"msg": f"{name}: {{{{ inquiry.{name}.response.by }}}}"}, "next": nxt}


@pytest.fixture
def rig(server, api):
    pack = api.create_pack()["ref"]
    asker = api.create_action(f"{pack}.asker", ASKER, timeout_seconds=30, output_format="json")["ref"]
    echo = api.create_action(f"{pack}.echo", 'printf "%s" "$msg"')["ref"]
    inert = custom_set(api, [{"resource": "runtimes", "actions": ["read"]}], prefix="inert")
    return {"pack": pack, "asker": asker, "echo": echo, "inert": inert}


def pending_inquiry_of(api, child_id: int) -> dict:
    rows = wait_for(lambda: [r for r in api.items(f"/api/v1/executions/{child_id}/inquiries")
                             if r["status"] == "pending"], desc=f"pending inquiry of {child_id}")
    assert len(rows) == 1, rows
    return rows[0]


def child_of(api, wf_id: int, task: str, timeout: float = 30.0) -> dict:
    return wait_for(lambda: tasks_of(api, wf_id).get(task, [None])[0], timeout=timeout, desc=f"child {task}")


def answer(api, inquiry: dict, response: dict) -> None:
    done = expect(api.post(f"/api/v1/inquiries/{inquiry['id']}/respond", json={"response": response}), 200)["data"]
    assert done["status"] == "responded"


def three_step(api, rig, timeout_seconds: int | None = None) -> str:
    a, e = rig["asker"], rig["echo"]
    definition = {"version": "1.0", "tasks": [
        asking("ask_dev", a, "Dev lead approves?", "dev_ok"),
        waiting("dev_ok", "ask_dev", e, ["ask_ops"], rejected=["refused"]),
        asking("ask_ops", a, "Ops approves?", "ops_ok"),
        waiting("ops_ok", "ask_ops", e, ["ask_sec"], rejected=["refused"]),
        asking("ask_sec", a, "Security approves?", "sec_ok", timeout_seconds=timeout_seconds),
        waiting("sec_ok", "ask_sec", e, ["deploy"], rejected=["refused"], timed_out=["expired"]),
        {"name": "deploy", "action": e, "input": {"msg": "deploying"}},
        {"name": "refused", "action": e, "input": {"msg": "refused"}},
        {"name": "expired", "action": e, "input": {"msg": "expired"}},
    ], "output_map": {"approvers": ["{{ workflow.dev_ok_by }}", "{{ workflow.ops_ok_by }}", "{{ workflow.sec_ok_by }}"]}}
    ref = f"{rig['pack']}.approvals_{uid()}"
    create_workflow(api, ref, definition)
    return ref


def test_t3_9_three_approvals_in_sequence(api, rig):
    ref = three_step(api, rig)
    wf = api.execute(ref, {}, permission_set_refs=[rig["inert"]])
    approvers = ["dana", "omar", "sam"]
    for (asker, waiter), who in zip((("ask_dev", "dev_ok"), ("ask_ops", "ops_ok"), ("ask_sec", "sec_ok")), approvers):
        ask = child_of(api, wf["id"], asker)
        q = pending_inquiry_of(api, ask["id"])
        assert q["created_by_execution"] == ask["id"]
        assert q["workflow_execution"] == wf["id"], q
        # The waiting task has no child row while its inquiry is pending; the workflow is running.
        api.wait_execution(ask["id"])
        time.sleep(0.3)
        assert waiter not in tasks_of(api, wf["id"])
        wfrow = api.get_data(f"/api/v1/executions/{wf['id']}")
        assert wfrow["status"] == "running", json.dumps(wfrow["result"])
        answer(api, q, {"approved": True, "by": who})
        ran = api.wait_execution(child_of(api, wf["id"], waiter)["id"])
        assert ran["status"] == "completed"
        assert ran["result"]["stdout"] == f"{waiter}: {who}"  # inquiry.<task>.response in its input
    done = api.wait_execution(wf["id"], timeout=60)
    assert done["status"] == "completed", done
    assert output(done) == {"approvers": approvers}
    counts = {k: len(v) for k, v in tasks_of(api, wf["id"]).items()}
    assert counts == {"ask_dev": 1, "dev_ok": 1, "ask_ops": 1, "ops_ok": 1, "ask_sec": 1, "sec_ok": 1,
                      "deploy": 1}, counts


def test_t3_9_rejection_stops_the_chain(api, rig):
    ref = three_step(api, rig)
    wf = api.execute(ref, {}, permission_set_refs=[rig["inert"]])
    answer(api, pending_inquiry_of(api, child_of(api, wf["id"], "ask_dev")["id"]), {"approved": True, "by": "dana"})
    answer(api, pending_inquiry_of(api, child_of(api, wf["id"], "ask_ops")["id"]), {"approved": False, "by": "omar"})
    done = api.wait_execution(wf["id"], timeout=60)
    assert done["status"] == "completed", done
    names = sorted(c["workflow_task"]["task_name"] for c in children(api, wf["id"]))
    assert names == sorted(["ask_dev", "dev_ok", "ask_ops", "ops_ok", "refused"]), names


def test_t3_9_timeout_takes_the_timed_out_path_and_the_task_never_runs(api, rig):
    ref = three_step(api, rig, timeout_seconds=2)
    wf = api.execute(ref, {}, permission_set_refs=[rig["inert"]])
    answer(api, pending_inquiry_of(api, child_of(api, wf["id"], "ask_dev")["id"]), {"approved": True, "by": "dana"})
    answer(api, pending_inquiry_of(api, child_of(api, wf["id"], "ask_ops")["id"]), {"approved": True, "by": "omar"})
    q = pending_inquiry_of(api, child_of(api, wf["id"], "ask_sec")["id"])
    assert q["timeout_at"] is not None
    done = api.wait_execution(wf["id"], timeout=30)
    assert done["status"] == "completed", done
    assert api.get_data(f"/api/v1/inquiries/{q['id']}")["status"] == "timeout"
    tasks = tasks_of(api, wf["id"])
    assert "sec_ok" not in tasks and "deploy" not in tasks, sorted(tasks)
    assert len(tasks["expired"]) == 1


def test_t3_9_cancelling_the_workflow_while_it_waits(api, rig):
    ref = three_step(api, rig)
    wf = api.execute(ref, {}, permission_set_refs=[rig["inert"]])
    q = pending_inquiry_of(api, child_of(api, wf["id"], "ask_dev")["id"])
    api.wait_execution(child_of(api, wf["id"], "ask_dev")["id"])
    expect(api.post(f"/api/v1/executions/{wf['id']}/cancel"), 200)
    done = api.wait_execution(wf["id"], timeout=30)
    assert done["status"] == "cancelled", done
    # A late answer is accepted by the inquiry but starts nothing.
    answer(api, q, {"approved": True, "by": "late"})
    time.sleep(0.5)
    assert "dev_ok" not in tasks_of(api, wf["id"])


@pytest.mark.restart
def test_t3_9_waits_survive_kill_9(server_factory):
    """Two workflows wait for their inquiries; kill -9; the deadline of one passes while the server is
    down. After the restart: the expired one takes its timed_out() path at start, the other still waits
    and runs once answered. Each task ran once."""
    srv = server_factory.start_new("wait-for-restart")
    api = srv.admin_client()
    pack = api.create_pack()["ref"]
    rig = {"pack": pack,
           "asker": api.create_action(f"{pack}.asker", ASKER, timeout_seconds=30, output_format="json")["ref"],
           "echo": api.create_action(f"{pack}.echo", 'printf "%s" "$msg"')["ref"],
           "inert": custom_set(api, [{"resource": "runtimes", "actions": ["read"]}], prefix="inert")}
    runs = {}
    for name, timeout_seconds in (("patient", None), ("expiring", 2)):
        ref = three_step(api, rig, timeout_seconds=timeout_seconds)
        wf = api.execute(ref, {}, permission_set_refs=[rig["inert"]])
        answer(api, pending_inquiry_of(api, child_of(api, wf["id"], "ask_dev")["id"]), {"approved": True, "by": "d"})
        answer(api, pending_inquiry_of(api, child_of(api, wf["id"], "ask_ops")["id"]), {"approved": True, "by": "o"})
        sec = child_of(api, wf["id"], "ask_sec")
        runs[name] = (wf, pending_inquiry_of(api, sec["id"]))
        api.wait_execution(sec["id"])
    token = api.token
    srv.kill9()
    time.sleep(2.5)
    srv.start()
    api = srv.client(token)

    wf, q = runs["expiring"]
    done = api.wait_execution(wf["id"], timeout=30)
    assert done["status"] == "completed", done
    assert api.get_data(f"/api/v1/inquiries/{q['id']}")["status"] == "timeout"
    tasks = tasks_of(api, wf["id"])
    assert "sec_ok" not in tasks and len(tasks["expired"]) == 1, sorted(tasks)

    wf, q = runs["patient"]
    assert api.get_data(f"/api/v1/executions/{wf['id']}")["status"] == "running"
    answer(api, q, {"approved": True, "by": "s"})
    done = api.wait_execution(wf["id"], timeout=30)
    assert done["status"] == "completed" and output(done) == {"approvers": ["d", "o", "s"]}, done
    counts = {k: len(v) for k, v in tasks_of(api, wf["id"]).items()}
    assert counts == {"ask_dev": 1, "dev_ok": 1, "ask_ops": 1, "ops_ok": 1, "ask_sec": 1, "sec_ok": 1,
                      "deploy": 1}, counts
