"""T3.7: complex workflow orchestration — sequential, parallel branches with a join, publish/vars,
a parallel task, nested workflows together; cancel cascading; kill -9 mid-workflow resumes with
every task run exactly once (API.md §12, DESIGN.md §4)."""
from __future__ import annotations

import time

import pytest

from attune_e2e import TERMINAL, expect, wait_for
from wf_util import children, create_workflow, echo_action, output, run, tasks_of


def _complex(api, pack):
    ok = echo_action(api, pack)
    create_workflow(api, f"{pack}.sub", {
        "version": "1", "tasks": [{"name": "s", "action": ok, "input": {"msg": "sub-{{ parameters.x }}"}}],
        "output_map": {"out": "{{ task.s.result.stdout }}"}})
    create_workflow(api, f"{pack}.main", {
        "version": "1",
        "vars": {"greeting": "hello"},
        "tasks": [
            {"name": "init", "action": ok, "input": {"msg": "{{ workflow.greeting }} {{ parameters.who }}"},
             "next": [{"publish": [{"first": "{{ task.init.result.stdout }}"}], "do": ["left", "right"]}]},
            {"name": "left", "action": ok, "input": {"msg": "L:{{ workflow.first }}"},
             "next": [{"publish": ["left_result"], "do": ["merge"]}]},
            {"name": "right", "action": f"{pack}.sub", "input": {"x": "{{ parameters.who }}"},
             "next": [{"publish": [{"right_out": "{{ task.right.result.out }}"}], "do": ["merge"]}]},
            {"name": "merge", "action": ok, "join": "all",
             "input": {"msg": "{{ task.left.result.stdout }}+{{ workflow.right_out }}"},
             "next": [{"do": ["fan"]}]},
            {"name": "fan", "type": "parallel", "tasks": [
                {"name": "p1", "action": ok, "input": {"msg": "p1"}},
                {"name": "p2", "action": ok, "input": {"msg": "p2"}},
            ]},
        ],
        "output_map": {"merged": "{{ task.merge.result.stdout }}", "first": "{{ workflow.first }}",
                       "left": "{{ workflow.left_result.stdout }}"},
    })


def test_branches_join_publish_nested(api):
    pack = api.create_pack()["ref"]
    _complex(api, pack)
    wf = run(api, f"{pack}.main", {"who": "bob"})
    assert wf["status"] == "completed", wf
    assert output(wf) == {"merged": "L:hello bob+sub-bob", "first": "hello bob",
                            "left": "L:hello bob"}, wf["result"]
    tasks = tasks_of(api, wf["id"])
    assert {n: len(v) for n, v in tasks.items()} == {
        "init": 1, "left": 1, "right": 1, "merge": 1, "p1": 1, "p2": 1}, tasks
    assert all(c["status"] == "completed" for v in tasks.values() for c in v)
    # the join ran after both branches
    merge = tasks["merge"][0]
    assert merge["id"] > tasks["left"][0]["id"] and merge["id"] > tasks["right"][0]["id"]
    sub = tasks["right"][0]
    assert children(api, sub["id"])[0]["result"]["stdout"] == "sub-bob"


def test_cancel_cascades(api):
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.sleepy", "sleep 60")
    create_workflow(api, f"{pack}.inner", {"version": "1", "cancellation_policy": "cancel_running",
                                           "tasks": [{"name": "zz", "action": f"{pack}.sleepy"}]})
    create_workflow(api, f"{pack}.outer", {"version": "1", "cancellation_policy": "cancel_running",
                                           "tasks": [
                                               {"name": "nest", "action": f"{pack}.inner"},
                                               {"name": "direct", "action": f"{pack}.sleepy"},
                                               {"name": "items", "action": f"{pack}.sleepy",
                                                "with_items": "{{ [1, 2, 3] }}"},
                                           ]})
    wf = api.execute(f"{pack}.outer", {})

    def running_leaves():
        kids = children(api, wf["id"])
        nest = [k for k in kids if k["workflow_task"]["task_name"] == "nest"]
        if len(kids) < 5 or not nest:
            return None
        inner = children(api, nest[0]["id"])
        return (kids, inner) if inner and inner[0]["status"] == "running" else None

    kids, inner = wait_for(running_leaves, timeout=20, desc="children running")
    expect(api.post(f"/api/v1/executions/{wf['id']}/cancel"), 200)
    done = api.wait_execution(wf["id"], timeout=30)
    assert done["status"] == "cancelled", done
    for k in children(api, wf["id"]):
        assert k["status"] == "cancelled", k
    nested = children(api, wf["id"])
    nest = [k for k in nested if k["workflow_task"]["task_name"] == "nest"][0]
    assert all(c["status"] == "cancelled" for c in children(api, nest["id"]))


@pytest.mark.restart
def test_kill9_mid_workflow_resumes_each_task_once(server_factory):
    srv = server_factory.start_new("wf-restart")
    api = srv.admin_client()
    pack = api.create_pack()["ref"]
    # Each run appends its task name to a file: after the restart every task must appear once.
    log = srv.data_dir.parent / f"{pack}.runs"
    api.create_action(f"{pack}.mark", f'echo "$msg" >> {log}; sleep "$nap"; printf "%s" "$msg"')
    create_workflow(api, f"{pack}.long", {"version": "1", "tasks": [
        {"name": "t1", "action": f"{pack}.mark", "input": {"msg": "t1", "nap": 0}, "on_success": "t2"},
        {"name": "t2", "action": f"{pack}.mark", "input": {"msg": "t2", "nap": 2}, "on_success": "t3"},
        {"name": "t3", "action": f"{pack}.mark", "input": {"msg": "t3", "nap": 0}, "delay": 3,
         "on_success": "t4"},
        {"name": "t4", "action": f"{pack}.mark", "input": {"msg": "{{ item }}", "nap": 0},
         "with_items": "{{ ['i0', 'i1', 'i2'] }}", "concurrency": 1},
    ], "output_map": {"items": "{{ task.t4.result | length }}"}})
    wf = api.execute(f"{pack}.long", {})
    # wait until t2 has finished, so t3's delay timer is pending, then kill -9
    wait_for(lambda: any(c["workflow_task"]["task_name"] == "t2" and c["status"] == "completed"
                         for c in children(api, wf["id"])), timeout=20, desc="t2 completed")
    srv.kill9()
    time.sleep(3.5)  # t3's timer comes due while the server is down
    srv.start()
    api = srv.admin_client()
    done = api.wait_execution(wf["id"], timeout=40)
    assert done["status"] == "completed", (done, srv.log_tail())
    assert output(done) == {"items": 3}
    runs = log.read_text().split()
    assert sorted(runs) == ["i0", "i1", "i2", "t1", "t2", "t3"], runs
    tasks = tasks_of(api, wf["id"])
    assert {n: len(v) for n, v in tasks.items()} == {"t1": 1, "t2": 1, "t3": 1, "t4": 3}


def test_workflow_status_notifications(server, api):
    from tenants import Notifier
    pack = api.create_pack()["ref"]
    ok = echo_action(api, pack)
    create_workflow(api, f"{pack}.notify", {"version": "1", "tasks": [
        {"name": "a", "action": ok, "input": {"msg": "x"}}]})
    with Notifier(server, api.token) as ws:
        ws.accept("entity_type:workflow_execution")
        wf = run(api, f"{pack}.notify")
        assert wf["status"] == "completed"
        f = ws.wait(lambda f: f["notification_type"] == "workflow_execution_status_changed"
                    and f["entity_id"] == wf["id"] and f["payload"]["status"] == "completed",
                    desc="workflow completed notification")
        assert f["entity_type"] == "workflow_execution"
        assert f["payload"]["action_ref"] == f"{pack}.notify"
        statuses = [x["payload"]["status"] for x in ws.frames
                    if x.get("entity_id") == wf["id"]
                    and x.get("notification_type") == "workflow_execution_status_changed"]
        assert "running" in statuses and statuses[-1] == "completed", statuses
        # children are plain executions: not workflow notifications
        child = children(api, wf["id"])[0]
        assert not [x for x in ws.frames if x.get("entity_id") == child["id"]]
