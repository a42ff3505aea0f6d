"""T2.1: nested workflows — 3- and 4-level parent → child chains linked by `parent`, results propagate
up through output_map (API.md §12)."""
from __future__ import annotations

import pytest

from wf_util import children, create_workflow, echo_action, run


def _chain(api, pack, depth):
    action = echo_action(api, pack)
    create_workflow(api, f"{pack}.level{depth}", {
        "version": "1.0",
        "tasks": [{"name": "leaf", "action": action, "input": {"msg": "{{ parameters.word }}-leaf"}}],
        "output_map": {"value": "{{ task.leaf.result.stdout }}", "depth": depth},
    })
    for level in range(depth - 1, 0, -1):
        create_workflow(api, f"{pack}.level{level}", {
            "version": "1.0",
            "tasks": [{"name": "inner", "action": f"{pack}.level{level + 1}",
                       "input": {"word": "{{ parameters.word }}"}}],
            "output_map": {"value": "{{ task.inner.result.value }}",
                           "depth": "{{ task.inner.result.depth }}", "level": level},
        })


@pytest.mark.parametrize("depth", [3, 4])
def test_nested_chain_propagates_results(api, depth):
    pack = api.create_pack()["ref"]
    _chain(api, pack, depth)
    top = run(api, f"{pack}.level1", {"word": "deep"})
    assert top["status"] == "completed", top
    assert top["result"]["value"] == "deep-leaf", top["result"]
    assert top["result"]["data"]["value"] == "deep-leaf"  # output_map also under `data` (API.md §11)
    assert top["result"]["depth"] == depth and top["result"]["level"] == 1
    # walk the chain down by `parent`
    node = top
    for level in range(2, depth + 1):
        kids = children(api, node["id"])
        assert len(kids) == 1, kids
        kid = kids[0]
        assert kid["parent"] == node["id"] and kid["action_ref"] == f"{pack}.level{level}"
        assert kid["workflow_task"]["task_name"] == "inner"
        assert kid["status"] == "completed" and kid["result"]["value"] == "deep-leaf"
        node = kid
    leaves = children(api, node["id"])
    assert len(leaves) == 1 and leaves[0]["result"]["stdout"] == "deep-leaf"
    assert leaves[0]["workflow_task"]["task_name"] == "leaf"


def test_nested_failure_propagates_up(api):
    pack = api.create_pack()["ref"]
    fail = f"{pack}.boom"
    api.create_action(fail, "echo nope; exit 3")
    create_workflow(api, f"{pack}.inner", {"version": "1", "tasks": [{"name": "x", "action": fail}]})
    create_workflow(api, f"{pack}.mid", {"version": "1", "tasks": [{"name": "m", "action": f"{pack}.inner"}]})
    create_workflow(api, f"{pack}.outer", {"version": "1", "tasks": [{"name": "o", "action": f"{pack}.mid"}]})
    top = run(api, f"{pack}.outer")
    assert top["status"] == "failed", top
    mid = children(api, top["id"])[0]
    inner = children(api, mid["id"])[0]
    assert mid["status"] == "failed" and inner["status"] == "failed"
    assert children(api, inner["id"])[0]["result"]["exit_code"] == 3
