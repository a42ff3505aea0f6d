"""T2.10 — Parallel execution (SCENARIOS.md), API.md §12.2–§12.3: with_items children run up to
`concurrency` at once (default 1), so a high limit runs N one-second children in about one second, a limit K
is never exceeded, concurrency 1 is strictly sequential in item order; `batch_size` hands each child an
array of items; a `parallel` task runs its nested tasks together.

Concurrency is judged from the children's own records: each child's interval is [started_at, updated] (the
terminal record's last change), so "at most K at once" is the largest number of overlapping intervals.
"""
from __future__ import annotations

import time

from attune_e2e import TERMINAL, parse_ts
from wf_util import children, create_workflow, interval, max_overlap, run, sleep_action, tasks_of


def _items_workflow(api, pack, action, name="items", **task_fields):
    create_workflow(api, f"{pack}.{name}", {
        "version": "1",
        "tasks": [{"name": "each", "action": action, "with_items": "{{ parameters.items }}",
                   "input": {"s": "{{ parameters.s }}", "tag": "{{ item }}"}, **task_fields}],
        "output_map": {"tags": "{{ task.each.result }}"},
    })
    return f"{pack}.{name}"


def _children(api, wf, n):
    assert wf["status"] == "completed", wf
    each = tasks_of(api, wf["id"])["each"]
    assert len(each) == n, each
    assert [c["workflow_task"]["task_index"] for c in each] == list(range(n))
    assert all(c["status"] == "completed" for c in each), each
    return each


def test_high_concurrency_runs_children_together(api):
    pack = api.create_pack()["ref"]
    ref = _items_workflow(api, pack, sleep_action(api, pack), concurrency=100)
    n = 8
    wf = run(api, ref, {"items": list(range(n)), "s": 1}, timeout=40)
    each = _children(api, wf, n)
    spans = [interval(c) for c in each]
    first_start = min(s for s, _ in spans)
    last_end = max(e for _, e in spans)
    # Sequential would take >= 8 s; together they take about one sleep (generous for a loaded 2-core box).
    assert last_end - first_start < 3.5, f"{n} one-second children took {last_end - first_start:.2f}s"
    assert max_overlap(spans) >= n // 2, spans
    # results in item order regardless of finishing order
    assert [r["stdout"] for r in wf["result"]["tags"]] == [str(i) for i in range(n)]


def test_concurrency_limit_is_honoured(api):
    pack = api.create_pack()["ref"]
    ref = _items_workflow(api, pack, sleep_action(api, pack), concurrency=2)
    n = 6
    wf = api.execute(ref, {"items": list(range(n)), "s": 0.6})
    # While it runs: every child row exists up front (API.md §12.3), at most 2 are ever dispatched at once,
    # and the others wait as `requested`.
    samples = []
    deadline = time.monotonic() + 40
    while api.get_data(f"/api/v1/executions/{wf['id']}")["status"] not in TERMINAL:
        assert time.monotonic() < deadline, "workflow did not finish within 40 s"
        kids = children(api, wf["id"])
        if kids:
            samples.append(kids)
        time.sleep(0.05)
    assert samples, "never saw the children while the workflow ran"
    assert all(len(k) == n for k in samples), [len(k) for k in samples]
    busy = [sum(c["status"] in ("scheduling", "scheduled", "running") for c in k) for k in samples]
    assert max(busy) <= 2, f"more than 2 children dispatched at once: {busy}"
    assert any(c["status"] == "requested" for c in samples[0]), samples[0]
    wf = api.wait_execution(wf["id"], timeout=5)
    each = _children(api, wf, n)
    spans = [interval(c) for c in each]
    assert max_overlap(spans) == 2, [(round(s, 3), round(e, 3)) for s, e in spans]
    first_start = min(s for s, _ in spans)
    last_end = max(e for _, e in spans)
    assert last_end - first_start >= 3 * 0.6 - 0.05, "6 children of 0.6 s, 2 at a time, need >= 1.8 s"


def test_concurrency_one_is_sequential(api):
    pack = api.create_pack()["ref"]
    # concurrency 1 explicitly, and the default (API.md §12.2: default 1)
    for name, fields in (("one", {"concurrency": 1}), ("default", {})):
        ref = _items_workflow(api, pack, sleep_action(api, pack, f"nap_{name}"), name=name, **fields)
        n = 4
        wf = run(api, ref, {"items": ["a", "b", "c", "d"], "s": 0.3}, timeout=40)
        each = _children(api, wf, n)
        spans = [interval(c) for c in each]  # in item order
        assert max_overlap(spans) == 1, (name, spans)
        for prev, nxt in zip(spans, spans[1:]):
            assert nxt[0] >= prev[1], f"{name}: item started before the previous item ended: {spans}"
        assert [r["stdout"] for r in wf["result"]["tags"]] == ["a", "b", "c", "d"]


def test_twenty_items_run_together(api):
    pack = api.create_pack()["ref"]
    ref = _items_workflow(api, pack, sleep_action(api, pack), concurrency=20)
    n = 20
    wf = run(api, ref, {"items": [f"i{k}" for k in range(n)], "s": 1}, timeout=60)
    each = _children(api, wf, n)
    spans = [interval(c) for c in each]
    total = max(e for _, e in spans) - min(s for s, _ in spans)
    assert total < 6, f"20 one-second children with concurrency 20 took {total:.2f}s"
    assert max_overlap(spans) >= 5, spans
    assert [r["stdout"] for r in wf["result"]["tags"]] == [f"i{k}" for k in range(n)]


def test_batch_size_hands_each_child_a_batch(api):
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.batch", 'cat')  # echoes its parameter document
    create_workflow(api, f"{pack}.batches", {
        "version": "1",
        "tasks": [{"name": "each", "action": f"{pack}.batch", "with_items": "{{ parameters.items }}",
                   "batch_size": 5, "concurrency": 4,
                   "input": {"batch": "{{ item }}", "n": "{{ item | length }}"}}],
        "output_map": {"results": "{{ task.each.result }}"},
    })
    items = list(range(20))
    wf = run(api, f"{pack}.batches", {"items": items}, timeout=40)
    assert wf["status"] == "completed", wf
    each = tasks_of(api, wf["id"])["each"]
    assert len(each) == 4, each  # 20 items in batches of 5
    assert [c["workflow_task"]["task_batch"] for c in each] == [0, 1, 2, 3], each
    for b, c in enumerate(each):
        assert c["config"] == {"batch": items[5 * b:5 * b + 5], "n": 5}, c
        assert c["status"] == "completed", c
    assert len(wf["result"]["results"]) == 4
    # An uneven last batch: 7 items in batches of 5 → 5 + 2.
    wf = run(api, f"{pack}.batches", {"items": list(range(7))}, timeout=40)
    assert wf["status"] == "completed", wf
    each = tasks_of(api, wf["id"])["each"]
    assert [c["config"]["batch"] for c in each] == [[0, 1, 2, 3, 4], [5, 6]], each


def test_parallel_task_runs_nested_tasks_together(api):
    pack = api.create_pack()["ref"]
    nap = sleep_action(api, pack)
    create_workflow(api, f"{pack}.par", {
        "version": "1",
        "tasks": [
            {"name": "fan", "type": "parallel", "tasks": [
                {"name": "p1", "action": nap, "input": {"s": 1, "tag": "one"}},
                {"name": "p2", "action": nap, "input": {"s": 1, "tag": "two"}},
                {"name": "p3", "action": nap, "input": {"s": 1, "tag": "three"}},
            ], "next": [{"when": "{{ succeeded() }}", "do": ["after"]}]},
            {"name": "after", "action": nap, "input": {"s": 0, "tag": "after"}},
        ],
        "output_map": {"p1": "{{ task.p1.result.stdout }}", "p3": "{{ task.p3.result.stdout }}",
                       "after": "{{ task.after.result.stdout }}"},
    })
    wf = run(api, f"{pack}.par", timeout=40)
    assert wf["status"] == "completed", wf
    assert {k: wf["result"][k] for k in ("p1", "p3", "after")} == {"p1": "one", "p3": "three", "after": "after"}, \
        wf["result"]
    tasks = tasks_of(api, wf["id"])
    assert {k: len(v) for k, v in tasks.items()} == {"p1": 1, "p2": 1, "p3": 1, "after": 1}, tasks
    spans = [interval(tasks[k][0]) for k in ("p1", "p2", "p3")]
    assert max_overlap(spans) == 3, spans
    assert max(e for _, e in spans) - min(s for s, _ in spans) < 2.5, spans
    after_start = parse_ts(tasks["after"][0]["started_at"]).timestamp()
    assert after_start >= max(e for _, e in spans), "the task after the parallel one started before it ended"


def test_parallel_task_with_chains_items_and_a_failure(api):
    # Nested tasks of a parallel task run together (a nested chain in order, a nested with_items with its
    # own concurrency); a nested failure fails the parallel task once its nested tasks ended, so the parallel
    # task's failed() transition fires and its succeeded() one does not (API.md §12.2, engine summary).
    pack = api.create_pack()["ref"]
    nap = sleep_action(api, pack)
    api.create_action(f"{pack}.boom", "exit 5")
    create_workflow(api, f"{pack}.par", {"version": "1", "tasks": [
        {"name": "fan", "type": "parallel", "tasks": [
            {"name": "p1", "action": nap, "input": {"s": 0.5, "tag": "p1"}, "on_success": "p1b"},
            {"name": "p1b", "action": nap, "input": {"s": 0, "tag": "p1b"}},
            {"name": "p2", "action": nap, "with_items": "{{ [1, 2, 3] }}", "concurrency": 3,
             "input": {"s": 0.5, "tag": "{{ item }}"}},
            {"name": "p3", "action": f"{pack}.boom"},
        ], "next": [{"when": "{{ failed() }}", "do": ["rescue"]}, {"when": "{{ succeeded() }}", "do": ["after"]}]},
        {"name": "rescue", "action": nap, "input": {"s": 0, "tag": "rescue"}},
        {"name": "after", "action": nap, "input": {"s": 0, "tag": "after"}},
    ]})
    wf = run(api, f"{pack}.par", timeout=40)
    assert wf["status"] == "completed", wf
    tasks = tasks_of(api, wf["id"])
    assert {k: [c["status"] for c in v] for k, v in tasks.items()} == {
        "p1": ["completed"], "p1b": ["completed"], "p2": ["completed"] * 3, "p3": ["failed"],
        "rescue": ["completed"]}, tasks
    spans = {k: [interval(c) for c in v] for k, v in tasks.items()}
    # p1, p2's three items and p3 all overlapped at the start; p1b after p1; rescue after everything nested
    assert max_overlap([spans["p1"][0]] + spans["p2"]) == 4, spans
    assert spans["p1b"][0][0] >= spans["p1"][0][1], spans
    nested_end = max(e for k in ("p1", "p1b", "p2", "p3") for _, e in spans[k])
    assert spans["rescue"][0][0] >= nested_end, spans
