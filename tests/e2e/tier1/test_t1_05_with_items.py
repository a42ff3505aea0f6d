"""T1.5: workflow with array iteration — with_items over 0, 1, 3 and 10 items of mixed types, one child
per item, results in item order (API.md §12.3)."""
from __future__ import annotations

import pytest

from attune_e2e import expect, expect_error
from wf_util import children, create_workflow, echo_action, output, run, tasks_of


def _items_workflow(api, pack, action):
    return create_workflow(api, f"{pack}.items", {
        "version": "1.0",
        "tasks": [
            {"name": "each", "action": action, "with_items": "{{ parameters.items }}",
             "concurrency": 4, "input": {"msg": "{{ item }}"},
             "next": [{"publish": [{"outs": "{{ task.each.result }}"}], "do": ["after"]}]},
            {"name": "after", "action": action, "input": {"msg": "done"}},
        ],
        "output_map": {"outs": "{{ workflow.outs }}"},
    })


@pytest.mark.parametrize("items", [[], ["one"], ["a", 2, True], [f"i{n}" for n in range(10)]],
                         ids=["0", "1", "3-mixed", "10"])
def test_with_items_one_child_per_item(api, items):
    pack = api.create_pack()["ref"]
    action = echo_action(api, pack)
    _items_workflow(api, pack, action)
    wf = run(api, f"{pack}.items", {"items": items})
    assert wf["status"] == "completed", wf
    assert wf["started_at"], wf
    tasks = tasks_of(api, wf["id"])
    each = tasks.get("each", [])
    assert len(each) == len(items), each
    for i, child in enumerate(each):
        assert child["parent"] == wf["id"]
        assert child["workflow_task"]["task_index"] == i
        assert child["status"] == "completed", child
        expected = "true" if items[i] is True else str(items[i])
        assert child["result"]["stdout"] == expected, child
    assert len(tasks["after"]) == 1
    outs = wf["result"]["outs"]
    assert isinstance(outs, list) and len(outs) == len(items)
    assert [o["stdout"] for o in outs] == ["true" if v is True else str(v) for v in items]


def test_workflow_crud_and_refusals(api):
    pack = api.create_pack()["ref"]
    action = echo_action(api, pack)
    wf = _items_workflow(api, pack, action)
    assert wf["ref"] == f"{pack}.items"
    got = api.get_data(f"/api/v1/workflows/{pack}.items")
    assert got["definition"]["tasks"][0]["name"] == "each"
    companion = api.get_data(f"/api/v1/actions/{pack}.items")
    assert companion["workflow_def"]["tasks"][0]["name"] == "each"
    assert [w["ref"] for w in api.items("/api/v1/workflows", pack_ref=pack)] == [f"{pack}.items"]
    # duplicate, unknown pack, definition errors (also in wait_for)
    expect_error(api.post("/api/v1/workflows", json={
        "ref": f"{pack}.items", "pack_ref": pack, "label": "x", "version": "1",
        "definition": {"version": "1", "tasks": [{"name": "a", "action": action}]}}), 409)
    expect_error(api.post("/api/v1/workflows", json={
        "ref": "nopack_zz.w", "pack_ref": "nopack_zz", "label": "x", "version": "1",
        "definition": {"version": "1", "tasks": [{"name": "a", "action": action}]}}), 404)
    r = api.post("/api/v1/workflows", json={
        "ref": f"{pack}.bad", "pack_ref": pack, "label": "x", "version": "1",
        "definition": {"version": "1", "tasks": [{"name": "a", "action": action,
                                                  "next": [{"do": ["missing"]}]}]}})
    expect_error(r, 400, message_contains="missing")
    r = api.post("/api/v1/workflows", json={
        "ref": f"{pack}.ghost", "pack_ref": pack, "label": "x", "version": "1",
        "definition": {"version": "1", "tasks": [{"name": "a", "action": f"{pack}.no_such_action"}]}})
    expect_error(r, 400, message_contains=f"task 'a': action: unknown action '{pack}.no_such_action'")
    expect_error(api.get(f"/api/v1/workflows/{pack}.ghost"), 404)
    r = api.post("/api/v1/workflows", json={
        "ref": f"{pack}.waits", "pack_ref": pack, "label": "x", "version": "1",
        "definition": {"version": "1", "tasks": [{"name": "a", "action": action,
                                                  "wait_for": {"inquirer": "{{ 1 }}"}}]}})
    expect_error(r, 400, message_contains="wait_for: unknown field 'inquirer'")
    # the companion action goes with its workflow only
    expect_error(api.delete(f"/api/v1/actions/{pack}.items"), 400, message_contains="/workflows/")
    # update, delete removes both
    upd = expect(api.put(f"/api/v1/workflows/{pack}.items", json={"label": "Items v2"}), 200)["data"]
    assert upd["label"] == "Items v2"
    expect(api.delete(f"/api/v1/workflows/{pack}.items"), 200)
    expect_error(api.get(f"/api/v1/workflows/{pack}.items"), 404)
    expect_error(api.get(f"/api/v1/actions/{pack}.items"), 404)


def test_pack_workflow_file_installs_and_runs(api):
    from attune_e2e import uid
    from packs_util import upload_pack
    ref = f"wfpack_{uid()}"
    files = {
        "pack.yaml": f"ref: {ref}\nversion: 1.0.0\n",
        "actions/say.yaml": "name: say\nrunner_type: shell\nentry_point: 'printf \"%s\" \"$msg\"'\n"
                            "parameters:\n  msg: {type: string}\n",
        "actions/loop.yaml": "name: loop\nworkflow_file: workflows/loop.workflow.yaml\n"
                             "parameters:\n  words: {type: array, required: true}\n",
        "actions/workflows/loop.workflow.yaml":
            "version: 1.0\n"
            "tasks:\n"
            "  - name: each\n"
            f"    action: {ref}.say\n"
            "    with_items: '{{ parameters.words }}'\n"
            "    input: {msg: '{{ item }}'}\n"
            "output_map:\n"
            "  said: '{{ task.each.result | length }}'\n",
    }
    upload_pack(api, files)
    wf = api.get_data(f"/api/v1/workflows/{ref}.loop")
    assert wf["definition"]["tasks"][0]["name"] == "each"
    action = api.get_data(f"/api/v1/actions/{ref}.loop")
    assert action["workflow_def"]["tasks"][0]["name"] == "each"
    done = run(api, f"{ref}.loop", {"words": ["x", "y", "z"]})
    assert done["status"] == "completed", done
    assert output(done) == {"said": 3}, done
    kids = sorted(children(api, done["id"]), key=lambda c: c["workflow_task"]["task_index"])
    assert [k["result"]["stdout"] for k in kids] == ["x", "y", "z"]
