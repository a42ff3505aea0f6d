"""T2.11 — Sequential dependencies (SCENARIOS.md), API.md §12.3: A → B → C run strictly in order (each starts
after the previous one ended, judged from the children's started_at / terminal `updated`); a diamond
A → (B, C) → D with `join` runs D once, after both branches; a failure stops every task downstream of it
(no child row is ever created for them) and fails the workflow."""
from __future__ import annotations

import time

from wf_util import (children, create_workflow, interval, run, sleep_action, tasks_of,
                     wait_children_terminal)


def _assert_in_order(tasks, names):
    spans = [interval(tasks[n][0]) for n in names]
    for (a, sa), (b, sb) in zip(zip(names, spans), zip(names[1:], spans[1:])):
        assert sb[0] >= sa[1], f"{b} started at {sb[0]:.3f} before {a} ended at {sa[1]:.3f}"


def test_a_b_c_in_order(api):
    pack = api.create_pack()["ref"]
    nap = sleep_action(api, pack)
    create_workflow(api, f"{pack}.chain", {"version": "1", "tasks": [
        {"name": "A", "action": nap, "input": {"s": 0.3, "tag": "a"}, "next": [{"when": "{{ succeeded() }}", "do": ["B"]}]},
        {"name": "B", "action": nap, "input": {"s": 0.3, "tag": "{{ task.A.result.stdout }}b"},
         "next": [{"when": "{{ succeeded() }}", "do": ["C"]}]},
        {"name": "C", "action": nap, "input": {"s": 0.3, "tag": "{{ task.B.result.stdout }}c"}},
    ], "output_map": {"chain": "{{ task.C.result.stdout }}"}})
    wf = run(api, f"{pack}.chain", timeout=30)
    assert wf["status"] == "completed", wf
    assert wf["result"]["chain"] == "abc", wf["result"]  # each saw its predecessor's result
    tasks = tasks_of(api, wf["id"])
    assert {k: len(v) for k, v in tasks.items()} == {"A": 1, "B": 1, "C": 1}, tasks
    assert [tasks[k][0]["workflow_task"]["triggered_by"] for k in "ABC"] == [None, "A", "B"]
    _assert_in_order(tasks, ["A", "B", "C"])
    # ids (creation order) agree: a task's child is created only once its predecessor ended
    assert tasks["A"][0]["id"] < tasks["B"][0]["id"] < tasks["C"][0]["id"]


def test_diamond_join(api):
    pack = api.create_pack()["ref"]
    nap = sleep_action(api, pack)
    create_workflow(api, f"{pack}.diamond", {"version": "1", "tasks": [
        {"name": "A", "action": nap, "input": {"s": 0, "tag": "a"}, "next": [{"do": ["B", "C"]}]},
        {"name": "B", "action": nap, "input": {"s": 0.5, "tag": "b"}, "next": [{"do": ["D"]}]},
        {"name": "C", "action": nap, "input": {"s": 1.0, "tag": "c"}, "next": [{"do": ["D"]}]},
        {"name": "D", "action": nap, "join": "all",
         "input": {"s": 0, "tag": "{{ task.B.result.stdout }}+{{ task.C.result.stdout }}"}},
    ], "output_map": {"d": "{{ task.D.result.stdout }}"}})
    wf = run(api, f"{pack}.diamond", timeout=30)
    assert wf["status"] == "completed", wf
    assert wf["result"]["d"] == "b+c", wf["result"]
    tasks = tasks_of(api, wf["id"])
    assert {k: len(v) for k, v in tasks.items()} == {"A": 1, "B": 1, "C": 1, "D": 1}, tasks
    spans = {k: interval(v[0]) for k, v in tasks.items()}
    # B and C run side by side after A; D after both (after the slower C, not right after B)
    assert spans["B"][0] >= spans["A"][1] and spans["C"][0] >= spans["A"][1], spans
    assert spans["B"][0] < spans["C"][1] and spans["C"][0] < spans["B"][1], f"B and C did not overlap: {spans}"
    assert spans["D"][0] >= max(spans["B"][1], spans["C"][1]), spans


def test_diamond_without_join_runs_the_target_per_transition(api):
    # Contrast (API.md §12.3): without `join` a task runs once per transition reaching it.
    pack = api.create_pack()["ref"]
    nap = sleep_action(api, pack)
    create_workflow(api, f"{pack}.nojoin", {"version": "1", "tasks": [
        {"name": "A", "action": nap, "input": {"s": 0, "tag": "a"}, "next": [{"do": ["B", "C"]}]},
        {"name": "B", "action": nap, "input": {"s": 0, "tag": "b"}, "next": [{"do": ["D"]}]},
        {"name": "C", "action": nap, "input": {"s": 0.3, "tag": "c"}, "next": [{"do": ["D"]}]},
        {"name": "D", "action": nap, "input": {"s": 0, "tag": "d"}},
    ]})
    wf = run(api, f"{pack}.nojoin", timeout=30)
    assert wf["status"] == "completed", wf
    tasks = tasks_of(api, wf["id"])
    assert len(tasks["D"]) == 2, tasks["D"]
    assert sorted(c["workflow_task"]["triggered_by"] for c in tasks["D"]) == ["B", "C"]


def _assert_never_created(api, wf_id, names, settle=1.0):
    """No child row for `names`: checked once every child is terminal, and again after a short bounded
    window (the workflow is terminal, so nothing may be created any more)."""
    kids = wait_children_terminal(api, wf_id)
    deadline = time.monotonic() + settle
    while True:
        present = {k["workflow_task"]["task_name"] for k in kids} & set(names)
        assert not present, f"tasks downstream of the failure ran: {sorted(present)}"
        if time.monotonic() >= deadline:
            return
        time.sleep(0.25)
        kids = children(api, wf_id)


def test_failure_stops_downstream_tasks(api):
    pack = api.create_pack()["ref"]
    nap = sleep_action(api, pack)
    api.create_action(f"{pack}.boom", 'echo "boom" >&2; exit 3')
    create_workflow(api, f"{pack}.broken", {"version": "1", "tasks": [
        {"name": "A", "action": nap, "input": {"s": 0, "tag": "a"}, "on_success": "B"},
        {"name": "B", "action": f"{pack}.boom", "on_success": "C"},
        {"name": "C", "action": nap, "input": {"s": 0, "tag": "c"}, "on_success": "D"},
        {"name": "D", "action": nap, "input": {"s": 0, "tag": "d"}},
    ]})
    wf = run(api, f"{pack}.broken", timeout=30)
    assert wf["status"] == "failed", wf
    tasks = tasks_of(api, wf["id"])
    assert tasks["A"][0]["status"] == "completed"
    assert tasks["B"][0]["status"] == "failed"
    assert tasks["B"][0]["result"]["exit_code"] == 3
    _assert_never_created(api, wf["id"], ["C", "D"])


def test_failure_in_a_diamond_branch_stops_the_join(api):
    pack = api.create_pack()["ref"]
    nap = sleep_action(api, pack)
    api.create_action(f"{pack}.boom", "exit 1")
    create_workflow(api, f"{pack}.halfdiamond", {"version": "1", "tasks": [
        {"name": "A", "action": nap, "input": {"s": 0, "tag": "a"}, "next": [{"do": ["B", "C"]}]},
        {"name": "B", "action": f"{pack}.boom", "next": [{"when": "{{ succeeded() }}", "do": ["D"]}]},
        {"name": "C", "action": nap, "input": {"s": 0.5, "tag": "c"},
         "next": [{"when": "{{ succeeded() }}", "do": ["D"]}]},
        {"name": "D", "action": nap, "join": "all", "input": {"s": 0, "tag": "d"}, "on_success": "E"},
        {"name": "E", "action": nap, "input": {"s": 0, "tag": "e"}},
    ]})
    wf = run(api, f"{pack}.halfdiamond", timeout=30)
    assert wf["status"] == "failed", wf
    tasks = tasks_of(api, wf["id"])
    assert tasks["B"][0]["status"] == "failed"
    _assert_never_created(api, wf["id"], ["D", "E"])


def test_a_cycle_runs_its_tasks_in_order(api):
    # Cycles are allowed (API.md §12.3): A → B → A ... while a published counter is below 3.
    pack = api.create_pack()["ref"]
    nap = sleep_action(api, pack)
    create_workflow(api, f"{pack}.loop", {"version": "1", "vars": {"i": 0}, "tasks": [
        {"name": "A", "action": nap, "input": {"s": 0.1, "tag": "a{{ workflow.i }}"},
         "next": [{"when": "{{ succeeded() }}", "publish": [{"i": "{{ workflow.i + 1 }}"}], "do": ["B"]}]},
        {"name": "B", "action": nap, "input": {"s": 0.1, "tag": "b{{ workflow.i }}"},
         "next": [{"when": "{{ workflow.i < 3 }}", "do": ["A"]}]},
    ], "output_map": {"i": "{{ workflow.i }}", "last": "{{ task.B.result.stdout }}"}})
    wf = run(api, f"{pack}.loop", timeout=30)
    assert wf["status"] == "completed", wf
    assert wf["result"]["i"] == 3 and wf["result"]["last"] == "b3", wf["result"]
    kids = sorted(children(api, wf["id"]), key=lambda c: interval(c)[0])
    assert [c["result"]["stdout"] for c in kids] == ["a0", "b1", "a1", "b2", "a2", "b3"], kids
    spans = [interval(c) for c in kids]
    for prev, nxt in zip(spans, spans[1:]):
        assert nxt[0] >= prev[1], spans
    assert [c["workflow_task"]["run"] for c in kids] == [1, 1, 2, 2, 3, 3], kids
