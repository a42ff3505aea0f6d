"""Policies and workflows (issue 17): workflow children are executions of their action like any other,
so the action's concurrency policy holds them — a with_items task with `concurrency: 4` over an action
limited to 1 runs its children one at a time and the workflow still completes with every result."""
from __future__ import annotations

from attune_e2e import TERMINAL
from policy_util import SLEEPER, Watch, concurrency, create_policy, max_overlap
from wf_util import create_workflow, tasks_of


def test_with_items_children_respect_the_action_concurrency_policy(api, pack, rec):
    ref = f"{pack}.sleeper"
    api.create_action(ref, SLEEPER + 'echo "$tag"\n', timeout_seconds=60)
    create_policy(api, pack, "one", action_ref=ref, concurrency=concurrency(1))
    create_workflow(api, f"{pack}.fan", {"version": "1", "tasks": [
        {"name": "each", "action": ref, "with_items": "{{ parameters.items }}", "concurrency": 4,
         "input": {"dir": "{{ parameters.dir }}", "tag": "{{ item }}", "s": 0.3}}],
        "output_map": {"outs": "{{ task.each.result }}"}})
    items = ["w1", "w2", "w3", "w4"]
    w = Watch(api, ref, limit=1)
    wf = api.execute(f"{pack}.fan", {"dir": str(rec.dir), "items": items})
    w.until(lambda s: len(s.rows) == 4 and all(e["status"] in TERMINAL for e in s.rows.values()),
            timeout=60, desc="the 4 children terminal (one at a time)")
    wf = api.wait_execution(wf["id"], timeout=30)
    assert wf["status"] == "completed", wf
    kids = tasks_of(api, wf["id"])["each"]
    assert [k["status"] for k in kids] == ["completed"] * 4, kids
    assert [o["stdout"] for o in wf["result"]["outs"]] == [f"{t}\n" for t in items], wf["result"]
    spans = rec.spans()
    assert sorted(spans) == items, spans
    assert max_overlap(list(spans.values())) == 1, f"children of a limit-1 action overlapped: {spans}"
    assert w.max_active == 1
