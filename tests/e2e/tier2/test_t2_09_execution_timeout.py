"""T2.9 — Execution timeout (SCENARIOS.md), end to end through an installed pack, and cancel:
a long action is killed with status `timeout` (never `failed`), request timeouts override the
action's, normal completion is unaffected, and the worker stays healthy after kills."""
from __future__ import annotations

import os
import time

from attune_e2e import expect, uid
from packs_util import tar_pack, upload


def install(api):
    ref = f"t29_{uid()}"
    files = {
        "pack.yaml": f"ref: {ref}\nversion: 1.0.0\n",
        "actions/slow.yaml": "name: slow\nrunner_type: shell\nentry_point: slow.sh\ntimeout_seconds: 1\n"
                             "parameters:\n  seconds: {type: integer, default: 30}\n",
        "actions/slow.sh": "#!/bin/sh\nread doc\necho started\n"
                           "s=$(echo \"$doc\" | sed 's/.*\"seconds\":\\([0-9]*\\).*/\\1/')\n"
                           "sleep \"$s\" & wait\necho finished\n",
        "actions/quick.yaml": "name: quick\nrunner_type: shell\nentry_point: echo quick\ntimeout_seconds: 5\n",
    }
    expect(upload(api, tar_pack(files, executable=("actions/slow.sh",))), 201)
    return ref


def test_action_timeout_kills_and_is_distinguishable(api):
    ref = install(api)
    t0 = time.monotonic()
    ex = api.wait_execution(api.execute(f"{ref}.slow", {})["id"], timeout=20)
    elapsed = time.monotonic() - t0
    assert ex["status"] == "timeout", ex
    assert "timed out" in ex["result"]["error"], ex
    assert ex["result"]["stdout"].startswith("started"), ex  # partial output kept
    assert "finished" not in ex["result"]["stdout"]
    assert elapsed < 8, elapsed

    quick = api.wait_execution(api.execute(f"{ref}.quick", {})["id"])
    assert quick["status"] == "completed" and quick["result"]["stdout"] == "quick\n", quick
    # The request's timeout beats the action's: 3 s lets a 2 s sleep finish.
    ok = api.wait_execution(api.execute(f"{ref}.slow", {"seconds": 2}, timeout_seconds=3)["id"])
    assert ok["status"] == "completed", ok
    assert "timed out" not in str(ok["result"])


def test_several_timeouts_leave_the_worker_healthy(api):
    ref = install(api)
    ids = [api.execute(f"{ref}.slow", {})["id"] for _ in range(4)]
    for i in ids:
        assert api.wait_execution(i, timeout=30)["status"] == "timeout"
    quick = api.wait_execution(api.execute(f"{ref}.quick", {})["id"])
    assert quick["status"] == "completed"


def test_cancel_a_running_pack_action(api):
    ref = install(api)
    ex = api.execute(f"{ref}.slow", {"seconds": 30}, timeout_seconds=60)
    api.wait_execution(ex["id"], statuses={"running"})
    time.sleep(0.3)  # the script is past its first line
    expect(api.post(f"/api/v1/executions/{ex['id']}/cancel", json={}), 200)
    done = api.wait_execution(ex["id"], timeout=20)
    assert done["status"] == "cancelled", done
    assert "finished" not in (done["result"] or {}).get("stdout", "")


# ------------------------------------------------------------------------------- workflow levels
# API.md §12.2 (`timeout`: the child's timeout), §12.3 (a child timing out with no matching transition fails
# the workflow promptly: a 2 s task timeout fails the parent well within 12 s; `timed_out()` / `on_timeout`
# transitions handle it) and §11.5 (timeout source: request → workflow task `timeout` → action
# `timeout_seconds` → server default).

from wf_util import create_workflow, interval, run, tasks_of  # noqa: E402

LONG = 'echo started; sleep "${s:-30}"; echo finished'


def _long_action(api, pack, name="long", **fields):
    api.create_action(f"{pack}.{name}", LONG, **fields)
    return f"{pack}.{name}"


def _assert_timed_out_child(child, seconds):
    assert child["status"] == "timeout", child
    assert "timed out" in child["result"]["error"], child
    assert child["result"]["stdout"].startswith("started"), child  # partial output kept
    assert "finished" not in child["result"]["stdout"], child
    start, end = interval(child)
    assert seconds - 0.2 <= end - start <= seconds + 4, f"killed after {end - start:.2f}s, timeout {seconds}s"


def test_task_timeout_kills_the_child_and_fails_the_workflow_promptly(api):
    pack = api.create_pack()["ref"]
    long = _long_action(api, pack)
    create_workflow(api, f"{pack}.slowwf", {"version": "1", "tasks": [
        {"name": "slow", "action": long, "timeout": 2, "on_success": "after"},
        {"name": "after", "action": long, "input": {"s": 0}},
    ]})
    t0 = time.monotonic()
    wf = run(api, f"{pack}.slowwf", timeout=20)
    elapsed = time.monotonic() - t0
    assert wf["status"] == "failed", wf
    assert elapsed < 12, f"the workflow took {elapsed:.1f}s to fail after a 2 s task timeout"
    tasks = tasks_of(api, wf["id"])
    assert list(tasks) == ["slow"], tasks
    child = tasks["slow"][0]
    _assert_timed_out_child(child, 2)
    assert child["timeout_seconds"] == 2, child
    assert child["workflow_task"]["timeout_seconds"] == 2, child
    assert child["result"]["exit_code"] is None, child  # killed


def test_timed_out_transitions_fire(api):
    pack = api.create_pack()["ref"]
    long = _long_action(api, pack)
    ok = f"{pack}.ok"
    api.create_action(ok, 'printf "%s" "$msg"')
    create_workflow(api, f"{pack}.handled", {"version": "1", "tasks": [
        {"name": "slow", "action": long, "timeout": 1, "next": [
            {"when": "{{ succeeded() }}", "do": ["on_ok"]},
            {"when": "{{ failed() }}", "do": ["on_fail"]},
            {"when": "{{ timed_out() }}", "publish": [{"why": "{{ result().error }}"}], "do": ["on_to"]},
        ]},
        {"name": "on_ok", "action": ok, "input": {"msg": "ok"}},
        {"name": "on_fail", "action": ok, "input": {"msg": "fail"}},
        {"name": "on_to", "action": ok, "input": {"msg": "timed out: {{ task.slow.status }}"}},
    ], "output_map": {"why": "{{ workflow.why }}", "handler": "{{ task.on_to.result.stdout }}"}})
    wf = run(api, f"{pack}.handled", timeout=20)
    assert wf["status"] == "completed", wf
    tasks = tasks_of(api, wf["id"])
    assert set(tasks) == {"slow", "on_to"}, tasks  # a timeout is neither success nor failure
    _assert_timed_out_child(tasks["slow"][0], 1)
    assert "timed out" in wf["result"]["why"], wf["result"]
    assert wf["result"]["handler"].startswith("timed out"), wf["result"]

    # the legacy keys: on_timeout fires, on_failure does not
    create_workflow(api, f"{pack}.legacy", {"version": "1", "tasks": [
        {"name": "slow", "action": long, "timeout": 1, "on_timeout": "cleanup", "on_failure": "failure"},
        {"name": "cleanup", "action": ok, "input": {"msg": "cleanup"}},
        {"name": "failure", "action": ok, "input": {"msg": "failure"}},
    ]})
    wf = run(api, f"{pack}.legacy", timeout=20)
    assert wf["status"] == "completed", wf
    tasks = tasks_of(api, wf["id"])
    assert set(tasks) == {"slow", "cleanup"}, tasks
    assert tasks["cleanup"][0]["result"]["stdout"] == "cleanup"


def test_task_timeout_beats_the_action_timeout(api):
    pack = api.create_pack()["ref"]
    short = _long_action(api, pack, "short_limit", timeout_seconds=1)  # the action allows 1 s
    roomy = _long_action(api, pack, "roomy_limit", timeout_seconds=60)  # the action allows 60 s
    done = [{"publish": [{"seen": "{{ true }}"}]}]  # a transition that always matches: nothing fails the workflow
    create_workflow(api, f"{pack}.levels", {"version": "1", "tasks": [
        # the task's 5 s beat the action's 1 s: a 2 s sleep completes
        {"name": "longer", "action": short, "input": {"s": 2}, "timeout": 5, "next": done},
        # the task's 1 s beat the action's 60 s: a 30 s sleep is killed after about 1 s
        {"name": "shorter", "action": roomy, "input": {"s": 30}, "timeout": 1, "next": done},
        # no task timeout: the action's own 1 s applies
        {"name": "inherits", "action": short, "input": {"s": 30}, "next": done},
    ]})
    t0 = time.monotonic()
    wf = run(api, f"{pack}.levels", timeout=30)
    assert wf["status"] == "completed", wf
    assert time.monotonic() - t0 < 15
    tasks = tasks_of(api, wf["id"])
    longer, shorter, inherits = tasks["longer"][0], tasks["shorter"][0], tasks["inherits"][0]
    assert longer["status"] == "completed", longer
    assert "timed out" not in str(longer["result"]), longer
    assert longer["result"]["stdout"] == "started\nfinished\n", longer
    _assert_timed_out_child(shorter, 1)
    _assert_timed_out_child(inherits, 1)


def test_normal_completion_unaffected_by_a_task_timeout(api):
    pack = api.create_pack()["ref"]
    long = _long_action(api, pack)
    create_workflow(api, f"{pack}.fine", {"version": "1", "tasks": [
        {"name": "quick", "action": long, "input": {"s": 0.2}, "timeout": 10, "on_success": "next"},
        {"name": "next", "action": long, "input": {"s": 0}, "timeout": 10},
    ], "output_map": {"out": "{{ task.quick.result.stdout }}"}})
    t0 = time.monotonic()
    wf = run(api, f"{pack}.fine", timeout=20)
    assert wf["status"] == "completed", wf
    assert time.monotonic() - t0 < 8  # no wait for the 10 s timeouts
    assert wf["result"]["out"] == "started\nfinished\n", wf
    tasks = tasks_of(api, wf["id"])
    for name in ("quick", "next"):
        c = tasks[name][0]
        assert c["status"] == "completed" and c["result"]["exit_code"] == 0, c
        assert "timed out" not in str(c["result"]), c
        assert c["timeout_seconds"] == 10, c


def test_with_items_timeout_per_child(api):
    pack = api.create_pack()["ref"]
    long = _long_action(api, pack)
    ok = f"{pack}.ok"
    api.create_action(ok, "echo handled")
    create_workflow(api, f"{pack}.items", {"version": "1", "tasks": [
        {"name": "each", "action": long, "with_items": "{{ [0.1, 30, 0.2] }}", "concurrency": 3,
         "input": {"s": "{{ item }}"}, "timeout": 1.5, "on_timeout": "handle"},
        {"name": "handle", "action": ok},
    ]})
    wf = run(api, f"{pack}.items", timeout=20)
    assert wf["status"] == "completed", wf
    tasks = tasks_of(api, wf["id"])
    assert [c["status"] for c in tasks["each"]] == ["completed", "timeout", "completed"], tasks["each"]
    _assert_timed_out_child(tasks["each"][1], 1.5)
    assert len(tasks["handle"]) == 1


def test_workflow_task_records_the_timeout(api):
    """API.md §7: a child's `workflow_task` carries `timeout_seconds`, `timed_out`, `duration_ms`,
    `started_at` and `completed_at`."""
    pack = api.create_pack()["ref"]
    long = _long_action(api, pack)
    create_workflow(api, f"{pack}.rec", {"version": "1", "tasks": [
        {"name": "slow", "action": long, "timeout": 1, "on_timeout": "quick"},
        {"name": "quick", "action": long, "input": {"s": 0}, "timeout": 5},
    ]})
    wf = run(api, f"{pack}.rec", timeout=20)
    assert wf["status"] == "completed", wf
    tasks = tasks_of(api, wf["id"])
    slow, quick = tasks["slow"][0], tasks["quick"][0]
    for child, timed_out, limit in ((slow, True, 1), (quick, False, 5)):
        wt = child["workflow_task"]
        missing = [f for f in ("timeout_seconds", "timed_out", "duration_ms", "started_at", "completed_at")
                   if f not in wt]
        assert not missing, f"workflow_task of {wt['task_name']} lacks {missing}: {wt}"
        assert wt["timeout_seconds"] == limit, wt
        assert wt["timed_out"] is timed_out, wt
        assert isinstance(wt["duration_ms"], int) and wt["duration_ms"] >= 0, wt
        assert wt["started_at"] and wt["completed_at"], wt


def test_task_timeout_on_a_nested_workflow(api):
    """The task `timeout` is the child's timeout whatever the child is (API.md §12.2, §12.3): a nested
    workflow child still running after 2 s times out and, unhandled, fails the parent promptly."""
    pack = api.create_pack()["ref"]
    long = _long_action(api, pack)
    create_workflow(api, f"{pack}.inner", {"version": "1", "cancellation_policy": "cancel_running",
                                           "tasks": [{"name": "zz", "action": long, "input": {"s": 8}}]})
    create_workflow(api, f"{pack}.outer", {"version": "1", "tasks": [
        {"name": "nest", "action": f"{pack}.inner", "timeout": 2}]})
    t0 = time.monotonic()
    ex = api.execute(f"{pack}.outer", {})
    wf = api.wait_execution(ex["id"], timeout=12)
    elapsed = time.monotonic() - t0
    nested = tasks_of(api, ex["id"]).get("nest", [])
    assert len(nested) == 1 and nested[0]["timeout_seconds"] == 2, nested
    assert wf["status"] == "failed", \
        f"the workflow ended {wf['status']} after {elapsed:.1f}s; its nested workflow child (task timeout 2 s) " \
        f"ended {nested[0]['status']}: {nested[0]}"
    assert elapsed < 12, elapsed
    child = api.wait_execution(nested[0]["id"], timeout=5)
    assert child["status"] == "timeout", child
