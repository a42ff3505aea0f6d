"""T2.2: workflow failure handling — stop on first failure, continue through an on_failure path,
several failing tasks, failure isolated to its branch (API.md §12.3)."""
from __future__ import annotations

from wf_util import create_workflow, echo_action, run, tasks_of


def _actions(api, pack):
    ok = echo_action(api, pack)
    api.create_action(f"{pack}.fail", 'echo "failing $msg"; exit 4')
    return ok, f"{pack}.fail"


def test_stop_on_first_failure(api):
    pack = api.create_pack()["ref"]
    ok, fail = _actions(api, pack)
    create_workflow(api, f"{pack}.stop", {"version": "1", "tasks": [
        {"name": "a", "action": ok, "input": {"msg": "a"}, "next": [{"when": "{{ succeeded() }}", "do": ["b"]}]},
        {"name": "b", "action": fail, "input": {"msg": "b"}, "next": [{"when": "{{ succeeded() }}", "do": ["c"]}]},
        {"name": "c", "action": ok, "input": {"msg": "c"}},
    ]})
    wf = run(api, f"{pack}.stop")
    assert wf["status"] == "failed", wf
    tasks = tasks_of(api, wf["id"])
    assert tasks["a"][0]["status"] == "completed"
    assert tasks["b"][0]["status"] == "failed"
    assert "c" not in tasks, tasks


def test_continue_through_on_failure(api):
    pack = api.create_pack()["ref"]
    ok, fail = _actions(api, pack)
    create_workflow(api, f"{pack}.recover", {"version": "1", "tasks": [
        {"name": "risky", "action": fail, "input": {"msg": "r"},
         "on_success": "celebrate", "on_failure": "cleanup"},
        {"name": "celebrate", "action": ok, "input": {"msg": "yay"}},
        {"name": "cleanup", "action": ok, "input": {"msg": "cleaned"}},
    ], "output_map": {"cleanup": "{{ task.cleanup.result.stdout }}"}})
    wf = run(api, f"{pack}.recover")
    assert wf["status"] == "completed", wf
    assert wf["result"]["cleanup"] == "cleaned"
    tasks = tasks_of(api, wf["id"])
    assert tasks["risky"][0]["status"] == "failed"
    assert "celebrate" not in tasks


def test_multiple_failures_and_branch_isolation(api):
    pack = api.create_pack()["ref"]
    ok, fail = _actions(api, pack)
    # Two independent branches; each failing task has a handler, so the workflow completes and
    # the healthy branch runs to its end.
    create_workflow(api, f"{pack}.branches", {"version": "1", "tasks": [
        {"name": "f1", "action": fail, "input": {"msg": "1"}, "on_failure": "h1"},
        {"name": "f2", "action": fail, "input": {"msg": "2"}, "on_failure": "h2"},
        {"name": "good1", "action": ok, "input": {"msg": "g1"}, "on_success": "good2"},
        {"name": "good2", "action": ok, "input": {"msg": "g2"}},
        {"name": "h1", "action": ok, "input": {"msg": "h1"}},
        {"name": "h2", "action": ok, "input": {"msg": "h2"}},
    ]})
    wf = run(api, f"{pack}.branches")
    assert wf["status"] == "completed", wf
    tasks = tasks_of(api, wf["id"])
    assert {n: [c["status"] for c in v] for n, v in tasks.items()} == {
        "f1": ["failed"], "f2": ["failed"], "good1": ["completed"], "good2": ["completed"],
        "h1": ["completed"], "h2": ["completed"]}
    # Unhandled failure in one branch fails the workflow.
    create_workflow(api, f"{pack}.unhandled", {"version": "1", "tasks": [
        {"name": "f1", "action": fail, "input": {"msg": "1"}},
        {"name": "good", "action": ok, "input": {"msg": "g"}},
    ]})
    wf = run(api, f"{pack}.unhandled")
    assert wf["status"] == "failed", wf


def test_child_timeout_fails_workflow_promptly(api):
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.slow", "sleep 30")
    create_workflow(api, f"{pack}.slowwf", {"version": "1", "tasks": [
        {"name": "s", "action": f"{pack}.slow", "timeout": 2}]})
    wf = run(api, f"{pack}.slowwf", timeout=15)
    assert wf["status"] == "failed", wf
    child = tasks_of(api, wf["id"])["s"][0]
    assert child["status"] == "timeout", child


def test_retry_with_delay_until_success(api, tmp_path):
    pack = api.create_pack()["ref"]
    counter = tmp_path / f"{pack}.count"
    api.create_action(f"{pack}.flaky",
                      f'n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; '
                      f'echo "try $n"; [ "$n" -ge 3 ]')
    create_workflow(api, f"{pack}.retrying", {"version": "1", "tasks": [
        {"name": "flaky", "action": f"{pack}.flaky", "retry": {"count": 3, "delay": 1}}]})
    wf = run(api, f"{pack}.retrying", timeout=30)
    assert wf["status"] == "completed", wf
    attempts = tasks_of(api, wf["id"])["flaky"]
    assert [c["status"] for c in attempts] == ["failed", "failed", "completed"], attempts
    assert [c["workflow_task"]["attempt"] for c in attempts] == [1, 2, 3]
    # the delay between attempts is honoured
    from attune_e2e import parse_ts
    created = [parse_ts(c["created"]) for c in attempts]
    assert (created[1] - created[0]).total_seconds() >= 0.9, created
