"""T2.8 — Retry policy (SCENARIOS.md), the workflow task `retry` of API.md §12.2: `{count, delay, backoff
constant|linear|exponential, max_delay, on_error}`. A failing (or timed out) child is retried up to `count`
times, each attempt being a new child execution of the task with `workflow_task.attempt` = 1, 2, ... and
`workflow_task.retry_count` = attempt − 1; a success is never retried; the delay before retry n is `delay`
(constant), `delay·n` (linear) or `delay·2^(n−1)` (exponential), capped at `max_delay`; `on_error` retries
only while it is truthy. Only after the last attempt does the task end (and its transitions fire).

The flaky action counts its runs in a file inside a per-test temporary directory passed as a parameter, and
fails while the count is ≤ `fail_times` (exit code `code`, default 1)."""
from __future__ import annotations

import pytest

from attune_e2e import expect_error
from wf_util import create_workflow, interval, run, tasks_of

FLAKY = ('f="$dir/${tag:-count}"; n=$(cat "$f" 2>/dev/null || echo 0); n=$((n+1)); echo "$n" > "$f"; '
         'echo "attempt $n"; [ "$n" -gt "${fail_times:-0}" ] || exit "${code:-1}"')


def _flaky(api, pack):
    api.create_action(f"{pack}.flaky", FLAKY)
    return f"{pack}.flaky"


def _workflow(api, pack, retry, name="wf", extra_tasks=(), **task_fields):
    create_workflow(api, f"{pack}.{name}", {"version": "1", "tasks": [
        {"name": "flaky", "action": f"{pack}.flaky", "retry": retry,
         "input": {"dir": "{{ parameters.dir }}", "fail_times": "{{ parameters.fail_times }}"},
         **task_fields},
        *extra_tasks,
    ], "output_map": {"out": "{{ task.flaky.result.stdout }}"}})
    return f"{pack}.{name}"


def _attempts(api, wf, n, task="flaky"):
    got = sorted(tasks_of(api, wf["id"]).get(task, []), key=lambda c: c["workflow_task"]["attempt"])
    assert len(got) == n, f"expected {n} attempts of {task}, got {len(got)}: {got}"
    assert [c["workflow_task"]["attempt"] for c in got] == list(range(1, n + 1)), got
    assert [c["workflow_task"]["retry_count"] for c in got] == list(range(n)), got
    for c in got:
        assert c["parent"] == wf["id"]
    return got


def test_retry_until_success(api, tmp_path):
    pack = api.create_pack()["ref"]
    _flaky(api, pack)
    ref = _workflow(api, pack, {"count": 5})
    wf = run(api, ref, {"dir": str(tmp_path), "fail_times": 2}, timeout=30)
    assert wf["status"] == "completed", wf
    attempts = _attempts(api, wf, 3)
    assert [c["status"] for c in attempts] == ["failed", "failed", "completed"], attempts
    assert [c["result"]["stdout"] for c in attempts] == ["attempt 1\n", "attempt 2\n", "attempt 3\n"]
    assert all(c["workflow_task"]["max_retries"] == 5 for c in attempts), attempts
    # the task's result is the successful attempt's
    assert wf["result"]["out"] == "attempt 3\n", wf["result"]
    assert (tmp_path / "count").read_text().strip() == "3"


def test_max_attempts_honoured_then_the_task_fails(api, tmp_path):
    pack = api.create_pack()["ref"]
    _flaky(api, pack)
    ref = _workflow(api, pack, {"count": 2}, name="exhaust")
    wf = run(api, ref, {"dir": str(tmp_path), "fail_times": 99}, timeout=30)
    assert wf["status"] == "failed", wf
    attempts = _attempts(api, wf, 3)  # count + 1 attempts
    assert [c["status"] for c in attempts] == ["failed"] * 3, attempts
    assert (tmp_path / "count").read_text().strip() == "3"


def test_on_failure_fires_once_after_the_last_attempt(api, tmp_path):
    pack = api.create_pack()["ref"]
    _flaky(api, pack)
    api.create_action(f"{pack}.handler", 'printf "handled %s" "$msg"')
    ref = _workflow(api, pack, {"count": 2}, name="handled",
                    next=[{"when": "{{ failed() }}", "publish": [{"last": "{{ result().stdout }}"}],
                           "do": ["handle"]}],
                    extra_tasks=[{"name": "handle", "action": f"{pack}.handler", "input": {"msg": "{{ workflow.last }}"}}])
    wf = run(api, ref, {"dir": str(tmp_path), "fail_times": 99}, timeout=30)
    assert wf["status"] == "completed", wf
    attempts = _attempts(api, wf, 3)
    handle = tasks_of(api, wf["id"])["handle"]
    assert len(handle) == 1, handle
    assert handle[0]["id"] > attempts[-1]["id"], "the failure handler ran before the retries were exhausted"
    assert interval(handle[0])[0] >= interval(attempts[-1])[1]
    # the transition (result()) and the task result both are the last attempt's
    assert handle[0]["result"]["stdout"].startswith("handled attempt 3"), handle[0]
    assert wf["result"]["out"] == "attempt 3\n", wf["result"]


def test_no_retry_on_success(api, tmp_path):
    pack = api.create_pack()["ref"]
    _flaky(api, pack)
    ref = _workflow(api, pack, {"count": 3, "delay": 0.2}, name="fine")
    wf = run(api, ref, {"dir": str(tmp_path), "fail_times": 0}, timeout=30)
    assert wf["status"] == "completed", wf
    [only] = _attempts(api, wf, 1)
    assert only["status"] == "completed"
    assert only["workflow_task"]["max_retries"] == 3
    assert (tmp_path / "count").read_text().strip() == "1"


@pytest.mark.parametrize("retry, expected", [
    ({"count": 3, "delay": 0.4, "backoff": "exponential"}, [0.4, 0.8, 1.6]),
    ({"count": 3, "delay": 0.3, "backoff": "linear", "max_delay": 0.5}, [0.3, 0.5, 0.5]),
    ({"count": 2, "delay": 0.4}, [0.4, 0.4]),  # constant is the default
], ids=["exponential", "linear-capped", "constant"])
def test_backoff_timing(api, tmp_path, retry, expected):
    pack = api.create_pack()["ref"]
    _flaky(api, pack)
    ref = _workflow(api, pack, retry, name="backoff")
    wf = run(api, ref, {"dir": str(tmp_path), "fail_times": 99}, timeout=30)
    assert wf["status"] == "failed", wf
    attempts = _attempts(api, wf, len(expected) + 1)
    spans = [interval(c) for c in attempts]
    gaps = [round(nxt[0] - prev[1], 3) for prev, nxt in zip(spans, spans[1:])]
    for gap, want in zip(gaps, expected):
        # never early (10 ms for the ms-precision timestamps), and not much later on a loaded machine
        assert want - 0.01 <= gap <= want + 0.8, f"gaps between attempts {gaps}, expected {expected}"
    if retry.get("backoff") == "exponential":
        assert gaps[2] > gaps[1] > gaps[0], gaps


def test_on_error_decides_whether_to_retry(api, tmp_path):
    pack = api.create_pack()["ref"]
    # exit 75 (temporary) on the first run, then exit 2 (permanent)
    api.create_action(f"{pack}.flaky",
                      'f="$dir/count"; n=$(cat "$f" 2>/dev/null || echo 0); n=$((n+1)); echo "$n" > "$f"; '
                      'echo "attempt $n"; [ "$n" -ge 2 ] && exit 2; exit 75')
    ref = _workflow(api, pack, {"count": 5, "on_error": "{{ result().exit_code == 75 }}"}, name="selective")
    wf = run(api, ref, {"dir": str(tmp_path), "fail_times": 0}, timeout=30)
    assert wf["status"] == "failed", wf
    attempts = _attempts(api, wf, 2)
    assert [c["result"]["exit_code"] for c in attempts] == [75, 2], attempts
    # a falsy on_error: no retry at all
    ref = _workflow(api, pack, {"count": 5, "on_error": "{{ timed_out() }}"}, name="never")
    (tmp_path / "never").mkdir()
    wf = run(api, ref, {"dir": str(tmp_path / "never")}, timeout=30)
    assert wf["status"] == "failed", wf
    _attempts(api, wf, 1)


def test_timed_out_attempt_is_retried(api, tmp_path):
    pack = api.create_pack()["ref"]
    # the first run hangs (killed by the task timeout), the second returns at once
    api.create_action(f"{pack}.flaky",
                      'f="$dir/count"; n=$(cat "$f" 2>/dev/null || echo 0); n=$((n+1)); echo "$n" > "$f"; '
                      '[ "$n" -ge 2 ] || sleep 30; echo "attempt $n"')
    ref = _workflow(api, pack, {"count": 1}, name="slow", timeout=1)
    wf = run(api, ref, {"dir": str(tmp_path)}, timeout=30)
    assert wf["status"] == "completed", wf
    attempts = _attempts(api, wf, 2)
    assert [c["status"] for c in attempts] == ["timeout", "completed"], attempts
    assert wf["result"]["out"] == "attempt 2\n", wf["result"]


def test_with_items_retries_each_item_on_its_own(api, tmp_path):
    pack = api.create_pack()["ref"]
    _flaky(api, pack)
    create_workflow(api, f"{pack}.items", {"version": "1", "tasks": [
        {"name": "flaky", "action": f"{pack}.flaky", "with_items": "{{ parameters.items }}", "concurrency": 3,
         "retry": {"count": 2},
         "input": {"dir": "{{ parameters.dir }}", "tag": "{{ item.tag }}", "fail_times": "{{ item.fails }}"}}],
        "output_map": {"outs": "{{ task.flaky.result }}"}})
    items = [{"tag": "a", "fails": 0}, {"tag": "b", "fails": 2}, {"tag": "c", "fails": 1}]
    wf = run(api, f"{pack}.items", {"dir": str(tmp_path), "items": items}, timeout=30)
    assert wf["status"] == "completed", wf
    kids = tasks_of(api, wf["id"])["flaky"]
    by_index: dict = {}
    for c in kids:
        by_index.setdefault(c["workflow_task"]["task_index"], []).append(c)
    assert {i: len(v) for i, v in by_index.items()} == {0: 1, 1: 3, 2: 2}, kids
    for v in by_index.values():
        v.sort(key=lambda c: c["workflow_task"]["attempt"])
        assert [c["workflow_task"]["attempt"] for c in v] == list(range(1, len(v) + 1))
        assert v[-1]["status"] == "completed"
    assert [o["stdout"] for o in wf["result"]["outs"]] == ["attempt 1\n", "attempt 3\n", "attempt 2\n"]


def test_nested_workflow_task_is_retried(api, tmp_path):
    # A workflow task whose action is a workflow: each attempt is a new nested workflow execution.
    pack = api.create_pack()["ref"]
    _flaky(api, pack)
    create_workflow(api, f"{pack}.inner", {"version": "1", "tasks": [
        {"name": "zz", "action": f"{pack}.flaky",
         "input": {"dir": "{{ parameters.dir }}", "fail_times": "{{ parameters.fail_times }}"}}],
        "output_map": {"out": "{{ task.zz.result.stdout }}"}})
    create_workflow(api, f"{pack}.outer", {"version": "1", "tasks": [
        {"name": "nest", "action": f"{pack}.inner", "retry": {"count": 3},
         "input": {"dir": "{{ parameters.dir }}", "fail_times": 1}}],
        "output_map": {"out": "{{ task.nest.result.out }}"}})
    wf = run(api, f"{pack}.outer", {"dir": str(tmp_path)}, timeout=30)
    assert wf["status"] == "completed", wf
    attempts = _attempts(api, wf, 2, task="nest")
    assert [c["status"] for c in attempts] == ["failed", "completed"], attempts
    assert wf["result"]["out"] == "attempt 2\n", wf["result"]


def test_retry_definition_errors(api):
    pack = api.create_pack()["ref"]
    _flaky(api, pack)
    for retry, words in (({"count": 0}, "retry.count"), ({"count": 101}, "retry.count"), ({"delay": 1}, "count"),
                         ({"count": 2, "backoff": "fibonacci"}, "backoff"), ({"count": 2, "jitter": 1}, "jitter")):
        r = api.post("/api/v1/workflows", json={
            "ref": f"{pack}.bad", "pack_ref": pack, "label": "bad", "version": "1",
            "definition": {"version": "1", "tasks": [{"name": "t", "action": f"{pack}.flaky", "retry": retry}]}})
        expect_error(r, 400, message_contains=words)
