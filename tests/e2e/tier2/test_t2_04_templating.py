"""T2.4 — Parameter templating (SCENARIOS.md), API.md §10.2: action_params rendered from the trigger data with
the JSON types kept, stored as the enforcement's and the execution's config, and received by the action."""
from __future__ import annotations

import json

import pytest

from attune_e2e import TERMINAL
from rule_rig import RuleRig

PAYLOAD = {
    "user": {"name": "ann", "id": 42, "roles": ["admin", "ops"], "address": {"city": "Montréal"}},
    "count": 7, "ratio": 0.25, "active": True, "off": False, "nothing": None,
    "items": [{"sku": "a-1", "qty": 2}, {"sku": "b-2", "qty": 5}],
    "text": "  Mixed Case  ",
}


@pytest.fixture
def rig(api):
    return RuleRig(api, pack_fields={"config": {"region": "eu-west", "limits": {"max": 10}}})


def render(rig, action_params, payload=PAYLOAD):
    """Fires one event at a fresh rule; returns (enforcement, completed execution, event id)."""
    r = rig.rule(action_params=action_params, name="tmpl")
    event_id = rig.fire(payload)
    enf, ex = rig.execution_config(r["ref"], event_id)
    ex = rig.api.wait_execution(ex["id"], TERMINAL)
    assert enf["config"] == ex["config"], (enf, ex)
    return enf, ex, event_id


def test_trigger_data_reaches_the_action(rig):
    enf, ex, _ = render(rig, {"who": "{{ event.payload.user.name }}", "via_alias": "{{ trigger.payload.count }}"})
    assert enf["config"] == {"who": "ann", "via_alias": 7}
    assert ex["status"] == "completed", ex
    # The action (cat) receives exactly the rendered parameters on stdin.
    assert json.loads(ex["result"]["stdout"].strip().splitlines()[0]) == {"who": "ann", "via_alias": 7}


def test_nested_json_paths(rig):
    enf, _, _ = render(rig, {
        "city": "{{ event.payload.user.address.city }}",
        "first_role": "{{ event.payload.user.roles[0] }}",
        "last_role": "{{ event.payload.user.roles[-1] }}",
        "second_sku": "{{ event.payload.items[1].sku }}",
        "by_key": "{{ event.payload['user']['id'] }}",
        "nested": {"deep": ["{{ event.payload.items[0].qty }}", {"x": "{{ event.payload.ratio }}"}]},
    })
    assert enf["config"] == {"city": "Montréal", "first_role": "admin", "last_role": "ops", "second_sku": "b-2",
                             "by_key": 42, "nested": {"deep": [2, {"x": 0.25}]}}


def test_whole_objects_and_lists_keep_their_type(rig):
    enf, _, _ = render(rig, {"user": "{{ event.payload.user }}", "items": "{{ event.payload.items }}",
                             "payload": "{{ event.payload }}"})
    assert enf["config"]["user"] == PAYLOAD["user"]
    assert enf["config"]["items"] == PAYLOAD["items"]
    assert enf["config"]["payload"] == PAYLOAD


def test_numbers_and_booleans_keep_their_type(rig):
    enf, _, _ = render(rig, {"count": "{{ event.payload.count }}", "ratio": "{{ event.payload.ratio }}",
                             "active": "{{ event.payload.active }}", "off": "{{ event.payload.off }}",
                             "sum": "{{ event.payload.count + event.payload.user.id }}",
                             "cmp": "{{ event.payload.count > 5 }}", "literal": 3, "flag": True})
    cfg = enf["config"]
    assert cfg == {"count": 7, "ratio": 0.25, "active": True, "off": False, "sum": 49, "cmp": True,
                   "literal": 3, "flag": True}
    assert isinstance(cfg["count"], int) and not isinstance(cfg["count"], bool)
    assert isinstance(cfg["active"], bool)


def test_missing_values_render_as_null(rig):
    enf, ex, _ = render(rig, {"missing": "{{ event.payload.does_not_exist }}",
                              "missing_deep": "{{ event.payload.user.address.zip.code }}",
                              "out_of_range": "{{ event.payload.items[9] }}",
                              "explicit_null": "{{ event.payload.nothing }}",
                              "in_text": "zip=[{{ event.payload.user.zip }}]"})
    assert enf["config"] == {"missing": None, "missing_deep": None, "out_of_range": None,
                             "explicit_null": None, "in_text": "zip=[]"}
    assert ex["status"] == "completed", ex


def test_mixed_text_renders_to_a_string(rig):
    enf, _, _ = render(rig, {"msg": "User {{ event.payload.user.name }} has {{ event.payload.count }} items",
                             "obj": "roles: {{ event.payload.user.roles }}",
                             "padded": " {{ event.payload.count }}"})
    assert enf["config"] == {"msg": "User ann has 7 items", "obj": 'roles: ["admin","ops"]', "padded": " 7"}


def test_filters(rig):
    enf, _, _ = render(rig, {
        "upper": "{{ event.payload.user.name | upper }}",
        "default": "{{ event.payload.missing | default('x') }}",
        "default_null": "{{ event.payload.nothing | default('fallback') }}",
        "kept": "{{ event.payload.count | default(0) }}",
        "trim_lower": "{{ event.payload.text | trim | lower }}",
        "length": "{{ event.payload.items | length }}",
        "json": "{{ event.payload.user.roles | tojson }}",
        "int": "{{ '12' | int }}",
        "string": "{{ event.payload.count | string }}",
    })
    assert enf["config"] == {"upper": "ANN", "default": "x", "default_null": "fallback", "kept": 7,
                             "trim_lower": "mixed case", "length": 2, "json": '["admin","ops"]', "int": 12,
                             "string": "7"}


def test_event_pack_config_and_system_context(rig):
    r = rig.rule(action_params={
        "event_id": "{{ event.id }}", "trigger_ref": "{{ event.trigger_ref }}",
        "region": "{{ config.region }}", "max": "{{ pack.config.limits.max }}",
        "rule_ref": "{{ system.rule.ref }}", "rule_id": "{{ system.rule.id }}",
        "sys_event": "{{ system.event.id }}", "enforcement": "{{ system.enforcement.id }}",
        "timestamp": "{{ system.timestamp }}", "source": "{{ event.config.source }}",
    }, name="ctx")
    event_id = rig.fire({"a": 1})
    enf, ex = rig.execution_config(r["ref"], event_id)
    cfg = enf["config"]
    assert cfg["event_id"] == event_id and cfg["sys_event"] == event_id
    assert cfg["trigger_ref"] == rig.trigger_ref
    assert cfg["region"] == "eu-west" and cfg["max"] == 10
    assert cfg["rule_ref"] == r["ref"] and cfg["rule_id"] == r["id"]
    assert cfg["enforcement"] == enf["id"]
    assert isinstance(cfg["timestamp"], str) and cfg["timestamp"].endswith("Z")
    assert cfg["source"] == "webhook"
    assert ex["config"] == cfg


def test_condition_and_template_together(rig):
    r = rig.rule(conditions={"expression": "event.payload.count > 5"},
                 action_params={"summary": "{{ event.payload.user.name | upper }}: {{ event.payload.count }}"},
                 name="both")
    small = rig.fire({**PAYLOAD, "count": 1})
    big = rig.fire(PAYLOAD)
    rig.expect_matches({r["ref"]: {big}})
    enf, ex = rig.execution_config(r["ref"], big)
    assert enf["config"] == {"summary": "ANN: 7"}
    assert small in rig.fired


# ----------------------------------------------------------------------- workflow task results
# API.md §12.3 (context `task.<name>.result…`, alias `tasks.`, object keys also directly; `workflow.*` with
# aliases `vars.` / `variables.`; pure templates keep JSON type), §11.5 (an action with `output_format: json`
# has its parsed document under `data` and, for an object, its keys also at the top level; a workflow's
# result is `data` = rendered `output_map`, keys also at the top level), §10.2 (missing values render as
# null, empty inside mixed text). A producer task (`cat` with output_format json: its result is exactly its
# input) hands PAYLOAD to a consumer task (`cat`), whose rendered `config` shows what the templates produced.

from wf_util import create_workflow, run, tasks_of  # noqa: E402

P = "task.produce.result"


def _wf(api, consumer_input, output_map=None, vars_=None, publish=None, extra_tasks=()):
    """A producer → consumer workflow; returns (workflow execution, produce child, consume child or None)."""
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.produce", "cat", output_format="json")
    api.create_action(f"{pack}.consume", "cat")
    transition = {"do": ["consume"]}
    if publish is not None:
        transition["publish"] = publish
    definition = {"version": "1", "tasks": [
        {"name": "produce", "action": f"{pack}.produce", "input": PAYLOAD, "next": [transition]},
        {"name": "consume", "action": f"{pack}.consume", "input": consumer_input},
        *extra_tasks,
    ]}
    if output_map is not None:
        definition["output_map"] = output_map
    if vars_ is not None:
        definition["vars"] = vars_
    create_workflow(api, f"{pack}.tmpl", definition)
    wf = run(api, f"{pack}.tmpl", {"who": "bob", "n": 3}, timeout=30)
    tasks = tasks_of(api, wf["id"])
    produce = tasks["produce"][0]
    assert produce["status"] == "completed", produce
    assert produce["result"]["data"] == PAYLOAD, produce  # the JSON output parsed (§11.5)
    consume = tasks.get("consume", [None])[0]
    return wf, produce, consume


def test_workflow_task_results_nested_paths(api):
    wf, produce, consume = _wf(api, {
        "city": f"{{{{ {P}.data.user.address.city }}}}",
        "city_top": f"{{{{ {P}.user.address.city }}}}",           # object keys copied to the top level
        "city_direct": "{{ task.produce.user.address.city }}",     # and directly on task.<name>
        "alias": "{{ tasks.produce.result.data.count }}",          # tasks. = task.
        "first_role": f"{{{{ {P}.data.user.roles[0] }}}}",
        "last_role": f"{{{{ {P}.data.user.roles[-1] }}}}",
        "second_sku": f"{{{{ {P}.data.items[1].sku }}}}",
        "by_key": f"{{{{ {P}['data']['user']['id'] }}}}",
        "exit_code": f"{{{{ {P}.exit_code }}}}",
        "nested": {"deep": [f"{{{{ {P}.data.items[0].qty }}}}", {"x": f"{{{{ {P}.ratio }}}}"}]},
    })
    assert wf["status"] == "completed", wf
    assert consume["status"] == "completed", consume
    assert consume["config"] == {"city": "Montréal", "city_top": "Montréal", "city_direct": "Montréal", "alias": 7,
                                 "first_role": "admin", "last_role": "ops", "second_sku": "b-2", "by_key": 42,
                                 "exit_code": 0, "nested": {"deep": [2, {"x": 0.25}]}}, consume["config"]
    # the consumer received exactly that document
    assert json.loads(consume["result"]["stdout"]) == consume["config"]


def test_workflow_pure_templates_keep_json_type(api):
    wf, _, consume = _wf(api, {
        "count": f"{{{{ {P}.data.count }}}}", "ratio": f"{{{{ {P}.data.ratio }}}}",
        "active": f"{{{{ {P}.data.active }}}}", "off": f"{{{{ {P}.data.off }}}}",
        "roles": f"{{{{ {P}.data.user.roles }}}}", "user": f"{{{{ {P}.data.user }}}}",
        "items": f"{{{{ {P}.data.items }}}}", "all": f"{{{{ {P}.data }}}}",
        "sum": f"{{{{ {P}.data.count + parameters.n }}}}", "cmp": f"{{{{ {P}.data.count > 5 }}}}",
        "param": "{{ parameters.n }}",
        # mixed text is a string (objects and lists as compact JSON)
        "mixed": f"n={{{{ {P}.data.count }}}}", "roles_text": f"roles: {{{{ {P}.data.user.roles }}}}",
        "padded": f" {{{{ {P}.data.count }}}}",
    })
    assert wf["status"] == "completed", wf
    cfg = consume["config"]
    assert cfg == {"count": 7, "ratio": 0.25, "active": True, "off": False, "roles": ["admin", "ops"],
                   "user": PAYLOAD["user"], "items": PAYLOAD["items"], "all": PAYLOAD, "sum": 10, "cmp": True,
                   "param": 3, "mixed": "n=7", "roles_text": 'roles: ["admin","ops"]', "padded": " 7"}, cfg
    assert isinstance(cfg["count"], int) and not isinstance(cfg["count"], bool)
    assert isinstance(cfg["active"], bool) and isinstance(cfg["ratio"], float)


def test_workflow_publish_vars_and_output_map(api):
    wf, _, consume = _wf(
        api,
        {"total": "{{ workflow.count + vars.start }}", "roles": "{{ variables.roles }}",
         "greeting": "{{ workflow.greeting }} {{ parameters.who }}", "raw": "{{ workflow.produce_raw.data.user.id }}"},
        vars_={"greeting": "hi", "start": 100},
        publish=[{"count": f"{{{{ {P}.data.count }}}}"}, {"roles": f"{{{{ {P}.data.user.roles }}}}"},
                 {"city": f"{{{{ {P}.user.address.city }}}}"}, {"name": f"{{{{ {P}.user.name | upper }}}}"}, "produce_raw"],
        output_map={"count": "{{ workflow.count }}", "roles": "{{ workflow.roles }}",
                    "city": "{{ workflow.city }}", "name": "{{ workflow.name }}", "total": "{{ task.consume.result.stdout | trim }}",
                    "user": f"{{{{ {P}.data.user }}}}", "label": "{{ workflow.greeting }}:{{ workflow.count }}",
                    "ratio": f"{{{{ {P}.data.ratio * 2 }}}}"},
    )
    assert wf["status"] == "completed", wf
    assert consume["config"] == {"total": 107, "roles": ["admin", "ops"], "greeting": "hi bob", "raw": 42}, consume
    out = wf["result"]
    expected = {"count": 7, "roles": ["admin", "ops"], "city": "Montréal", "name": "ANN",
                "total": json.dumps(consume["config"], separators=(",", ":"), ensure_ascii=False),
                "user": PAYLOAD["user"], "label": "hi:7", "ratio": 0.5}
    for k, v in expected.items():
        assert out.get(k) == v, f"workflow result {k}: {out.get(k)!r} != {v!r}; result {out}"
    assert isinstance(out["count"], int) and not isinstance(out["count"], bool)


def test_workflow_result_holds_output_map_under_data(api):
    """API.md §11.5: "Workflow result: `data` = rendered `output_map`, keys also at top level"."""
    wf, _, _ = _wf(api, {"x": 1}, output_map={"count": f"{{{{ {P}.data.count }}}}",
                                              "roles": f"{{{{ {P}.data.user.roles }}}}"})
    assert wf["status"] == "completed", wf
    rendered = {"count": 7, "roles": ["admin", "ops"]}
    assert wf["result"].get("data") == rendered, f"workflow result without output_map under data: {wf['result']}"
    assert {k: wf["result"].get(k) for k in rendered} == rendered, wf["result"]


def test_workflow_missing_values_render_as_null(api):
    wf, _, consume = _wf(api, {
        "missing": f"{{{{ {P}.data.does_not_exist }}}}",
        "missing_deep": f"{{{{ {P}.data.user.address.zip.code }}}}",
        "out_of_range": f"{{{{ {P}.data.items[9] }}}}",
        "explicit_null": f"{{{{ {P}.data.nothing }}}}",
        "no_such_task": "{{ task.never_ran.result.stdout }}",
        "no_param": "{{ parameters.absent }}",
        "no_var": "{{ workflow.unset }}",
        "in_text": f"zip=[{{{{ {P}.data.user.zip }}}}]",
        "defaulted": f"{{{{ {P}.data.user.zip | default('none') }}}}",
    }, output_map={"missing": f"{{{{ {P}.nope }}}}", "stdout": "{{ task.consume.result.stdout | length > 0 }}"})
    assert wf["status"] == "completed", wf
    assert consume["status"] == "completed", consume
    assert consume["config"] == {"missing": None, "missing_deep": None, "out_of_range": None,
                                 "explicit_null": None, "no_such_task": None, "no_param": None, "no_var": None,
                                 "in_text": "zip=[]", "defaulted": "none"}, consume["config"]
    assert "missing" in wf["result"] and wf["result"]["missing"] is None, wf["result"]
    assert wf["result"]["stdout"] is True, wf["result"]


def test_workflow_template_error_is_a_clear_failure(api):
    # An evaluation error (÷0) in a task's input fails that task before any child exists for it, and,
    # with no transition handling it, the workflow — with the reason in its result.
    wf, _, consume = _wf(api, {"bad": f"{{{{ {P}.data.count / 0 }}}}"})
    assert wf["status"] == "failed", wf
    assert consume is None, consume
    assert "division by zero" in json.dumps(wf["result"]), wf["result"]
    assert "consume" in json.dumps(wf["result"]), wf["result"]
    # ... and in the output_map: the workflow fails, naming it
    wf, _, consume = _wf(api, {"x": 1}, output_map={"bad": f"{{{{ {P}.data.count / 0 }}}}"})
    assert consume["status"] == "completed"
    assert wf["status"] == "failed", wf
    assert "division by zero" in json.dumps(wf["result"]) and "output_map" in json.dumps(wf["result"]), wf


def test_with_items_results_item_and_index_keep_type(api):
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.produce", "cat", output_format="json")
    api.create_action(f"{pack}.consume", "cat")
    create_workflow(api, f"{pack}.items", {"version": "1", "tasks": [
        {"name": "each", "action": f"{pack}.produce", "with_items": "{{ parameters.items }}", "concurrency": 3,
         "input": {"item": "{{ item }}", "index": "{{ index }}", "sku": "{{ item.sku }}"},
         "next": [{"do": ["consume"]}]},
        {"name": "consume", "action": f"{pack}.consume",
         "input": {"second": "{{ task.each.result[1].data.item }}", "qty": "{{ task.each.result[1].item.qty }}",
                   "indexes": "{{ [task.each.result[0].index, task.each.result[2].index] }}",
                   "count": "{{ task.each.result | length }}"}},
    ]})
    items = PAYLOAD["items"] + [{"sku": "c-3", "qty": 0}]
    wf = run(api, f"{pack}.items", {"items": items}, timeout=30)
    assert wf["status"] == "completed", wf
    tasks = tasks_of(api, wf["id"])
    for i, c in enumerate(tasks["each"]):
        assert c["config"] == {"item": items[i], "index": i, "sku": items[i]["sku"]}, c
    assert tasks["consume"][0]["config"] == {"second": items[1], "qty": 5, "indexes": [0, 2], "count": 3}


def test_workflow_non_object_and_jsonl_outputs(api):
    # A JSON array is parsed under `data` only (no top-level copy: only objects' keys are copied, §11.5);
    # jsonl gives the array of parsed lines.
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.arr", """printf '[1, {"k": "v"}, [true, null]]'""", output_format="json")
    api.create_action(f"{pack}.lines", """printf '{"n": 1}\\n{"n": 2, "tags": ["x"]}\\n'""",
                      output_format="jsonl")
    api.create_action(f"{pack}.consume", "cat")
    create_workflow(api, f"{pack}.shapes", {"version": "1", "tasks": [
        {"name": "arr", "action": f"{pack}.arr", "next": [{"do": ["consume"]}]},
        {"name": "lines", "action": f"{pack}.lines", "next": [{"do": ["consume"]}]},
        {"name": "consume", "action": f"{pack}.consume", "join": "all", "input": {
            "k": "{{ task.arr.result.data[1].k }}", "nested": "{{ task.arr.result.data[2] }}",
            "arr_len": "{{ task.arr.result.data | length }}",
            "second_n": "{{ task.lines.result.data[1].n }}", "tags": "{{ task.lines.result.data[1].tags }}",
            "lines": "{{ task.lines.result.data | length }}"}},
    ], "output_map": {"first_line": "{{ task.lines.result.data[0] }}"}})
    wf = run(api, f"{pack}.shapes", timeout=30)
    assert wf["status"] == "completed", wf
    consume = tasks_of(api, wf["id"])["consume"][0]
    assert consume["config"] == {"k": "v", "nested": [True, None], "arr_len": 3, "second_n": 2, "tags": ["x"],
                                 "lines": 2}, consume["config"]
    assert wf["result"]["first_line"] == {"n": 1}, wf["result"]
